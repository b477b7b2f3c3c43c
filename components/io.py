"""File I/O shared by every stage: atomic writes and contract JSONL reading.

Every writer goes through `atomic_write` (temp file in the same folder, then
`os.replace`), so an interrupted or failed stage never leaves a half-written
file where a later stage would read it; the file gets the mode a plain `open`
would give it (the umask's), not the temp file's 0600. `sigterm_unwinds` makes
SIGTERM unwind like an exception, so temp files and folders are removed then too.
Every reader error names the file and the line, and JSON nested too deep or too
large is refused with that error rather than a RecursionError.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from components.logs import shown
from components.schema import RankingSample, SampleError


class DataError(ValueError):
    """Input data is unreadable or breaks a contract; the message names file and line."""


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (`os.umask` can only set it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) instead of killing the process on the spot, so every
    `except`/`finally` runs: temp files are removed and MLflow runs end FAILED. Only in the main thread, and only
    where nobody else handles SIGTERM (Prefect's flow engine has its own bridge)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make every output private to its writer
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"})) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Build a folder under a temp name and swap it in only when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700, as for atomic_write
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def dumps_line(record: dict[str, Any]) -> str:
    """One canonical JSON line: stable key order so reruns are byte-identical."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    n = 0
    with atomic_write(path) as fh:
        for record in records:
            fh.write(dumps_line(record))
            n += 1
    return n


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (`json` would silently keep the last value)."""

    def __init__(self, key: str):
        super().__init__(f"duplicate key {shown(key)} in one object")
        self.key = key


class JsonLimitError(ValueError):
    """A JSON text nests too deep or is too large to read; the message says which limit."""


MAX_JSON_DEPTH = 64  # a sample nests 4 deep; `json` itself fails near 1000 with a RecursionError
MAX_RECORD_CHARS = 64 << 20  # one JSONL record: a sample of 100 candidates at the 5000-character limit is ~0.5 MB
MAX_JSON_BYTES = 2 << 30  # one JSON or JSONL file: far above any real input, and refused before it is read


def _too_deep(obj: Any, limit: int) -> bool:
    """Whether `obj` nests more than `limit` containers deep (iterative: no recursion to run out of)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` that refuses a key given twice in one object."""
    obj = dict(pairs)
    if len(obj) != len(pairs):  # the fast path: one C-level dict, a length check
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return obj


def loads(text: str) -> Any:
    """`json.loads`, except that an object with the same key twice raises `DuplicateKeyError`, and nesting deeper
    than MAX_JSON_DEPTH raises `JsonLimitError`.

    >>> loads('{"a": [1, {"b": null}]}')
    {'a': [1, {'b': None}]}
    """
    try:
        obj = json.loads(text, object_pairs_hook=_unique_pairs)
    except RecursionError as err:
        raise JsonLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels") from err
    # the walk only when the text could nest that deep: counting brackets is a fast C loop
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(obj, MAX_JSON_DEPTH):
        raise JsonLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def _check_file_size(path: Path) -> None:
    with contextlib.suppress(OSError):  # a missing file is reported by the read
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise DataError(f"{path}: {size:,} bytes, the limit for a JSON file is {MAX_JSON_BYTES:,}")


def _line_problem(line: str) -> str | None:
    if len(line) > MAX_RECORD_CHARS:
        return f"a record of {len(line):,} characters, the limit is {MAX_RECORD_CHARS:,}"
    return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file our own code wrote (health.jsonl, rankings.jsonl); blank lines skipped.
    User data goes through `read_samples`, which names each bad row. A key twice in a record is an error."""
    path = Path(path)
    _check_file_size(path)
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            problem = _line_problem(line)
            if problem:
                raise DataError(f"{path}:{lineno}: {problem}")
            try:
                records.append(loads(line))
            except DuplicateKeyError as err:
                raise DataError(f"{path}:{lineno}: {err}; a key may appear only once") from err
            except JsonLimitError as err:
                raise DataError(f"{path}:{lineno}: {err}") from err
    return records


def write_text(path: Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def write_json(path: Path, obj: Any) -> None:
    with atomic_write(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")


def read_text(path: Path) -> str:
    """Read UTF-8 text; a bad byte is reported with its file, line and offset."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found") from err
    try:
        return raw.decode("utf-8-sig")  # a UTF-8 byte-order mark (some editors write one) is not content
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: byte {raw[err.start]:#04x} at offset {err.start} is not valid UTF-8; "
            "re-encode the file as UTF-8"
        ) from err


MAX_REPORTED = 50  # problems listed in one error; the count says how many more there were


def _contract_error(problems: list[str], what: str) -> DataError:
    shown = problems[:MAX_REPORTED]
    more = f"\n... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return DataError(f"{what}:\n" + "\n".join(shown) + more)


def read_samples(path: Path) -> list[RankingSample]:
    """Read contract JSONL: the one reader of samples, used by every stage and by `validate`.

    Every bad record of the file is reported in one `DataError` (`file:line: field ...`),
    including a `sample_id` used twice; an empty file is an error.
    """
    path = Path(path)
    _check_file_size(path)
    samples, problems, first_line = [], [], {}
    lines = read_text(path).splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        problem = _line_problem(line)
        if problem:
            problems.append(f"{path}:{lineno}: {problem}")
            continue
        try:
            obj = loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno})")
            continue
        except DuplicateKeyError as err:
            problems.append(f"{path}:{lineno}: {err}; a key may appear only once")
            continue
        except JsonLimitError as err:
            problems.append(f"{path}:{lineno}: {err}")
            continue
        try:
            sample = RankingSample.from_dict(obj)
        except SampleError as err:
            problems += [f"{path}:{lineno}: {p}" for p in err.problems]
            continue
        sid = sample.sample_id
        if sid in first_line:
            problems.append(f"{path}:{lineno}: field 'sample_id': {shown(sid)} is used again (first on line {first_line[sid]})")
            continue
        first_line[sid] = lineno
        samples.append(sample)
    if problems:
        n_bad = len({p.split(": ", 1)[0] for p in problems})
        raise _contract_error(problems, f"{path}: {n_bad} bad record(s) break the sample contract (docs/data-format.md)")
    if not samples:
        raise DataError(f"{path}: no samples (the file is empty or blank); a sample file needs at least one record")
    return samples


def read_sample_folder(folder: Path, files: Iterable[Path]) -> dict[Path, list[RankingSample]]:
    """Read several sample files of one folder; a `sample_id` must be unique across all of them.

    Results are kept by sample id, so the same id in two files would silently mix two samples.
    Every file's problems are reported together.
    """
    by_file: dict[Path, list[RankingSample]] = {}
    problems: list[str] = []
    for path in files:
        try:
            by_file[Path(path)] = read_samples(path)
        except DataError as err:
            problems.append(str(err))
    seen: dict[str, Path] = {}
    for path, samples in by_file.items():
        for s in samples:
            if s.sample_id in seen and seen[s.sample_id] != path:
                problems.append(f"{path}: field 'sample_id': {shown(s.sample_id)} is also in {seen[s.sample_id]}; "
                                "sample ids must be unique across the files of a folder")
            seen.setdefault(s.sample_id, path)
    if problems:
        raise _contract_error(problems, f"{folder}: the samples break the contract")
    return by_file


def load_json(path: Path) -> Any:
    """A JSON file; invalid JSON names the line, and an object with the same key twice names the key."""
    _check_file_size(Path(path))
    text = read_text(path)
    try:
        return loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg} at column {err.colno})") from err
    except DuplicateKeyError as err:
        raise DataError(f"{path}: {err}; a key may appear only once") from err
    except JsonLimitError as err:
        raise DataError(f"{path}: {err}") from err


def read_table(path: Path, required: Iterable[str], delimiter: str = ",") -> list[dict[str, str]]:
    """Read a CSV/TSV with a header; every row is checked for the required columns.

    RecBole atomic headers (`user_id:token`) are reduced to the field name.
    Errors name the file, and the line where a row is short.
    """
    import csv
    import io as _io

    path = Path(path)
    text = read_text(path)
    csv.field_size_limit(1 << 30)
    reader = csv.reader(_io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration as err:
        raise DataError(f"{path}: empty file, expected a header row") from err
    names = [h.split(":", 1)[0].strip() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(f"{path}:1: missing column(s) {missing}; found {names}")
    rows = []
    for record in reader:
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        lineno = reader.line_num
        if len(record) != len(names):
            raise DataError(f"{path}:{lineno}: expected {len(names)} fields, found {len(record)}")
        rows.append(dict(zip(names, record)))
    return rows
