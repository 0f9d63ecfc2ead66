# Every target works on a fresh machine with nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit browser bench console-screenshot clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mpo serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy
	# tests and benchmarks: typed, with untyped helpers allowed (httpx's style)
	MYPYPATH=benchmarks $(BIN)/mypy --explicit-package-bases --allow-untyped-defs \
		--allow-incomplete-defs --allow-untyped-decorators --check-untyped-defs tests benchmarks

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

unit: $(STAMP) browser
	$(BIN)/pytest -q

test: lint typecheck unit

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
