# The two commands the README opens with. Each makes its own virtual environment.
# The interpreter the image ships (3.12) when this machine has one, on PATH or under pyenv;
# else any python3 (3.11 or newer).
PYENV_312 := $(lastword $(sort $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.12*/bin/python3.12)))
PYTHON ?= $(firstword $(foreach p,python3.12 $(PYENV_312),$(if $(shell $(p) -c "" 2>/dev/null && echo ok),$(p))) python3)
VENV ?= .venv
BIN := $(VENV)/bin
# The bench measures the kind of interpreter build that ships: the image's CPython is built with PGO
# and LTO, as distributions build their python3 (Debian's here), while pyenv builds without them by
# default (15-31% more CPU per request here). So the bench prefers the system python3 (3.11 or
# newer, with venv) in a venv of its own; `make bench BENCH_PYTHON=...` picks another.
BENCH_PYTHON ?= $(firstword $(foreach p,/usr/bin/python3,$(if $(shell $(p) -c "import sys, ensurepip; sys.exit(sys.version_info < (3, 11))" 2>/dev/null && echo ok),$(p))) $(PYTHON))
BENCH_VENV ?= .venv-bench

.PHONY: demo test test-clocks lint bench bench-hostile bench-control-plane bytecodes instructions crds clean image

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(BENCH_VENV)/bin/.installed: pyproject.toml
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q -e '.[tracing]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/switchyard demo

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered --cov-report=xml
	$(BIN)/python tests/coverage_floor.py

# The suite's time-touching tests with the wall clock of every process moved to calendar edges (each
# run starts one second before a month turns: a 30-day month, a year, a leap day). Left out: tests
# that measure only durations (a constant offset cannot change them) and the image build (apt and
# gpg check dates against the real calendar; the image holds the same code).
CLOCK_EDGES ?= 2027-04-30T23:59:59Z 2027-12-31T23:59:59Z 2028-02-29T23:59:59Z
CLOCK_TESTS ?= tests/unit tests/operator tests/sim tests/delivery --ignore=tests/delivery/test_image.py \
	tests/integration/test_cli.py tests/integration/test_demo.py tests/integration/test_delivery.py \
	tests/integration/test_reporting.py tests/integration/test_router_api.py \
	tests/integration/test_prompt_cache.py tests/integration/test_upstream_tls.py
test-clocks: $(BIN)/.installed
	tests/clock_edges.sh $(CLOCK_EDGES) -- $(BIN)/python -m pytest -q -p no:cacheprovider $(CLOCK_TESTS)

bench: $(BENCH_VENV)/bin/.installed
	$(BENCH_VENV)/bin/python -m tests.bench.run

# Peak RSS of the router and the operator's probe with every hostile-input attack running at once
# (tests/bench/hostile_rss.py), against the pods' memory limits.
bench-hostile: $(BIN)/.installed
	$(BIN)/python -m tests.bench.hostile_rss

# The operator at scale against the emulated API (docs/performance.md); needs the test extras.
bench-control-plane: $(BIN)/.installed
	$(BIN)/python -m tests.bench.control_plane $(ARGS)

bytecodes: $(BIN)/.installed
	$(BIN)/python -m tests.bench.bytecodes

instructions: $(BENCH_VENV)/bin/.installed
	$(BENCH_VENV)/bin/python -m tests.bench.instructions

# The Dockerfile built by buildah (no Docker engine): on a Debian base made by debootstrap unless
# PYTHON_IMAGE names one (e.g. python:3.12-slim where a registry is reachable). Needs root.
image:
	PYTHON_IMAGE=$(PYTHON_IMAGE) image/build.sh

crds: $(BIN)/.installed
	$(BIN)/python -m switchyard_operator.crdgen
	cp crds/*.yaml helm/switchyard/crds/
	$(BIN)/python -m switchyard_operator.docgen

clean:
	rm -rf $(VENV) $(BENCH_VENV) .coverage coverage.xml
