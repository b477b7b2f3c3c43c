"""Restore the raw datasets folder `data/`.

First choice: `dvc pull` from the team remote (checksums verified by DVC).
Fallback, for a machine without the team store: MovieLens-100K from the
`recbole==1.2.1` wheel on PyPI (sha256 pinned), so the demo still runs on real
data; the other tasks then report that their files are missing.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from components.io import atomic_dir
from components.pypi import fetch_wheel
from components.data_check import DataModified, check_data

log = logging.getLogger(__name__)

RECBOLE = ("recbole", "1.2.1", "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407")
ML100K_MEMBERS = ("ml-100k.inter", "ml-100k.item")


def dvc_pull(root: Path, remote: str | None = None) -> tuple[bool, str]:
    # the dvc installed beside this interpreter (the project venv) wins over PATH
    sibling = Path(sys.executable).parent / "dvc"
    dvc = str(sibling) if sibling.exists() else shutil.which("dvc")
    if dvc is None:
        return False, "dvc is not installed"
    cmd = [dvc, "pull", "data.dvc"] + (["--remote", remote] if remote else [])
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def movielens_from_pypi(data_dir: Path) -> Path:
    """Extract ml-100k from the pinned recbole wheel into `data_dir/movielens-100k`."""
    wheel = fetch_wheel(*RECBOLE)
    target = data_dir / "movielens-100k"
    with zipfile.ZipFile(wheel) as zf, atomic_dir(target) as tmp:
        for member in ML100K_MEMBERS:
            (tmp / member).write_bytes(zf.read(f"recbole/dataset_example/ml-100k/{member}"))
    return target


def setup_data(root: Path, remote: str | None = None) -> str:
    """`dvc pull`, reporting what it said; a modified tracked file is an error, never a reason to fall back."""
    ok, output = dvc_pull(root, remote)
    said = " ".join(line.strip() for line in output.splitlines()[-3:] if line.strip())[:400] or "no output"
    if ok:
        return f"data/ restored with `dvc pull` from the team store (dvc: {said})"
    state = check_data(root / "data")
    if state.modified:  # dvc refuses to overwrite them: the fallback would leave them in place, unreported
        raise DataModified(f"dvc pull failed because {len(state.modified)} file(s) under data/ differ from data.dvc "
                           f"({', '.join(state.modified[:5])}); restore them with `dvc checkout --force data.dvc` "
                           f"(dvc said: {said})")
    log.warning("dvc pull failed (%s); falling back to MovieLens-100K from PyPI", said)
    path = movielens_from_pypi(root / "data")
    return (f"dvc pull failed (dvc said: {said}): MovieLens-100K extracted from recbole==1.2.1 into {path} "
            "(other tasks unavailable)")
