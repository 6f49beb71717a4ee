# paystream — the two commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYS_STAMP := $(VENV)/.system-packages
# npm packages of the TypeScript client and the Next.js example (stamps inside node_modules)
NODE_PACKAGES := clients/typescript/node_modules/.installed examples/nextjs/node_modules/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install test-tools lock node-tools run test lint format unit integration e2e bench clean

# What running needs: the virtual environment (the embedded broker and store come with it).
install: $(STAMP)

# What only testing needs: promtool, wrk, Chromium, Node and the npm packages.
test-tools: $(SYS_STAMP) $(NODE_PACKAGES)

# Reproducible: every package at the version and hash requirements-dev.lock pins (the runtime
# pins of requirements.lock, which the image uses, plus the dev extra), then paystream itself.
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# After adding, removing or changing a dependency in pyproject.toml: `make lock`, then commit
# both lock files (tests/unit/test_packaging.py fails while pyproject and the locks disagree).
# Pins already in the locks are kept unless pyproject needs others; UPGRADE=1 takes the newest.
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--quiet --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
lock: $(STAMP)
	$(LOCK) --extra dev -o requirements-dev.lock
	$(LOCK) -c requirements-dev.lock -o requirements.lock

# System tools the tests and benchmarks need: promtool (Prometheus rule tests), wrk (the ingest
# benchmark's load generator). Installed from Debian's packages only when missing, so the
# target stays idempotent and fast once done.
$(SYS_STAMP):
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing prometheus (promtool) and alertmanager through apt-get"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null; }
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk through apt-get"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium (the admin view's browser tests, through Playwright) via apt-get"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@mkdir -p $(VENV) && touch $(SYS_STAMP)

# Node (TypeScript client, Next.js example): Debian's nodejs and npm through apt-get only
# when missing; the packages from the committed lock files (npm ci), again only when a lock
# file changed or node_modules is gone. Tests need no network after this.
node-tools:
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing nodejs and npm through apt-get"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }

clients/typescript/node_modules/.installed: clients/typescript/package-lock.json | node-tools
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The example is built (`next build`) and run (`next start`) by the tests, so Next's optional
# native compiler comes too: the lock file carries @next/swc-linux-x64-gnu, npm picks the
# machine's (`npm run build` builds the linked client first, see its scripts/build-client.mjs).
examples/nextjs/node_modules/.installed: examples/nextjs/package-lock.json | node-tools
	cd examples/nextjs && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: install
	$(BIN)/paystream up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two pytest-xdist workers, a test module per unit of work (tests/conftest.py); the slowest
# tests are listed at the end, so a test that grows shows up in every CI log.
test: install test-tools lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --durations=20

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: install test-tools
	$(BIN)/python -m pytest -q tests/integration tests/e2e

bench: install test-tools
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/worker.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
	rm -rf clients/typescript/node_modules clients/typescript/dist examples/nextjs/node_modules \
	  examples/nextjs/.next
