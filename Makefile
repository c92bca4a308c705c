# mlfast's tasks.  `make test` and `make serve` set up everything on a fresh
# machine: a virtualenv in .venv with the package (editable) and the extras
# each needs (`serve`: the web stack; `test`: scikit-learn, the platforms'
# clients, a browser driver... about a gigabyte more).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SOURCES := $(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-serve-$(SOURCES)
TEST_STAMP := $(VENV)/.installed-test-$(SOURCES)
LINT_STAMP := $(VENV)/.installed-lint-$(SOURCES)
CSRC   := $(wildcard csrc/*.c csrc/*.h)
EXT    := mlfast/_core$(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")

.PHONY: all build test serve chromium clean

all: build

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/python -m pip install -q "setuptools>=77" wheel "numpy>=2" "scipy-openblas32>=0.3.27"
	$(BIN)/python -m pip install -q -e ".[serve]"
	rm -f $(VENV)/.installed-serve-*
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[test,serve]"
	rm -f $(VENV)/.installed-test-*
	touch $(TEST_STAMP)

$(LINT_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[lint]"
	rm -f $(VENV)/.installed-lint-*
	touch $(LINT_STAMP)

# Rebuild the C extension in place when a C source changes.
$(EXT): $(STAMP) $(CSRC) setup.py
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(EXT)

build: $(EXT)

# The /docs browser test drives Debian's chromium (CI runs as root on a
# fresh machine); without apt-get it skips.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium could not be installed: the /docs browser test will skip"

test: $(TEST_STAMP) build chromium
	$(BIN)/python -m pytest -q

# The engine alone (loader, builders, graph, kernels; no servers, no slow
# modules: tests/conftest.py marks them), for the edit-build-test loop.
.PHONY: test-fast
test-fast: $(TEST_STAMP) build
	$(BIN)/python -m pytest -q -m "engine and not slow"

# The checks CI runs before the tests (a few seconds once the `lint` extra is
# in .venv): ruff's lint; the formatters' check (scripts/format.sh --check:
# ruff format, clang-format over csrc/ with the checked-in .clang-format);
# mypy over mlfast/ (strict on the public API: pyproject.toml); stubtest of
# mlfast/_core.pyi against the built module; codespell.  scripts/format.sh
# applies the formatters; .pre-commit-config.yaml runs the same tools.
.PHONY: lint
lint: $(LINT_STAMP) build
	$(BIN)/ruff check
	scripts/format.sh --check
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest mlfast._core --mypy-config-file pyproject.toml
	$(BIN)/codespell

# Serve MODEL (a model file, a directory holding one, or a repository;
# default: the bundled demo model, the lesson's iris LogisticRegression) on
# http://127.0.0.1:$(PORT): POST /predict, API docs at /docs.
PORT  ?= 8000
MODEL ?=
serve: build
	$(BIN)/mlfast serve --host 127.0.0.1 --port $(PORT) $(MODEL)

clean:
	rm -rf build dist *.egg-info mlfast/*.so

# Benchmarks against scikit-learn, ONNX Runtime and the lesson's apps:
# writes benchmarks/BENCHMARKS.md and its plots (about 25 minutes on 2 cores).
# The `bench` extra (onnxruntime, skl2onnx, matplotlib, psutil) goes into
# .venv once per pyproject.toml/setup.py version; wrk comes from Debian.
.PHONY: bench
bench: build
	@test -f $(VENV)/.bench$(notdir $(STAMP)) || \
	  { $(BIN)/python -m pip install -q -e ".[bench]" && touch $(VENV)/.bench$(notdir $(STAMP)); }
	@command -v wrk >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
	  echo "wrk could not be installed: the HTTP benchmark will be skipped"
	$(BIN)/python benchmarks/run_all.py

# What operations cost (metrics, auth, access logs: req/s with wrk and
# instructions a request under callgrind) and what workers share:
# writes benchmarks/results/ops.json and prints its tables (about 12 minutes).
.PHONY: bench-ops
bench-ops: build
	@test -f $(VENV)/.bench$(notdir $(STAMP)) || \
	  { $(BIN)/python -m pip install -q -e ".[bench]" && touch $(VENV)/.bench$(notdir $(STAMP)); }
	@{ command -v wrk >/dev/null 2>&1 && command -v valgrind >/dev/null 2>&1; } || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk valgrind >/dev/null; } || \
	  echo "wrk or valgrind could not be installed: their parts will fail or be skipped"
	$(BIN)/python benchmarks/bench_ops.py

# Fuzzing: the model-file loader (decompression, the C pickle VM,
# builders, every predict method) under AddressSanitizer and UBSan, and the
# serving core's request decoders, for FUZZ_SECONDS in all (3/4 on the
# loader; FUZZ_TARGET=load or codec for one).  fuzz/run.sh builds a clang
# copy of the extension under /tmp; crashes go to fuzz/artifacts/, the
# committed corpus is fuzz/corpus/.  Installs clang (apt-get) and atheris.
FUZZ_SECONDS ?= 600
FUZZ_TARGET  ?= all
.PHONY: fuzz
fuzz: $(TEST_STAMP)
	@command -v clang >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; } || \
	  { echo "clang could not be installed: make fuzz needs it"; exit 1; }
	@v=$$(clang -dumpversion | cut -d. -f1); \
	  test -n "$$(ls /usr/lib/llvm-$$v/lib/clang/*/lib/linux/libclang_rt.asan-x86_64.so 2>/dev/null)" || \
	  { command -v apt-get >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-$$v-dev >/dev/null 2>&1; } || true
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install -q atheris
	fuzz/run.sh $(FUZZ_TARGET) $(FUZZ_SECONDS)

# The loader and kernel tests against a copy built with ASan and UBSan
# (scripts/test_sanitized.sh; about 3 minutes).  --all: the whole suite.
.PHONY: test-asan
test-asan: $(TEST_STAMP)
	scripts/test_sanitized.sh

# Every other supported Python (3.9, 3.10, 3.12, 3.13 from pyenv; .venv's
# runs `make test`): a copy of the sources built with each, then the smoke,
# version-fixture and hostile-file tests (scripts/test_pythons.sh; one venv
# per Python of wheels only, kept in /tmp/mlfast-pythons).
.PHONY: test-pythons
test-pythons:
	scripts/test_pythons.sh
