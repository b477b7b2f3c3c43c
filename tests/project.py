"""A scratch copy of the project for end-to-end tests: its own artifacts/, mlflow.db and DVC state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORE = (ROOT / ".." / "shared" / "dvc-store").resolve()


def make_project(dest: Path) -> Path:
    """Copy the tracked (and untracked, not ignored) files and data/; point DVC's remote at the team store."""
    dest = Path(dest)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    shutil.copytree(ROOT / "data", dest / "data")
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    if STORE.exists():  # the remote in .dvc/config is relative to the real checkout
        subprocess.run([str(bin_dir() / "dvc"), "remote", "modify", "--local", "team-store", "url", str(STORE)],
                       cwd=dest, check=True, capture_output=True)
    return dest


def bin_dir() -> Path:
    import sys

    return Path(sys.executable).parent


def env_with_venv(**extra: str) -> dict[str, str]:
    """This interpreter's bin first on PATH (r1ranker, dvc, prefect, mlflow), plus `extra`."""
    return {**os.environ, "PATH": f"{bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def corrupt_samples(dest: Path) -> dict:
    """A custom JSONL task where one candidate is a 6,500-character scraped page (validate allows 5,000).

    Returns the overrides that make the pipeline prepare, train and evaluate only that task.
    """
    rows = [json.loads(line) for line in (ROOT / "docs/examples/custom-qa.jsonl").read_text().splitlines()]
    rows[1]["candidates"][0]["text"] = "scraped page " * 500
    (dest / "corrupt.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"prepare.tasks": {"custom-qa": {"source": "jsonl", "path": "corrupt.jsonl", "test_groups": 1}},
            "prepare.select": ["custom-qa"], "train.tasks": ["custom-qa"], "evaluate.tasks": ["custom-qa"],
            "register.name": "iranker-corrupt"}
