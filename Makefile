# Two set-up commands on a fresh machine (Python 3.11 + make): `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo demo-full demo-alert stop test lint bench bench-backfill clean

# The venv is rebuilt whenever requirements.txt or pyproject.toml is newer than the stamp.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@# Byte-compile once: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every process
	@# would otherwise recompile Airflow, GX and pandas at import (~2x slower start-up).
	@# A few vendored files that are not Python 3.11 make compileall exit 1: ignored.
	-@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m consumption_monitor demo

demo-full: venv
	$(BIN)/python -m consumption_monitor demo --recent all

# Inject a rejected batch (the latest retail period, scratch warehouse) and show the alert.
demo-alert: venv
	$(BIN)/python -m consumption_monitor alerts preview --feed retail_monthly --fault reject

stop: venv
	$(BIN)/python -m consumption_monitor demo --stop

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The peers of bench.tradein (dlt and what it needs) live in their own venv, from their own
# pinned file: never in the product's requirements.
PEERS := .venv-peers
PEERS_STAMP := $(PEERS)/.installed-stamp
$(PEERS_STAMP): bench/requirements-peers.txt $(STAMP)
	@test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(BIN)/uv pip sync --quiet --python $(PEERS)/bin/python bench/requirements-peers.txt
	@touch $(PEERS_STAMP)

bench: venv $(PEERS_STAMP)
	CM_BENCH_PEERS_PYTHON=$(CURDIR)/$(PEERS)/bin/python $(BIN)/python -m bench

# Celery topology vs embedded default, 24 periods of every feed (slow: tens of minutes).
bench-backfill: venv
	$(BIN)/python -m bench backfill

clean:
	rm -rf $(VENV) $(PEERS) .airflow data .pytest_cache
