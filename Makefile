# Every target creates the environment it needs (.venv) first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PYRAMID_DATA ?= $(CURDIR)/data

.PHONY: env demo lint test test-fast test-notebooks lab notebooks html benchmark strip clean

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# The notebooks as pytest items (nbmake): the quick profile, runs shared under a fresh
# build/nbmake-runs (07 reuses 03's run), one torch thread per kernel, two kernels at once (2 cores).
# nbmake executes COPIES in build/nbmake/ and writes their outputs into them (--overwrite); then
# tests/test_notebook_outputs.py reads every executed cell and fails on an error or a warning
# printed to stderr.  The notebooks select the inline backend themselves (`%matplotlib inline`),
# so an exported MPLBACKEND=Agg does not hide their figures.
NBMAKE_ENV := PYRAMID_PROFILE=quick PYRAMID_WORK=$(CURDIR)/build/nbmake-runs OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
NBMAKE_DIR := build/nbmake

$(BIN)/pyramid-ad: pyproject.toml
	$(PY) -m venv --system-site-packages $(VENV)
	$(BIN)/python -m pip install -q -e ".[notebooks,dev]"
	@touch $@

env: $(BIN)/pyramid-ad

demo: env
	$(BIN)/pyramid-ad demo

lint: env
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -ra
	$(MAKE) --no-print-directory test-notebooks

test-notebooks: env
	rm -rf build/nbmake-runs $(NBMAKE_DIR)
	mkdir -p $(NBMAKE_DIR)
	cp $(NOTEBOOKS) $(NBMAKE_DIR)/
	$(NBMAKE_ENV) $(BIN)/python -m pytest -n 2 -q -ra --nbmake --nbmake-timeout=600 --overwrite $(NBMAKE_DIR)/
	$(BIN)/python -m pytest -q -ra tests/test_notebook_outputs.py

# The two-minute loop: every test that does not train (tests/conftest.py fails a test that trains
# unmarked), on both cores.  `make test` stays the full gate.
test-fast: env
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -m "not slow and not notebooks"

lab: env
	$(BIN)/jupyter lab notebooks/

# Every notebook executed with papermill into build/notebooks/, outputs kept, by notebooks/execute.py:
# it shows which notebook runs and a bar of its cells, records in each executed copy the data it
# used, and never lets a notebook executed on a stand-in replace one executed on real data, nor a
# failed execution replace a successful one (both are kept beside it, named so).  Each notebook runs
# its own default profile (PROFILE = None: $PYRAMID_PROFILE, else laptop on a CPU, paper on a GPU);
# PAPERMILL_ARGS overrides parameters: `make notebooks PAPERMILL_ARGS="-p PROFILE quick"`, or
# "-p PROFILE laptop -p CATEGORY bottle".  A failing notebook does not stop the others; the target
# fails at the end, naming it.
notebooks: env
	$(BIN)/python notebooks/execute.py run build/notebooks $(NOTEBOOKS) $(PAPERMILL_ARGS)

# Renders what `make notebooks` executed (build/notebooks/) to build/html/; executes nothing.  Every
# executed notebook gets its page; the target then names the notebooks that failed or never ran.
html: env
	$(BIN)/python notebooks/execute.py html build/notebooks build/html $(NOTEBOOKS)

benchmark: env
	$(BIN)/python benchmarks/throughput.py

strip:
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) build .pytest_cache
