"""data/ is checked against data.dvc before preparation reads it: a valid-JSON edit of the qrels is refused by
name (or, with --allow-modified-data, recorded), unmodified data reads back data.dvc's own md5, and
setup-data reports what dvc said instead of falling back over a modified file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from components.data_check import DataModified, check_data, verify_data
from components.io import load_json

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
QRELS = "trec-dl/dl19_qrels.json"


@pytest.fixture
def project(tmp_path, data_root) -> Path:
    """A project folder with data.dvc, the DVC manifest in its cache, and DL19's two files under data/."""
    shutil.copy(ROOT / "data.dvc", tmp_path / "data.dvc")
    pinned = (ROOT / "data.dvc").read_text().split("md5: ")[1].split()[0]
    rel = Path("files") / "md5" / pinned[:2] / pinned[2:]
    source = next(p for p in (ROOT / ".dvc" / "cache" / rel, ROOT.parent / "shared" / "dvc-store" / rel) if p.exists())
    (tmp_path / ".dvc" / "cache" / rel).parent.mkdir(parents=True)
    shutil.copy(source, tmp_path / ".dvc" / "cache" / rel)
    (tmp_path / "data" / "trec-dl").mkdir(parents=True)
    for name in ("dl19_qrels.json", "dl19_bm25_top100.json"):
        shutil.copy(Path(data_root) / "trec-dl" / name, tmp_path / "data" / "trec-dl" / name)
    return tmp_path


def relabel(project: Path) -> None:
    path = project / "data" / QRELS
    qrels = json.loads(path.read_text())
    qid = sorted(qrels)[0]
    qrels[qid] = {doc: 3 for doc in qrels[qid]}  # still valid JSON, every judged passage now "perfect"
    path.write_text(json.dumps(qrels))


def test_the_real_data_reads_back_the_pinned_md5(data_root):
    state = check_data(Path(data_root))
    assert state.verified and not state.modified and state.read == state.pinned


def test_a_valid_json_edit_of_the_qrels_is_named(project):
    assert verify_data(project / "data").verified
    relabel(project)
    state = check_data(project / "data")
    assert state.verified and state.modified == (QRELS,)
    with pytest.raises(DataModified, match=f"1 file\\(s\\) differ from the versions data.dvc pins \\({QRELS}\\)"):
        verify_data(project / "data")


def test_prepare_refuses_modified_data_before_writing_and_records_it_when_allowed(project):
    relabel(project)
    out = project / "samples"
    args = ["prepare", "--tasks", "trec-dl19", "--data-root", str(project / "data"), "--out", str(out),
            "--params", str(ROOT / "params.yaml")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and QRELS in result.output and "--allow-modified-data" in result.output
    assert not out.exists()
    result = runner.invoke(app, [*args, "--allow-modified-data"])
    assert result.exit_code == 0, result.output
    data = load_json(out / "datacard.json")["trec-dl19"]["data"]
    assert data["modified"] == [QRELS] and data["allowed_modified"] and data["md5_read"] != data["md5_pinned"]


def test_setup_data_names_modified_files_instead_of_falling_back(project, monkeypatch):
    from components import data_setup

    relabel(project)
    monkeypatch.setattr(data_setup, "dvc_pull", lambda root, remote=None: (
        False, "ERROR: failed to pull data from the cloud - Checkout failed for following targets:\ndata"))
    monkeypatch.setattr(data_setup, "movielens_from_pypi", lambda d: pytest.fail("fell back over a modified file"))
    with pytest.raises(DataModified, match=f"differ from data.dvc \\({QRELS}\\).*dvc said: ERROR: failed to pull"):
        data_setup.setup_data(project)
