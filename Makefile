# The two commands of the README: `make demo` and `make test`. Both bootstrap .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Prefect: never the user's own home, no telemetry from an offline machine, quiet task logs.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL := WARNING

.PHONY: demo test lint sqlfix typecheck unit bench chaos clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/margin-etl demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql

# rewrites the SQL models in the style .sqlfluff sets (review the diff)
sqlfix: $(STAMP)
	$(BIN)/sqlfluff fix sql

typecheck: $(STAMP)
	$(BIN)/mypy cli flows storage sql connectors models simulator bench

# a test file runs on one worker (its module fixtures, such as the Prefect workers, once)
PYTEST_WORKERS ?= 2
unit: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# the linters and mypy run side by side (each uses one core), then the tests
test: $(STAMP)
	$(MAKE) --no-print-directory --output-sync=target -j2 lint typecheck
	$(MAKE) --no-print-directory unit

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .prefect .mypy_cache .pytest_cache .ruff_cache

# The fault campaign (not part of `make test`): 100 seeded runs killed, resumed and compared.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos
