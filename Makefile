# Two commands do everything on a fresh machine with only Python 3.11:
#   make report   create .venv, install the project, produce the weekly report from data/
#   make test     install what the tests need and run the fast suite
#   make lint     ruff (lint and format check) and mypy, as CI runs them
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install report chromium test test-slow data-check lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# The weekly report on the shipped data with the defaults; it prints where the report is.
report: $(STAMP)
	$(BIN)/forecast report

# The report test drives Debian's chromium (never a browser downloaded at run time).
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && apt-get install -y --no-install-recommends chromium; \
	else \
		echo "note: chromium is not installed and cannot be installed here (needs root and apt-get);"; \
		echo "      tests/test_report_browser.py will be skipped. Install it with: sudo apt-get install chromium"; \
	fi

data-check: $(STAMP)
	$(BIN)/forecast data check

test: $(STAMP) chromium
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# Execute every notebook in notebooks/ top to bottom on the shipped data with few draws
# (outputs are not saved: the notebooks stay stripped in git).
NOTEBOOK_DRAWS ?= 200
.PHONY: notebooks
notebooks: $(STAMP)
	FORECAST_NOTEBOOK_DRAWS=$(NOTEBOOK_DRAWS) $(BIN)/jupyter execute --timeout=1200 notebooks/*.ipynb

# The linters and stubs come pinned from the project's `dev` extra (pyproject.toml).
DEV_STAMP := $(VENV)/.installed-dev
$(DEV_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(DEV_STAMP)

lint: $(DEV_STAMP)
	$(BIN)/ruff check forecast tests tools
	$(BIN)/ruff format --check forecast tests tools
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
