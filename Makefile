# Two entry points: `make demo` and `make test`. Both create the environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-long lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m r2dn.demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 -m "not slow" tests r2dn README.md

test-long: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m slow tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Documentation site and release checks (the docs extra is installed on first use).
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: docs docs-check wheel-check

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,docs,release]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict

# Serve the built site, screenshot it in headless Chromium (build/docs-check/) and check it.
docs-check: docs
	$(BIN)/python docs/check_site.py --site site --out build/docs-check

wheel-check: $(DOCS_STAMP)
	bash docs/wheel_check.sh $(BIN)/python
