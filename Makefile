# mlfast's tasks.  `make test` and `make serve` set up everything on a fresh
# machine: a virtualenv in .venv with the package (editable) and its extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)
CSRC   := $(wildcard csrc/*.c csrc/*.h)
EXT    := mlfast/_core$(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")

.PHONY: all build test serve clean

all: build

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/python -m pip install -q "setuptools>=77" wheel "numpy>=2" "scipy-openblas32>=0.3.27"
	$(BIN)/python -m pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Rebuild the C extension in place when a C source changes.
$(EXT): $(STAMP) $(CSRC) setup.py
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(EXT)

build: $(EXT)

test: build
	$(BIN)/python -m pytest -q

clean:
	rm -rf build dist *.egg-info mlfast/*.so
