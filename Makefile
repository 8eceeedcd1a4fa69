# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-worker lint typecheck unit kafka-up kafka-fetch browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The demo needs the embedded engine, ONNX Runtime and rich (demo extra); tests need everything
# (dev extra).
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
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

# The console's browser tests drive Debian's Chromium through its ChromeDriver: installed here
# when missing (the package lists are refreshed only if the first try fails).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver; }; }

# The whole suite: lint, types, then pytest (its session fixture starts a real Kafka broker and
# stops it at the end; AUDITLINE_TEST_KAFKA=host:port uses an existing broker instead).
test: lint typecheck kafka-fetch browser
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
