# Two commands do all the set-up on a fresh machine:
#   make demo   - the whole lifecycle on the embedded default (SQLite + local files)
#   make test   - lint, type-check, layer check and the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
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
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/flows.py
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .mypy_cache .ruff_cache
