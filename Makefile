# mailkit's commands. The two that matter:
#   make lab    install what the kit needs to run and open it in JupyterLab
#   make test   install everything (the test and lint toolchain too) and run every check and
#               test (what CI runs)
# Both create .venv and install mailkit editable: `make lab` only its runtime dependencies,
# `make test` also its dev extras and the Debian packages in .ci/system-packages.txt (as root on
# Debian; otherwise it says what is missing). uv installs when it can (in seconds), pip
# otherwise: see .ci/install-python-packages; `make lab INSTALLER=pip` skips uv.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Touched after a successful install; an install runs again only when pyproject.toml is newer.
# RUNTIME_STAMP: what the kit needs to run (make lab). STAMP: that plus the dev extras (make
# test); a dev install also touches RUNTIME_STAMP, and a runtime install counts as done when an
# up-to-date dev install is there already, so switching between the two never reinstalls.
RUNTIME_STAMP := $(VENV)/.mailkit-runtime
STAMP := $(VENV)/.mailkit-installed
INSTALL_PYTHON := .ci/install-python-packages
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

# PYTEST_ADDOPTS reaches pytest unchanged, from the environment or the command line
# (`make test PYTEST_ADDOPTS="-x -k store"`): make passes both on to recipes.

# Extra arguments for JupyterLab, e.g. `make lab LAB_ARGS=--no-browser`.
LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
LAB_DEFAULT_URL := $(if $(wildcard notebooks/01-onboarding.ipynb),/lab/tree/01-onboarding.ipynb,/lab/tree)

# The embedded demo mail server: `make lab` starts it in the background before JupyterLab and
# stops it when JupyterLab exits. Each run gets a folder of its own (CA, demo.json, mailbox),
# removed at the end; MAILKIT_DEMO_DIR names it to both the demo server and JupyterLab, whose
# notebooks find the server through its demo.json there. So two `make lab`s, or a lab and the
# tests, never share a mailbox. `make lab DEMO_SERVER=` opens the kit without it.
DEMO_SERVER ?= $(BIN)/mailkit demo-server

.PHONY: help install install-runtime system-packages lab test lint typecheck bench bench-lab \
    clean distclean

help:
	@echo "make lab        install, then open the kit in JupyterLab"
	@echo "make test       install, then ruff, mypy and pytest (what CI runs)"
	@echo "make install    only the install step (.venv, mailkit[dev], system packages)"
	@echo "make install-runtime  only what make lab installs (.venv, mailkit)"
	@echo "make lint       ruff check, ruff format --check and the import layers (lint-imports)"
	@echo "make typecheck  mypy"
	@echo "make bench      run every benchmarks/bench_*.py"
	@echo "make bench-lab  time a fresh clone's make lab until JupyterLab answers (slow)"
	@echo "make clean      remove caches and build output (distclean also removes .venv)"

install: $(STAMP) system-packages

install-runtime: $(RUNTIME_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(INSTALL_PYTHON) $(VENV) '.[dev]'
	touch $(RUNTIME_STAMP) $@

$(RUNTIME_STAMP): pyproject.toml | $(PY)
	if [[ -f $(STAMP) && $(STAMP) -nt pyproject.toml ]]; then touch $@; \
	else $(INSTALL_PYTHON) $(VENV) . && touch $@; fi

system-packages:
	.ci/install-system-packages

$(LAB_OVERRIDES): Makefile | $(RUNTIME_STAMP)
	mkdir -p $(@D)
	printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' >$@

LAB := $(BIN)/jupyter lab --ServerApp.root_dir=notebooks --LabApp.default_url=$(LAB_DEFAULT_URL) \
    --LabApp.news_url=None $(ALLOW_ROOT) $(LAB_ARGS)

# The demo folder is removed by a watcher that ignores Ctrl-C and SIGTERM and waits until both
# the recipe's shell and the demo server are gone: a shell's own EXIT trap can itself be cut
# short by the signals make passes on while the lab stops, which left the folder behind.
lab: $(RUNTIME_STAMP) $(LAB_OVERRIDES)
ifneq ($(strip $(DEMO_SERVER)),)
	export MAILKIT_DEMO_DIR="$$(mktemp -d "$${TMPDIR:-/tmp}/mailkit-demo.XXXXXX")"; \
	$(DEMO_SERVER) --dir "$$MAILKIT_DEMO_DIR" & demo_pid=$$!; shell_pid=$$$$; \
	( trap '' INT TERM HUP; \
	  while kill -0 $$shell_pid 2>/dev/null || kill -0 $$demo_pid 2>/dev/null; do sleep 0.2; done; \
	  rm -rf "$$MAILKIT_DEMO_DIR" ) & \
	trap 'kill $$demo_pid 2>/dev/null || true' EXIT; \
	$(LAB)
else
	$(LAB)
endif

# A terminal inside a `make lab` JupyterLab inherits its MAILKIT_DEMO_DIR: the tests start their
# own demo servers and must not find that one.
test: lint typecheck
	@rc=0; env -u MAILKIT_DEMO_DIR $(BIN)/pytest || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "make test: pytest collected no tests; that is a failure." >&2; fi; \
	exit $$rc

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

bench: install
	@shopt -s nullglob; benches=(benchmarks/bench_*.py); \
	if [[ $${#benches[@]} -eq 0 ]]; then echo "No benchmarks yet (benchmarks/bench_*.py)."; exit 0; fi; \
	for bench in "$${benches[@]}"; do echo "== $$bench"; $(PY) "$$bench"; done

# A fresh clone of HEAD, `make lab` until JupyterLab answers; BENCH_LAB_ARGS e.g. "--cache cold".
BENCH_LAB_ARGS ?=
bench-lab:
	$(PYTHON) benchmarks/lab_startup.py $(BENCH_LAB_ARGS)

clean:
	rm -rf build dist artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) \
	    -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
