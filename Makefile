# Two commands do everything on a fresh machine with only Python 3.11:
#   make report   create .venv, install the project, produce the weekly report from data/
#   make test     install what the tests need and run the fast suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install report test test-slow data-check lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# Until the weekly report lands (issue #4) this prints the data summary of the shipped data.
report: $(STAMP)
	$(BIN)/forecast data check

data-check: $(STAMP)
	$(BIN)/forecast data check

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check forecast tests
	$(BIN)/ruff format --check forecast tests

clean:
	rm -rf $(VENV) build *.egg-info
