"""Is `data/` what `data.dvc` says it is? Checked before preparation reads a byte of it.

Why: a changed file in `data/` used to pass `prepare` and `validate` (valid-JSON edits to the qrels included),
and runs were tagged with the md5 from `data.dvc` rather than of what was read. Here every file is hashed the
way DVC hashes a folder (md5 per file; the folder's md5 is the md5 of the sorted `[{"md5", "relpath"}]` list),
so unmodified data reads back exactly the md5 in `data.dvc`, and each file is compared with DVC's manifest
(from the local DVC cache, else the remote in `.dvc/config`; the manifest itself is checked against the pointer).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.io import DataError

log = logging.getLogger(__name__)


class DataModified(DataError):
    """Files under `data/` differ from the versions `data.dvc` pins."""


@dataclass(frozen=True)
class DataState:
    """What was found: the pinned and the read md5, and the files that differ (relative to the data folder)."""

    pinned: str | None  # data.dvc's md5 (None: no pointer)
    read: str  # DVC's folder md5 of what is there now
    verified: bool  # False: no manifest to compare with (no DVC cache or remote); counted, never silent
    modified: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    why_unverified: str | None = None
    allowed: bool = field(default=False)

    def record(self) -> dict[str, Any]:
        """The datacard's `data` entry (and the runs' data tags)."""
        out = {"md5_read": self.read, "md5_pinned": self.pinned, "verified": self.verified,
               "modified": list(self.modified), "missing": len(self.missing), "extra": list(self.extra)}
        if self.allowed:
            out["allowed_modified"] = True
        if self.why_unverified:
            out["why_unverified"] = self.why_unverified
        return out


def file_md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - DVC's content hash, not a security boundary
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_md5(entries: list[dict[str, str]]) -> str:
    """DVC 3's hash of a folder from its `[{"md5", "relpath"}]` entries."""
    text = json.dumps(sorted(entries, key=lambda e: e["relpath"]), sort_keys=True)
    return hashlib.md5(text.encode()).hexdigest() + ".dir"  # noqa: S324


def _pinned(pointer: Path) -> str | None:
    if not pointer.exists():
        return None
    outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or [{}]
    md5 = outs[0].get("md5") if isinstance(outs[0], dict) else None
    return str(md5) if md5 else None


def _manifest(project: Path, md5: str) -> tuple[list[dict[str, str]] | None, str | None]:
    """DVC's file list for `md5` from the local cache or the configured remote, checked against the md5 itself."""
    rel = Path("files") / "md5" / md5[:2] / md5[2:]
    places = [project / ".dvc" / "cache" / rel]
    config = configparser.ConfigParser()
    config.read(project / ".dvc" / "config")
    for section in config.sections():
        url = config[section].get("url")
        if section.startswith("remote") and url and "://" not in url:
            places.append((project / ".dvc" / url).resolve() / rel)
    for place in places:
        if place.exists():
            raw = place.read_bytes()
            if hashlib.md5(raw).hexdigest() + ".dir" != md5:  # noqa: S324
                return None, f"{place}: the manifest does not hash to {md5}"
            return json.loads(raw), None
    return None, f"the manifest of {md5} is in neither the DVC cache nor a local remote"


def check_data(data_dir: Path) -> DataState:
    """Hash every file under `data_dir` and compare with the manifest `<data_dir>.dvc` pins."""
    data_dir = Path(data_dir).resolve()
    pointer = data_dir.parent / f"{data_dir.name}.dvc"
    files = sorted(p for p in data_dir.rglob("*") if p.is_file()) if data_dir.is_dir() else []
    found = {p.relative_to(data_dir).as_posix(): file_md5(p) for p in files}
    read = folder_md5([{"md5": m, "relpath": r} for r, m in found.items()])
    pinned = _pinned(pointer)
    if pinned is None:
        return DataState(None, read, False, why_unverified=f"{pointer} is missing")
    manifest, why = _manifest(pointer.parent, pinned)
    if manifest is None:
        return DataState(pinned, read, False, why_unverified=why)
    expected = {e["relpath"]: e["md5"] for e in manifest}
    return DataState(
        pinned, read, True,
        modified=tuple(r for r in sorted(expected) if r in found and found[r] != expected[r]),
        missing=tuple(r for r in sorted(expected) if r not in found),
        extra=tuple(r for r in sorted(found) if r not in expected))


def verify_data(data_dir: Path, allow_modified: bool = False) -> DataState:
    """`check_data`, refusing modified files unless `allow_modified` (then recorded as allowed)."""
    state = check_data(data_dir)
    if not state.verified:
        log.warning("%s not verified against its .dvc pointer: %s", data_dir, state.why_unverified)
    if state.modified:
        if not allow_modified:
            shown = ", ".join(state.modified[:5]) + (f" and {len(state.modified) - 5} more" if len(state.modified) > 5 else "")
            raise DataModified(f"{data_dir}: {len(state.modified)} file(s) differ from the versions data.dvc pins "
                               f"({shown}); restore them with `dvc checkout --force data.dvc` (or `r1ranker "
                               "setup-data`), or pass --allow-modified-data to prepare from them anyway (recorded)")
        log.warning("%s: preparing from %d modified file(s), as allowed: %s", data_dir, len(state.modified),
                    ", ".join(state.modified[:5]))
        state = DataState(**{**state.__dict__, "allowed": True})
    return state
