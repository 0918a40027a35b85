# platform-kit: `make test` and `make demo` set up everything they need on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# PLATFORM_KIT_CACHE moves the cache for the kit, infra/*.sh and make alike.
CACHE ?= $(or $(PLATFORM_KIT_CACHE),$(HOME)/.cache/platform-kit)
export PLATFORM_KIT_CACHE := $(CACHE)
# The virtualenv lives outside the checkout so that torch (large) is installed once per machine.
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
# Installs come from a lockfile, hashes checked (make lock writes them; see README "Updating
# the lock"): requirements-test.lock (the kit and its test tools) here and in CI.
LOCK ?= requirements-test.lock
# PyTorch's CPU-only wheels for requirements-cpu.lock (CPU runners); empty: PyPI's build.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
DEPS_HASH := $(shell cat pyproject.toml $(LOCK) requirements-uv.lock | sha1sum | cut -c1-12)
STAMP := $(VENV)/.platform-kit-$(DEPS_HASH)
UV := $(VENV)/bin/uv
TOOLS := $(CACHE)/lock-tools
# `make lock` keeps the pins it can; LOCK_FLAGS=--upgrade takes the newest allowed versions.
LOCK_FLAGS ?=
export PATH := $(VENV)/bin:$(CACHE)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: help venv install lock lock-cpu dolt docker mermaid services lint lint-workflows typecheck test test-unit bench demo clean

help:
	@echo "make test   - set everything up, then ruff, the import contracts, mypy and pytest"
	@echo "make demo   - run the main job on the bundled example, twice"
	@echo "make bench  - run every benchmark in benchmarks/ and print its figures"

# uv (itself pinned by hash) installs the lock: from a warm cache it links wheels, not unpacks.
$(STAMP): pyproject.toml $(LOCK) requirements-uv.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements-uv.lock
	$(UV) pip sync -q --python $(PY) --require-hashes $(LOCK)
	$(UV) pip install -q --python $(PY) --no-deps -e .
	@echo "sha256:$$(sha256sum $(LOCK) | cut -d' ' -f1) $(LOCK)" >$(VENV)/platform-kit-lock.txt
	@rm -f $(VENV)/.platform-kit-* && touch $@

venv: $(STAMP)
	@# The editable install must point at this checkout (CI clones afresh).
	@$(PY) -I -c 'import platform_kit, pathlib, sys; sys.exit(pathlib.Path(platform_kit.__file__).resolve().parents[1] != pathlib.Path.cwd().resolve())' \
		|| $(UV) pip install -q --python $(PY) --no-deps -e .

install: venv

# Resolve pyproject.toml's dependencies again (after editing them, or to take newer versions):
# every platform, Python 3.11 up; the runtime lock is pinned to the test lock's versions.
lock:
	@test -x $(TOOLS)/bin/uv || { python3 -m venv $(TOOLS) && $(TOOLS)/bin/pip install -q --require-hashes -r requirements-uv.lock; }
	$(TOOLS)/bin/uv pip compile -q --universal --python-version 3.11 --generate-hashes \
		requirements-uv.in -o requirements-uv.lock
	$(TOOLS)/bin/uv pip compile -q --universal --python-version 3.11 --generate-hashes $(LOCK_FLAGS) \
		--extra test pyproject.toml -o requirements-test.lock
	$(TOOLS)/bin/uv pip compile -q --universal --python-version 3.11 --generate-hashes \
		-c requirements-test.lock pyproject.toml -o requirements.lock

# The CPU runners' lock: the same versions, PyTorch's CPU-only build (no CUDA libraries).
lock-cpu: lock
	$(TOOLS)/bin/uv pip compile -q --universal --python-version 3.11 --generate-hashes \
		$(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX) --index-strategy unsafe-best-match) \
		-c requirements.lock pyproject.toml -o requirements-cpu.lock

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

# Each benchmark prints `<figure>: <value> (goal ...)`; the summary at the end gathers them.
bench: venv dolt docker
	@log=$$(mktemp); for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b | tee -a $$log; done; \
	echo; echo "== every figure, next to its goal"; grep -E '\((goal|report)' $$log; rm -f $$log

demo: venv dolt docker
	KIT=$(VENV)/bin/platform-kit bash examples/demo.sh

clean:
	rm -rf .platform examples/.platform build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
