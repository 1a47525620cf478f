# Quick start: `make demo` then `make test`. Needs Rust, Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
CARGO ?= cargo

.PHONY: demo test build wheel bench lint fmt clean fuzz fuzz-cmin

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

$(VENV)/.demo-deps: requirements/demo.txt | $(PY)
	$(PIP) -r requirements/demo.txt
	touch $@

demo: build $(VENV)/.demo-deps
	$(PY) examples/demo.py

# The release artefacts in dist/: one abi3 wheel for CPython >= 3.11, linked by zig
# against glibc 2.28 (manylinux_2_28) and stripped, and the sdist. Its own target
# directory, since zig's linker settings would rebuild .venv's build every time.
WHEEL_TAG := manylinux_2_28

$(VENV)/.wheel-deps: requirements/wheel.txt requirements/build.txt | $(PY)
	$(PIP) -r requirements/wheel.txt
	touch $@

wheel: $(VENV)/.wheel-deps
	rm -rf dist
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m maturin build --release --quiet --zig \
		--compatibility $(WHEEL_TAG) --strip --target-dir target/wheel --out dist
	$(PY) -m maturin sdist --out dist

# The suite runs against the wheel as installed, from a directory outside the
# checkout, so `import s4_codec` cannot pick up the source tree.
TEST_VENV := .venv-test
WHEEL = $(wildcard dist/s4_codec-*.whl)

$(TEST_VENV)/.deps: requirements/dev.txt requirements/build.txt
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

# The oldest polars and duckdb we support, in a venv of their own with the same
# wheel (duckdb 1.4.0 brought the typed macro overloads register() uses).
POLARS_FLOOR := 1.34.0
DUCKDB_FLOOR := 1.4.0
FLOOR_VENV := .venv-floor

$(FLOOR_VENV)/.deps: Makefile
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		polars==$(POLARS_FLOOR) duckdb==$(DUCKDB_FLOOR) pyarrow numpy pytest mypy
	touch $@

INSTALL := -m pip install --quiet --disable-pip-version-check
PYTEST_ARGS := -q -p no:cacheprovider --rootdir=$(CURDIR) -c $(CURDIR)/pyproject.toml

test: wheel $(TEST_VENV)/.deps $(FLOOR_VENV)/.deps
	$(CARGO) test --quiet
	$(CARGO) test --quiet --features nvcomp-gpu
	$(TEST_VENV)/bin/python $(INSTALL) --force-reinstall --no-deps $(WHEEL)
	$(TEST_VENV)/bin/python $(INSTALL) "$(WHEEL)[all]"
	$(FLOOR_VENV)/bin/python $(INSTALL) --force-reinstall --no-deps $(WHEEL)
	outside=$$(mktemp -d) && cd $$outside && export S4_INSTALLED=1 && \
	$(CURDIR)/$(TEST_VENV)/bin/python -m mypy.stubtest s4_codec \
		--mypy-config-file $(CURDIR)/pyproject.toml --allowlist $(CURDIR)/tests/stubtest-allowlist.txt && \
	$(CURDIR)/$(TEST_VENV)/bin/python -m pytest $(PYTEST_ARGS) $(CURDIR)/tests && \
	$(CURDIR)/$(FLOOR_VENV)/bin/python -m pytest $(PYTEST_ARGS) \
		$(CURDIR)/tests/test_polars.py $(CURDIR)/tests/test_duckdb.py $(CURDIR)/tests/test_package.py

bench: $(VENV)/.bench-deps build
	$(PY) benchmarks/run.py

# Fuzzing (nightly toolchain + `cargo install cargo-fuzz`): every target in
# fuzz/fuzz_targets/ in turn, FUZZ_SECONDS each, one process at a time. New
# inputs go to fuzz/corpus-work/ (ignored); `make fuzz-cmin` folds them into
# the committed, minimized fuzz/corpus/. `make test` replays the committed
# corpora and regressions (tests/fuzz_replay.rs) on stable.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))

fuzz:
	cd fuzz && $(CARGO) +nightly fuzz build
	@status=0; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
		mkdir -p fuzz/corpus-work/$$t; \
		(cd fuzz && $(CARGO) +nightly fuzz run $$t corpus-work/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1) || status=1; \
	done; exit $$status

fuzz-cmin:
	@for t in $(FUZZ_TARGETS); do \
		cp -n fuzz/corpus-work/$$t/* fuzz/corpus/$$t/ 2>/dev/null; \
		(cd fuzz && $(CARGO) +nightly fuzz cmin $$t corpus/$$t) || exit 1; \
	done

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
	rm -rf target dist $(VENV) $(FLOOR_VENV) $(TEST_VENV) s4_codec/*.so
