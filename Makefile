# cvprep — `make run` sets everything up and serves; `make test` runs every check CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: setup run test lint check bench browser tools clean

## setup: Python venv + dependencies, front-end packages copied into static/vendor (idempotent)
setup: $(VENV)/.installed static/vendor/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

static/vendor/.installed: node_modules/.package-lock.json
	rm -rf static/vendor && mkdir -p static/vendor/swagger-ui
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.umd.min.js
	cp node_modules/chartjs-chart-matrix/dist/chartjs-chart-matrix.min.js static/vendor/chartjs-chart-matrix.min.js
	cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js static/vendor/swagger-ui/
	@touch $@

## run: set up, migrate, serve on http://$(HOST):$(PORT)
run: setup
	$(BIN)/cvprep db upgrade
	$(BIN)/cvprep serve --host $(HOST) --port $(PORT)

## browser: Debian's Chromium for the browser tests (installed once, when missing)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium; }

## tools: Debian's docker-compose (validates compose.yaml) and redis-server (the Celery
## tests start one when none answers on 127.0.0.1:6379), installed once, when missing
tools:
	@missing=""; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian's$$missing for the tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

## lint: ruff and mypy
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests benchmarks
	$(BIN)/mypy

## check: the question files are valid
check: setup
	$(BIN)/cvprep check-content

## test: lint, content check and the whole test suite (unit, HTTP, database, browser)
test: setup browser tools lint check
	$(BIN)/pytest $(PYTEST_ARGS)

## bench: throughput and latency figures, each beside a baseline measured in the same run
bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache .mypy_cache .ruff_cache
