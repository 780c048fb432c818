# Two commands work on a fresh machine with Python >= 3.11 and make: `make demo`, `make test`.
# Each creates .venv when missing and installs what it needs once (stamp files: a second run
# does not reinstall unless pyproject.toml or constraints.txt changed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
OUT    ?= out
# pip installs without byte-compiling (--no-compile: ~40 s of a ~90 s install goes to compiling all
# of torch, sympy and scipy), and Python compiles a module the first time it is imported and keeps
# the bytecode (~9 s, once, for what the suite imports). For that the recipes run with
# PYTHONDONTWRITEBYTECODE unset: where it is set, as on the project's machines, nothing compiled
# would be kept, and every test process would compile the same modules again.
PIP_FLAGS := --disable-pip-version-check --quiet --no-compile
unexport PYTHONDONTWRITEBYTECODE

# the suite runs in $(TEST_JOBS) worker processes (pytest-xdist; 2 on the project's 2-core machines;
# TEST_JOBS=1 runs it in one process, e.g. to read a traceback in order), a test file per worker
# (--dist loadfile: a module's expensive fixtures, such as the report's, are built once), the
# longest files first (--no-loadscope-reorder keeps tests/conftest.py's order: HEAVY_FIRST)
TEST_JOBS ?= 2

.PHONY: demo test test-fast bench clean help

help:
	@echo "make demo   - install and write the built-in report into $(OUT)/ (report.md, report.html, figures/)"
	@echo "make test   - install with the test extras and run the whole test suite"
	@echo "make test-fast - the suite without the tests marked slow (the edit loop)"
	@echo "make bench  - run the benchmarks (tests/benchmarks)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed; got " + sys.version.split()[0] + " (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e .
	@touch $@

# one resolve for everything the tests need (the core included: .core is then up to date too)
# then compile, once, the libraries the suite imports, in two processes side by side (~15 s):
# the test processes would otherwise all compile them at once as they start
$(VENV)/.test: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e '.[test,torch,dask]'
	$(BIN)/python -c 'import torch, torch.distributed, torch.nn, torch.optim' & \
	  $(BIN)/python -c 'import sympy, scipy.optimize, scipy.stats, cvxpy, matplotlib.pyplot, dask.distributed, hypothesis, pytest, xdist, PEPit, dropmuon.figures.cli'; \
	  s=$$?; wait $$! && exit $$s
	@touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/dropmuon sample --L 1,5,3,2 --costs 1,1,1,1 --forward-cost 2
	@echo
	$(BIN)/dropmuon report --quick --out $(OUT)

test: $(VENV)/.test
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder

test-fast: $(VENV)/.test
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder -m "not slow"

bench: $(VENV)/.test
	$(BIN)/python tests/benchmarks/run.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis *.egg-info
