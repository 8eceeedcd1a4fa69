# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-worker lint typecheck unit kafka-up kafka-fetch bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The demo needs the embedded engine (store extra); tests need everything (dev extra).
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[store]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/auditline demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

kafka-fetch: $(VENV)/.dev-installed
	$(BIN)/python -m auditline.testing.kafka_broker fetch

# The whole suite: lint, types, then pytest (its session fixture starts a real Kafka broker and
# stops it at the end; AUDITLINE_TEST_KAFKA=host:port uses an existing broker instead).
test: lint typecheck kafka-fetch
	$(BIN)/pytest

# The faust worker restart test (intermittent stall after kill -9, see tests/integration/test_worker.py)
test-worker: $(VENV)/.dev-installed kafka-fetch
	$(BIN)/pytest -m worker

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -m 'not integration and not slow'

kafka-up: $(VENV)/.dev-installed
	$(BIN)/python -m auditline.testing.kafka_broker up

bench: $(VENV)/.dev-installed
	for b in bench/[!_]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .auditline
