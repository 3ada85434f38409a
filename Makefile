# The two commands a user needs: `make serve` and `make test`. Both build .venv from nothing.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
# Real weights for the default pipeline live in ../shared/models on development and CI machines;
# elsewhere set OPENAUTOGLM_MODEL_DIR yourself or let ultralytics download.
ifneq ($(wildcard $(SHARED)/models),)
export OPENAUTOGLM_MODEL_DIR ?= $(abspath $(SHARED)/models)
endif
HOST ?= 0.0.0.0
PORT ?= 9090
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: serve test lint bench install clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools wheel

$(VENV)/.installed: $(BIN)/python setup.cfg
	$(PIP) -e '.[model]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[model,test]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PIP) -e '.[bench]'
	touch $@

install: $(VENV)/.installed

serve: $(VENV)/.installed
	$(BIN)/openautoglm serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test browser
	OPENAUTOGLM_SHARED=$(abspath $(SHARED)) $(BIN)/python -m pytest -q

# the report page's test looks at it in Debian's chromium (headless); installed where we are root
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -q --no-install-recommends chromium >/dev/null || \
		(apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null)

# ruff's rules and line length are in pyproject.toml; CI fails on any finding
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/convert_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
