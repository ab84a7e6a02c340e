# Quick start: `make reproduce` runs the pipeline, `make test` runs the tests.
# Both create the virtual environment from requirements.lock first (once).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# pytest-xdist workers; each test file runs in one (its module fixtures build once). Most of the
# suite waits on subprocess start-up, so two workers on two cores roughly halve it (README, Tests).
TEST_WORKERS ?= 2
# Keep the venv's tools first on PATH so Snakemake/DVC jobs find `igae`.
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup system-deps readme reproduce test test-gpu gpu-check test-fast bench lock schema clean-data

# uv installs the lock in ~25 s where pip takes ~3.4 min; INSTALLER=pip uses pip only
# (tools/install_env.py also falls back to pip by itself when uv cannot be had).
INSTALLER ?= uv

$(STAMP): requirements.lock pyproject.toml tools/install_env.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install_env.py --lock requirements.lock --project . --installer $(INSTALLER)
	@touch $@

setup: $(STAMP)  ## create .venv from requirements.lock

reproduce: setup  ## run the whole pipeline on params.yaml (snakemake --cores all)
	$(BIN)/snakemake --cores $(CORES)

system-deps:  ## Debian's chromium for the report-rendering test: installed as root or with passwordless sudo, else skipped with a message
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "system-deps: chromium is missing and this is not a Debian/Ubuntu system (no apt-get): skipping; install a chromium, else the report-rendering test in tests/test_workflow.py fails"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; \
	  else echo "system-deps: chromium is missing and there is no root or passwordless sudo: skipping; run 'apt-get install chromium' as root (CI: in a workflow step), else the report-rendering test in tests/test_workflow.py fails"; exit 0; fi; \
	  $$SUDO apt-get install -y --no-install-recommends chromium >/dev/null || \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	fi

test: setup system-deps  ## fetch what the tests need, then run the whole test suite (TEST_WORKERS processes)
	$(BIN)/igae fetch-assets --params params.yaml --out data/cache/fetched.json
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-gpu: setup  ## the tests that need a CUDA device (pytest -m gpu); on CPU they are skipped with the reason
	$(BIN)/python -m pytest -q -m gpu

gpu-check: setup  ## the prepared GPU check (benchmarks/gpu_check.sh): JSON of results in results/gpu_check/
	benchmarks/gpu_check.sh

readme: setup  ## copy the README's figures and main table from the last run's results/
	$(BIN)/python workflow/scripts/update_readme.py $(if $(LONG),--long $(LONG))

bench: setup  ## print throughput numbers (render speed, ...)
	$(BIN)/python benchmarks/bench_render.py

lock:  ## regenerate requirements.lock from the current venv
	@echo "# Exact versions of every package in the environment (pip freeze --all), Python 3.11, x86_64 Linux." > requirements.lock
	@echo "# torch 2.14.1 is the CUDA build: it runs on the CPU here and uses the GPU where one exists." >> requirements.lock
	@echo "# Regenerate with: make lock" >> requirements.lock
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^igae' >> requirements.lock

schema: setup  ## regenerate workflow/schemas/params.schema.json from igae/config.py
	$(BIN)/igae schema --out workflow/schemas/params.schema.json
