PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PORT ?= 3000
DAYS ?= 14

.PHONY: demo test lint dev bench sandbox rehearse clean lock

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy,sandbox]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/timesheet-assets demo --days $(DAYS)

# Four workers on two cores: most of the suite waits on vendor rate limits and subprocesses.
# --dist loadfile keeps each test file on one worker (module fixtures are set up once), and
# --no-loadscope-reorder sends files in collection order, so the long ones start first.
test: $(STAMP)
	$(BIN)/python -m pytest -n 4 --dist loadfile --no-loadscope-reorder -q

# Style, types and the code location as `dg` loads it (the tools come with the dev extra).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	VIRTUAL_ENV=$(CURDIR)/$(VENV) DAGSTER_HOME=$$(mktemp -d) $(BIN)/dg check defs

# make dev PORT=3001 for another port; a second dev on the same .dagster_home/ is refused.
dev: $(STAMP)
	$(BIN)/timesheet-assets dev --port $(PORT) --days $(DAYS)

# The benchmarks also need the peer pipeline they compare with (dlt, the bench extra).
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy,sandbox,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run

sandbox: $(STAMP)
	$(BIN)/timesheet-assets sandbox --days $(DAYS)

# The production deployment rehearsed on this machine with a run worker and the code server
# killed (PostgreSQL, code server, webserver, dagster-daemon, vendor sandboxes): see
# tests/reliability/rehearsal.py. Takes 5-10 minutes; prints what it measured.
rehearse: $(STAMP)
	$(BIN)/python -m tests.reliability.rehearsal

clean:
	rm -rf $(VENV) .dagster_home warehouse.duckdb

# The production image's pinned dependency set (deploy/requirements.lock), from pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra deploy --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --annotation-style line --no-header \
		-o deploy/requirements.lock
