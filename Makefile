# mailkit's commands. The two that matter:
#   make lab    install what is needed and open the kit in JupyterLab
#   make test   install what is needed and run every check and test (what CI runs)
# Both create .venv, install mailkit editable with its dev extras, and install the Debian
# packages in .ci/system-packages.txt (as root on Debian; otherwise they say what is missing).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Touched after a successful pip install; pip runs again only when pyproject.toml is newer.
STAMP := $(VENV)/.mailkit-installed
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

# PYTEST_ADDOPTS reaches pytest unchanged, from the environment or the command line
# (`make test PYTEST_ADDOPTS="-x -k store"`): make passes both on to recipes.

# Extra arguments for JupyterLab, e.g. `make lab LAB_ARGS=--no-browser`.
LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
LAB_DEFAULT_URL := $(if $(wildcard notebooks/01-onboarding.ipynb),/lab/tree/01-onboarding.ipynb,/lab/tree)

# The embedded demo mail server: `make lab` starts it in the background before JupyterLab and
# stops it when JupyterLab exits; the notebooks find it through its demo.json.
# `make lab DEMO_SERVER=` opens the kit without it.
DEMO_SERVER ?= $(BIN)/mailkit demo-server

.PHONY: help install system-packages lab test lint typecheck bench clean distclean

help:
	@echo "make lab        install, then open the kit in JupyterLab"
	@echo "make test       install, then ruff, mypy and pytest (what CI runs)"
	@echo "make install    only the install step (.venv, mailkit[dev], system packages)"
	@echo "make lint       ruff check and ruff format --check"
	@echo "make typecheck  mypy"
	@echo "make bench      run every benchmarks/bench_*.py"
	@echo "make clean      remove caches and build output (distclean also removes .venv)"

install: $(STAMP) system-packages

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet --editable '.[dev]'
	touch $@

system-packages:
	.ci/install-system-packages

$(LAB_OVERRIDES): Makefile | $(STAMP)
	mkdir -p $(@D)
	printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' >$@

LAB := $(BIN)/jupyter lab --ServerApp.root_dir=notebooks --LabApp.default_url=$(LAB_DEFAULT_URL) \
    --LabApp.news_url=None $(ALLOW_ROOT) $(LAB_ARGS)

lab: install $(LAB_OVERRIDES)
ifneq ($(strip $(DEMO_SERVER)),)
	$(DEMO_SERVER) & demo_pid=$$!; trap 'kill $$demo_pid 2>/dev/null || true' EXIT; $(LAB)
else
	$(LAB)
endif

test: lint typecheck
	@rc=0; $(BIN)/pytest || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "make test: pytest collected no tests; that is a failure." >&2; fi; \
	exit $$rc

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

bench: install
	@shopt -s nullglob; benches=(benchmarks/bench_*.py); \
	if [[ $${#benches[@]} -eq 0 ]]; then echo "No benchmarks yet (benchmarks/bench_*.py)."; exit 0; fi; \
	for bench in "$${benches[@]}"; do echo "== $$bench"; $(PY) "$$bench"; done

clean:
	rm -rf build dist artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) \
	    -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
