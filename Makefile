# platform-kit: `make test` and `make demo` set up everything they need on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# PLATFORM_KIT_CACHE moves the cache for the kit, infra/*.sh and make alike.
CACHE ?= $(or $(PLATFORM_KIT_CACHE),$(HOME)/.cache/platform-kit)
export PLATFORM_KIT_CACHE := $(CACHE)
# The virtualenv lives outside the checkout so that torch (large) is installed once per machine.
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
STAMP := $(VENV)/.platform-kit-$(DEPS_HASH)
export PATH := $(VENV)/bin:$(CACHE)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: help venv install dolt docker mermaid services lint lint-workflows typecheck test test-unit bench demo clean

help:
	@echo "make test   - set everything up, then ruff, the import contracts, mypy and pytest"
	@echo "make demo   - run the main job on the bundled example, twice"
	@echo "make bench  - run every benchmark in benchmarks/ and print its figures"

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.platform-kit-* && touch $@

venv: $(STAMP)
	@# The editable install must point at this checkout (CI clones afresh).
	@$(PY) -I -c 'import platform_kit, pathlib, sys; sys.exit(pathlib.Path(platform_kit.__file__).resolve().parents[1] != pathlib.Path.cwd().resolve())' \
		|| $(PY) -m pip install -q --no-deps -e .

install: venv

dolt:
	@bash infra/install-dolt.sh >/dev/null

docker:
	@bash infra/docker-up.sh

# A real Mermaid parser (npm, pinned by infra/mermaid/package-lock.json) for the lineage tests.
mermaid:
	@bash infra/install-mermaid.sh >/dev/null

lint: venv lint-workflows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# actionlint is built from its Go module (its PyPI wrapper downloads from GitHub at build time).
lint-workflows: venv
	@bash infra/install-actionlint.sh >/dev/null
	$(CACHE)/bin/actionlint
	$(VENV)/bin/zizmor --offline --persona=auditor --quiet .github

typecheck: venv
	$(VENV)/bin/mypy

test: venv dolt docker mermaid lint typecheck
	$(VENV)/bin/pytest -q --durations=12 $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit

bench: venv dolt docker
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

demo: venv dolt docker
	KIT=$(VENV)/bin/platform-kit bash examples/demo.sh

clean:
	rm -rf .platform examples/.platform build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
