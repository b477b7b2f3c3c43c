"""File I/O shared by every stage: atomic writes and contract JSONL reading.

Every writer goes through `atomic_write` (temp file in the same folder, then
`os.replace`), so an interrupted or failed stage never leaves a half-written
file where a later stage would read it. Every reader error names the file and
the line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from components.schema import RankingSample, SampleError


class DataError(ValueError):
    """Input data is unreadable or breaks a contract; the message names file and line."""


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
        super().__init__(f"duplicate key {key!r} in one object")
        self.key = key


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
    """`json.loads`, except that an object with the same key twice raises `DuplicateKeyError`."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file our own code wrote (health.jsonl, rankings.jsonl); blank lines skipped.
    User data goes through `read_samples`, which names each bad row. A key twice in a record is an error."""
    path = Path(path)
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(loads(line))
            except DuplicateKeyError as err:
                raise DataError(f"{path}:{lineno}: {err}; a key may appear only once") from err
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
    samples, problems, first_line = [], [], {}
    lines = read_text(path).splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno})")
            continue
        except DuplicateKeyError as err:
            problems.append(f"{path}:{lineno}: {err}; a key may appear only once")
            continue
        try:
            sample = RankingSample.from_dict(obj)
        except SampleError as err:
            problems += [f"{path}:{lineno}: {p}" for p in err.problems]
            continue
        sid = sample.sample_id
        if sid in first_line:
            problems.append(f"{path}:{lineno}: field 'sample_id': {sid!r} is used again (first on line {first_line[sid]})")
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
                problems.append(f"{path}: field 'sample_id': {s.sample_id!r} is also in {seen[s.sample_id]}; "
                                "sample ids must be unique across the files of a folder")
            seen.setdefault(s.sample_id, path)
    if problems:
        raise _contract_error(problems, f"{folder}: the samples break the contract")
    return by_file


def load_json(path: Path) -> Any:
    """A JSON file; invalid JSON names the line, and an object with the same key twice names the key."""
    text = read_text(path)
    try:
        return loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg} at column {err.colno})") from err
    except DuplicateKeyError as err:
        raise DataError(f"{path}: {err}; a key may appear only once") from err


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
