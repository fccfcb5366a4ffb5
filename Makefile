# Every target creates the virtualenv it needs, so each is one command on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test sanitize demo lint format typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,parquet]'
	touch $(STAMP)

## test: lint, type-check and run the whole test suite (what CI runs)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc
	$(MAKE) sanitize

# The C extension built with AddressSanitizer and UndefinedBehaviorSanitizer, in a copy of the
# package under build/sanitize (the normal build is untouched), runs the tests that compare it
# with the Python reference. Any report aborts the run; leak checks are off (CPython's own).
CC ?= cc
SANITIZE_DIR := build/sanitize
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SANITIZE_TESTS := tests/test_fastdecode.py tests/test_bin_count.py tests/test_events_properties.py

## sanitize: the decoder's differential tests against an ASan + UBSan build of the extension
sanitize: $(STAMP)
	rm -rf $(SANITIZE_DIR)
	mkdir -p $(SANITIZE_DIR)
	cp -R src/driftline $(SANITIZE_DIR)/driftline
	rm -f $(SANITIZE_DIR)/driftline/_fastdecode*.so
	$(CC) -shared -fPIC -g -O1 -Wall -Wextra -Wno-unused-parameter $(SANITIZE_FLAGS) \
		-I"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
		src/driftline/_fastdecode.c \
		-o $(SANITIZE_DIR)/driftline/_fastdecode$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc \
		UBSAN_OPTIONS=print_stacktrace=1 PYTHONPATH=$(SANITIZE_DIR) DRIFTLINE_PURE_PYTHON=0 \
		$(BIN)/python -c 'import os, driftline.events as e, driftline._fastdecode as f; \
		assert e._NATIVE_DECODE is not None, "no native decoder"; \
		assert f.__file__.startswith(os.path.abspath("$(SANITIZE_DIR)")), f.__file__; \
		print("sanitized extension:", f.__file__)'
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc \
		UBSAN_OPTIONS=print_stacktrace=1 PYTHONPATH=$(SANITIZE_DIR) DRIFTLINE_PURE_PYTHON=0 \
		$(BIN)/python -m pytest -q -p no:cacheprovider --capture=sys $(SANITIZE_TESTS)

## demo: generate a drifting scenario, build its reference profile and replay it
demo: $(STAMP)
	$(BIN)/driftline demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: core throughput and state-size benchmark (prints a table)
bench: $(STAMP)
	$(BIN)/python load_tests/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
