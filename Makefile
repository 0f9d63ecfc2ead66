# Every target works on a fresh machine with nothing but Python 3.11+. `make test` also
# installs the Debian packages of the servers some tests start (see "services" below).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run PORT=8090` serves on another port (as does MPO_PORT=8090 in the environment)
PORT ?=

.PHONY: run test lint typecheck unit services browser bench console-screenshot clean mutate mutate-api

$(BIN)/python:
	@echo "==> Creating $(VENV) with $(PYTHON) (once)"
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	@echo "==> Installing mpo-realtime and its dependencies into $(VENV) (about a minute, once)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# Optional: a current ClickHouse engine in process, to run the ClickHouse store's SQL
	@# on a current release in the tests (without it, that one test skips and says why).
	$(BIN)/python -m pip install --quiet "chdb>=3" || echo "==> chdb could not be installed"
	@touch $(STAMP)
	@echo "==> Installed"

run: $(STAMP)
	$(BIN)/mpo serve --demo $(if $(PORT),--port $(PORT))

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache  # the layer contracts in pyproject.toml

typecheck: $(STAMP)
	$(BIN)/mypy
	# tests and benchmarks: typed, with untyped helpers allowed (httpx's style)
	MYPYPATH=benchmarks $(BIN)/mypy --explicit-package-bases --allow-untyped-defs \
		--allow-incomplete-defs --allow-untyped-decorators --check-untyped-defs tests benchmarks

# The tests use PostgreSQL, Redis and ClickHouse at their standard addresses when they
# answer, else start throwaway servers from these Debian packages (tests/services.py).
# Installed only where absent and only as root with apt-get; a quick check otherwise.
SERVICE_PACKAGES := postgresql:/usr/lib/postgresql/*/bin/postgres \
	redis-server:/usr/bin/redis-server clickhouse-server:/usr/sbin/clickhouse-server

services:
	@missing=""; \
	for entry in $(SERVICE_PACKAGES); do \
		package=$${entry%%:*}; binary=$${entry#*:}; \
		ls $$binary >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "==> Not installing$$missing (needs root and apt-get): the tests that need them"; \
		echo "    use a server already running at its standard address, or are skipped"; \
		exit 0; \
	fi; \
	echo "==> Installing Debian packages for the service tests:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && \
		  apt-get install -y -q --no-install-recommends $$missing >/dev/null; } || \
		echo "==> Could not install$$missing: the tests that need them may be skipped"


# The console's browser tests drive Debian's Chromium through Playwright (Playwright's own
# browser download cannot work here). Installed when absent and we may; else those tests
# skip and say why (on CI, CI=true, they fail instead).
CHROMIUM := /usr/bin/chromium

browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the console's browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	      >/dev/null || echo "chromium could not be installed"; \
	  else echo "chromium is absent and cannot be installed here (not root or no apt-get)"; fi; \
	fi

unit: $(STAMP) services browser
	$(BIN)/pytest -q

test: lint typecheck unit

# Mutation testing of the core with mutmut ([tool.mutmut] in pyproject.toml): long (see
# docs/testing.md for figures), never part of `make test`. One module at a time with
# `make mutate MUTANTS='mpo_realtime.domain.plan.*'`; survivors: `.venv/bin/mutmut results`,
# one of them in full: `.venv/bin/mutmut show NAME`.
MUTANTS ?=

mutate: $(STAMP)
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results

# The export service (reuse, settle, scope) and the API's checks, whose mutants only
# acceptance tests kill: in a copy of the project under var/mutate-api/, with the
# settings of tests/mutmut-api.toml (results: `cd var/mutate-api && ../../.venv/bin/mutmut results`).
MUTATE_API := var/mutate-api

mutate-api: $(STAMP)
	mkdir -p $(MUTATE_API)
	rm -rf $(MUTATE_API)/src $(MUTATE_API)/tests
	cp -r src tests $(MUTATE_API)/
	$(BIN)/python -c 'import re, sys; main = open("pyproject.toml").read(); \
		api = open("tests/mutmut-api.toml").read(); \
		sys.stdout.write(re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[)", lambda _: api + "\n", main))' \
		> $(MUTATE_API)/pyproject.toml
	cd $(MUTATE_API) && ../../$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	cd $(MUTATE_API) && ../../$(BIN)/mutmut results

# Benchmarks are long and measure this machine: run them by hand, figures in docs/benchmarks.md.
bench: $(STAMP) browser
	$(BIN)/python benchmarks/bench_writers.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_exports.py
	$(BIN)/python benchmarks/bench_poll_cpu.py
	$(BIN)/python benchmarks/bench_poll.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/bench_console.py

# docs/console.png: the console with a real chart (simulated traffic, real server, Chromium)
console-screenshot: $(STAMP) browser
	$(BIN)/python -m tests.integration.console_screenshot docs/console.png

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
