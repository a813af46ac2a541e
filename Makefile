# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# GOV.UK Frontend for the pages, and the OpenID provider the tests sign in against (package-lock.json).
NODE_STAMP := node_modules/.package-lock.json
PG_DEFAULT := postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test test-fast lint install clean bench openapi screenshots

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "needs Node 20 and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

run: $(STAMP) $(NODE_STAMP)
	$(BIN)/dispute-service serve --demo --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# lint-imports checks the layers in pyproject.toml; the graph is small, so it leaves no cache in the tree.
lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Everything: lint, then every test on SQLite and PostgreSQL, slow ones included.
test: lint
	DISPUTES_TEST_POSTGRES_URL=$${DISPUTES_TEST_POSTGRES_URL:-$(PG_DEFAULT)} $(BIN)/python -m pytest

# The quick loop: SQLite only, no real-process tests.
test-fast: $(STAMP) $(NODE_STAMP)
	env -u DISPUTES_TEST_POSTGRES_URL $(BIN)/python -m pytest -m "not slow and not postgres" -q

# Issue 11's benchmarks (bench/api.py, timers.py, report.py), one table of figures beside their targets:
# about 15 minutes on the project's 2-core machine; `make bench ARGS=--quick` (about 4) or `ARGS=--full`.
# Needs Debian's wrk; PostgreSQL is skipped, loudly, when it cannot be reached.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || { echo "make bench needs wrk: apt-get install -y wrk (Debian, Ubuntu)"; exit 1; }
	DISPUTES_TEST_POSTGRES_URL=$${DISPUTES_TEST_POSTGRES_URL:-$(PG_DEFAULT)} $(BIN)/python bench/all.py $(ARGS)

# After a change to the API's routes or schemas; tests/api/test_openapi.py fails until this is rerun.
openapi: $(STAMP)
	$(BIN)/dispute-service openapi --output docs/openapi.json

# docs/screenshots/: a PNG of each page (tests/browser/support.py's PAGES) at desktop width, signed in as the
# demo person it is for, on the demo data at a fixed time. Needs Chromium, as the browser tests do.
screenshots: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m scripts.screenshots

clean:
	rm -rf $(VENV) node_modules *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
