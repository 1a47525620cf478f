# Quick start: `make demo` then `make test`. Needs Rust, Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
CARGO ?= cargo

.PHONY: demo test build bench lint fmt clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.build-deps: requirements/build.txt | $(PY)
	$(PIP) -r requirements/build.txt
	touch $@

$(VENV)/.dev-deps: requirements/dev.txt requirements/build.txt | $(PY)
	$(PIP) -r requirements/dev.txt
	touch $@

$(VENV)/.bench-deps: requirements/bench.txt | $(PY)
	$(PIP) -r requirements/bench.txt
	touch $@

# One optimised build of the extension, installed into .venv (editable).
build: $(VENV)/.build-deps
	$(PY) -m maturin develop --release --quiet

demo: build
	$(PY) examples/demo.py

# The oldest polars and duckdb we support, in a venv of their own over the same
# build (duckdb 1.4.0 brought the typed macro overloads register() uses).
POLARS_FLOOR := 1.34.0
DUCKDB_FLOOR := 1.4.0
FLOOR_VENV := .venv-floor

$(FLOOR_VENV)/.deps: Makefile
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		polars==$(POLARS_FLOOR) duckdb==$(DUCKDB_FLOOR) pyarrow numpy pytest mypy
	touch $@

test: $(VENV)/.dev-deps build $(FLOOR_VENV)/.deps
	$(CARGO) test --quiet
	$(CARGO) test --quiet --features nvcomp-gpu
	$(PY) -m mypy.stubtest s4_codec --mypy-config-file pyproject.toml --allowlist tests/stubtest-allowlist.txt
	$(PY) -m pytest -q
	PYTHONPATH=$(CURDIR) $(FLOOR_VENV)/bin/python -m pytest -q -p no:cacheprovider \
		tests/test_polars.py tests/test_duckdb.py

bench: $(VENV)/.bench-deps build
	$(PY) benchmarks/run.py

lint: $(VENV)/.dev-deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	$(CARGO) clippy --all-targets --quiet --features python,nvcomp-gpu --target-dir target/lint -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.dev-deps
	$(CARGO) fmt
	$(VENV)/bin/ruff format .

clean:
	rm -rf target $(VENV) $(FLOOR_VENV) s4_codec/*.so
