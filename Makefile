# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
STRIPE_DEV_PORT ?= 8420
INSTANCE ?= instance
FLASK := $(BIN)/flask --app app

.DEFAULT_GOAL := help
.PHONY: help run stack install install-app test pytest lint format typecheck imports bench faults soak chromium promtool alerts clean frontend frontend-check frontend-types

help:
	@echo "make run      serve http://127.0.0.1:$(PORT) on the embedded default (SQLite, no services)"
	@echo "make stack    web, worker and bridge together (honcho on the Procfile) on the services in the environment"
	@echo "make test     install dev dependencies and run every check and test suite"
	@echo "make install  create $(VENV) with everything 'make test' needs"
	@echo "make lint     ruff (lint + format check), mypy, import-linter"
	@echo "make bench    run the benchmarks under bench/"
	@echo "make faults   chaos round and RabbitMQ restart on the services in the environment (minutes)"
	@echo "make soak     50 users for 120 s per phase while Redis and PostgreSQL fail (bench/soak/)"
	@echo "make frontend build the React client into static/app/ (served at /app/; needs npm)"
	@echo "make alerts   check and unit-test the Prometheus alert rules in ops/ (promtool)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-run pip only when pyproject.toml changes, so a second `make run` starts fast.
$(VENV)/.app-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.soak-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,soak]'
	@touch $(VENV)/.app-installed $(VENV)/.dev-installed $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(VENV)/.app-installed $@

install-app: $(VENV)/.app-installed
install: $(VENV)/.dev-installed

run: export LOG_JSON ?= 0
run: export PORT := $(PORT)
run: install-app
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory frontend; \
	else echo "note: npm not found, so the React client (/app/) is not built; install Node.js 20+ and npm, then run 'make frontend'"; fi
	@mkdir -p $(INSTANCE)
	@$(FLASK) db upgrade
	@if [ ! -f $(INSTANCE)/.seeded ]; then $(FLASK) seed && touch $(INSTANCE)/.seeded; \
	else echo "Demo data already loaded (delete $(INSTANCE)/.seeded to reseed). Sign in as admin@example.com, user@example.com or guest@example.com with password demo-password."; fi
	@echo "Serving http://127.0.0.1:$(PORT)  (Ctrl+C to stop)"
	@if [ -z "$$STRIPE_API_KEY" ] && [ "$${APP_ENV:-development}" != production ]; then \
	  $(BIN)/python -c 'import localstripe' 2>/dev/null || $(BIN)/pip install --quiet 'localstripe>=1.15.10'; \
	  $(BIN)/python -m localstripe --port $(STRIPE_DEV_PORT) --from-scratch >$(INSTANCE)/localstripe.log 2>&1 & ls_pid=$$!; \
	  trap 'kill $$ls_pid 2>/dev/null' EXIT INT TERM; \
	  export STRIPE_API_KEY=sk_test_localstripe STRIPE_API_BASE=http://127.0.0.1:$(STRIPE_DEV_PORT) \
	         STRIPE_JS_URL=http://127.0.0.1:$(STRIPE_DEV_PORT)/js.stripe.com/v3/; \
	  echo "Test payments through localstripe on port $(STRIPE_DEV_PORT): card 4242 4242 4242 4242 pays (no real money)"; \
	  $(FLASK) run --host 127.0.0.1 --port $(PORT); \
	else $(FLASK) run --host 127.0.0.1 --port $(PORT); fi

# The full stack: web, worker and bridge from the Procfile, on the services the environment
# names; every process writes its metrics to one directory, so /metrics shows them all.
stack: install
	@if [ -z "$$DATABASE_URL" ] || [ -z "$$REDIS_URL" ] || [ -z "$$RABBITMQ_URL" ]; then \
	  echo "make stack needs DATABASE_URL, REDIS_URL and RABBITMQ_URL (see README, Full-stack mode)"; exit 1; fi
	@$(FLASK) db upgrade
	@export PROMETHEUS_MULTIPROC_DIR=$$(mktemp -d) PORT=$(PORT) PATH="$(abspath $(BIN)):$$PATH"; \
	  echo "Serving http://127.0.0.1:$(PORT) with a worker and a bridge (Ctrl+C stops all three)"; \
	  $(BIN)/honcho start -f Procfile web worker bridge

# Browser tests drive Debian's Chromium; install it when we can (root + apt), else they skip.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium missing and cannot be installed here; browser tests will skip"; fi; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The alert rules and dashboard in ops/ are checked with promtool (Debian's prometheus package,
# which on a machine without systemd starts no server); installed like chromium, else skipped.
promtool:
	@if ! command -v promtool >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's prometheus for promtool..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "note: promtool missing and cannot be installed here; the alert rule checks will skip"; fi; \
	fi

# Only the rules: promtool's syntax check and the alerts' unit tests (pytest runs both too).
alerts: promtool
	promtool check rules ops/prometheus/alerts.yml
	promtool test rules ops/prometheus/alerts_test.yml

pytest: install chromium promtool
	$(BIN)/pytest

test: lint frontend-check pytest

# The React client (frontend/): installed from package-lock.json, built into static/app/.
frontend:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build

# Lint, type check, unit tests and a build; skipped with a note only where npm is missing
# (.ci/run installs Debian's nodejs and npm first).
frontend-check:
	@if ! command -v npm >/dev/null; then echo "note: npm not found; skipping the React client's checks (install Node.js 20+ and npm)"; exit 0; fi; \
	set -e; cd frontend; npm ci --no-audit --no-fund --loglevel=error; npm run lint; npm run typecheck; npm test; npm run build

# After an API change: the OpenAPI document and the TypeScript types generated from it.
frontend-types: install
	$(FLASK) openapi > frontend/openapi.json
	cd frontend && npm run types:write

# Benchmarks print figures with a baseline measured in the same run (see README).
bench: install
	$(BIN)/python bench/cache.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/tables.py
	$(BIN)/python bench/jobs.py

# Fault rounds on the services the environment names; not part of `make test` (minutes).
# The restart round runs a RabbitMQ node of its own: the shared broker is never restarted.
faults: install
	@if [ -z "$$DATABASE_URL" ] || [ -z "$$REDIS_URL" ] || [ -z "$$RABBITMQ_URL" ]; then \
	  echo "make faults needs DATABASE_URL (PostgreSQL), REDIS_URL and RABBITMQ_URL"; exit 1; fi
	$(BIN)/python -m bench.faults.chaos
	$(BIN)/python -m bench.faults.rabbit_restart

# Not part of `make test`: about 15 minutes. It runs its own PostgreSQL and Redis on spare
# loopback ports (never the shared ones); SOAK_PHASE_SECONDS=40 for a quicker look.
soak: $(VENV)/.soak-installed
	$(BIN)/python -m bench.soak.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
