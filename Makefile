SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Installed packages are compiled to bytecode once, at install: every service start and test process then
# imports them without compiling (which also holds where PYTHONDONTWRITEBYTECODE keeps Python from caching).
export UV_COMPILE_BYTECODE := 1

.PHONY: help install up down test test-kafka test-kafka-all lint typecheck bench bench-peer bench-stack bench-steady k8s-validate chaos chaos-short

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml */*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python $(PY)
	@$(PY) -m compileall -q -j 0 libs/*/src services/*/src gateway/src deploy/local/src > /dev/null
	@touch $@

install: $(VENV)/.synced ## Create the virtualenv and install everything (locked)

PACKAGES := sous_events sous_service sous_local sous_catalog sous_executor sous_quality sous_marketplace sous_gateway
TEST_PATHS := libs deploy/local deploy/k8s services gateway tests bench/tests
PYTEST := $(VENV)/bin/pytest

up: install ## Start the whole system on embedded defaults (Ctrl-C stops it)
	$(VENV)/bin/sous up

down: ## Stop a stack started by `make up` in another shell
	@$(VENV)/bin/sous down 2>/dev/null || echo "nothing to stop"

# The executor's integration modules share fixed consumer groups on one broker; each runs in a session (and
# on a broker) of its own, so no module inherits another's group members or unconsumed records.
EXECUTOR_INTEGRATION := $(wildcard services/executor/tests/integration/test_*.py)

test: install ## All tests (unit, integration, e2e, fault) on embedded PostgreSQL + the embedded broker
	$(PYTEST) $(filter-out services,$(TEST_PATHS)) services/marketplace services/quality services/recipe-catalog \
		services/executor/tests/unit -q -p no:cacheprovider
	@set -e; for module in $(EXECUTOR_INTEGRATION); do \
		echo "== $$module"; $(PYTEST) $$module -q -p no:cacheprovider; done

# The broker-sensitive part: the event pipeline (outages, parking, DLQ), the engine's flow and crash recovery,
# the whole-system flows and a new user's read-your-writes flows. CI runs it; the chaos soak covers the rest
# of the system on Apache Kafka.
KAFKA_PATHS := libs services/executor/tests/integration/test_execution_flow.py \
	services/executor/tests/integration/test_crash_recovery.py tests/e2e/test_recipe_flow.py tests/e2e/test_marketplace_flow.py \
	tests/e2e/test_new_user.py

test-kafka: install ## The broker-sensitive tests on a single-node Apache Kafka (jars fetched once)
	SOUS_TEST_BROKER=kafka $(PYTEST) $(KAFKA_PATHS) -q -p no:cacheprovider -m "integration or e2e or fault"

test-kafka-all: install ## Every integration, e2e and fault test on Apache Kafka (slow)
	SOUS_TEST_BROKER=kafka $(PYTEST) $(TEST_PATHS) -q -p no:cacheprovider -m "integration or e2e or fault"

lint: install ## ruff (lint + format check) and the event schema compatibility check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m sous_events.schemas

typecheck: install ## mypy --strict over every package
	$(VENV)/bin/mypy $(addprefix -p ,$(PACKAGES))

bench: install ## Benchmarks (not tests): pipeline, catalog list, executor, gateway overhead, stack start and idle footprint
	$(PY) bench/bench_pipeline.py --broker embedded
	$(PY) bench/bench_pipeline.py --broker kafka
	$(PY) gateway/bench/bench_gateway.py --concurrency 8
	$(PY) gateway/bench/bench_streams.py
	$(PY) services/recipe-catalog/bench/bench_list.py
	$(PY) services/executor/bench/bench_executions.py --broker embedded
	$(PY) services/executor/bench/bench_executions.py --broker kafka
	$(PY) bench/bench_stack.py

# BENCH_PEER_ARGS narrows a run, e.g. BENCH_PEER_ARGS="--engines sous --levels 10 --skip-high" (bench/bench_peer.py -h).
bench-peer: install ## Sous vs DBOS on one PostgreSQL and model server: exec/s, step overhead, start latency
	bash scripts/bench-peer-env.sh
	$(PY) bench/bench_peer.py --broker embedded $(BENCH_PEER_ARGS)
	$(PY) bench/bench_peer.py --broker kafka --skip-high $(BENCH_PEER_ARGS)

bench-steady: install ## Sous's cost per run over consecutive windows of one stack: flat, or growing with the stores
	$(PY) bench/bench_steady.py $(BENCH_STEADY_ARGS)

bench-stack: install ## make up's warm start time, the idle stack's memory (RSS) and CPU
	$(PY) bench/bench_stack.py

k8s-validate: install ## Offline check of deploy/k8s: kustomize render, schema validation, policy scan
	bash scripts/k8s-validate.sh

chaos: install ## Chaos soak (not a test): 1,000 executions on Apache Kafka while every process is killed
	$(PY) -m sous_local.chaos --executions 1000 --broker kafka --kills-per-service 2

chaos-short: install ## The chaos soak's short version: ~100 executions, one kill per service, the same checks
	$(PY) -m sous_local.chaos --executions 100 --broker kafka --kills-per-service 1

.PHONY: test-browser
test-browser: install ## The console in headless Chromium via Playwright (installs Debian's chromium if missing)
	bash scripts/install-browser.sh
	$(PYTEST) tests/browser -m browser -q -p no:cacheprovider
