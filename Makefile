# The two set-up commands: `make serve` and `make test`. Each creates .venv
# and installs what it needs first (only Python 3.11 must be on the machine).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: serve test test-fast install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The service alone.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# Service + training + test tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[train,test]'
	touch $@ $(VENV)/.base

install: $(VENV)/.dev

serve: $(VENV)/.base
	$(BIN)/unmask serve

# Two workers, a file each at a time (module fixtures stay shared), longest files first (tests/conftest.py):
# the long tests wait on servers and subprocesses as much as they compute.
test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -ra --durations=15 -n 2 --dist loadfile --no-loadscope-reorder

test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -q -ra -m "not slow"

bench: $(VENV)/.dev
	$(BIN)/python bench/classify_speed.py

clean:
	rm -rf $(VENV) .pytest_cache
