# Two commands do all the set-up on a fresh machine:
#   make demo   - the whole lifecycle on the embedded default (SQLite + local files)
#   make test   - lint, type-check, layer check and the test suite
PYTHON ?= python3
# VENV=/tmp/x make demo tries the fresh-machine path without touching .venv/.
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two stamps: `make demo` installs the light .[demo] extra, `make test` everything; .[all,dev]
# includes .[demo], so the test install also satisfies the demo's stamp.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP      := $(VENV)/.installed
# pip's own progress (one line per package, a bar while downloading) instead of minutes of silence.
PIP := $(BIN)/python -m pip install --progress-bar on --disable-pip-version-check

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	@echo "==> creating the virtualenv $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade "pip>=24"

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing shipyard and what the demo needs (.[demo]: scikit-learn, the serving stack)"
	$(PIP) -e ".[demo]"
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing shipyard with every extra and the dev tools (.[all,dev]: Ray, ONNX, moto, mypy, ...)"
	$(PIP) -e ".[all,dev]"
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	@echo "==> running examples/churn/demo.py (data → tracked runs → registry → card → lineage → serving)"
	$(BIN)/python examples/churn/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	bash benchmarks/setup_peers.sh
	bash benchmarks/setup_prefect.sh
	bash benchmarks/setup_serving_peers.sh
	bash benchmarks/setup_feast.sh
	bash benchmarks/setup_evidently.sh
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/flows.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/monitoring.py

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .mypy_cache .ruff_cache
