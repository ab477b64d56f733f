# Two entry points: `make repro` (build the environment, run the whole pipeline) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export PATH := $(BIN):$(PATH)

.PHONY: venv repro test lint bench pull clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

repro: $(STAMP)
	$(BIN)/dvc repro

# dvc pull, and on failure a check that names every missing or corrupted object on the remote and what to do
pull: $(STAMP)
	$(BIN)/dvc pull --run-cache || { $(BIN)/python scripts/check_remote.py; exit 1; }

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src stages tests benchmarks scripts
	$(BIN)/ruff format --check src stages tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_train_lazy.py

clean-venv:
	rm -rf $(VENV)
