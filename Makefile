# Driftgate: `make run` runs the pipeline on the embedded data, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PARAMS ?= params/default.yaml
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint lab setup clean-outputs

# Set-up: create .venv once; reinstall only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (driftgate)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/driftgate run --params $(PARAMS)

test: $(STAMP)
	$(BIN)/python -m pytest

# Everything but the tests marked slow (notebook runs, other driftgate processes, mlflow server,
# Dask clusters, pip builds, Chromium, npm), on two worker processes, fewer generated tables.
test-fast: $(STAMP)
	DRIFTGATE_QUICK=1 $(BIN)/python -m pytest -m "not slow" -n 2

# ruff, then the import-linter contracts of pyproject.toml (layers, no cycles).
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean-outputs:
	rm -rf outputs
