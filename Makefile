# Every target creates the environment it needs (.venv) first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# absolute: the notebooks run in build/nbmake, where a relative path would find no data (and a stand-in)
export PYRAMID_DATA := $(abspath $(or $(PYRAMID_DATA),$(CURDIR)/data))

.PHONY: env demo lint test test-fast test-kernels test-notebooks lab notebooks html benchmark strip clean

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# The notebooks as pytest items (nbmake): the quick profile, runs shared under a fresh
# build/nbmake-runs (07 reuses 03's run), one torch thread per kernel, two kernels at once (2 cores).
# nbmake executes COPIES in build/nbmake/ and writes their outputs into them (--overwrite); then
# tests/test_notebook_outputs.py reads every executed cell and fails on an error or a warning
# printed to stderr.  The notebooks select the inline backend themselves (`%matplotlib inline`),
# so an exported MPLBACKEND=Agg does not hide their figures.
NBMAKE_ENV := PYRAMID_PROFILE=quick PYRAMID_WORK=$(CURDIR)/build/nbmake-runs OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
NBMAKE_DIR := build/nbmake

# A venv of its own (no --system-site-packages: what the kit needs is what pyproject.toml lists);
# an existing one is kept as it is.  Without make: README, "Installing on any platform".
$(BIN)/pyramid-ad: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
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

# The numerical tests (training, scoring, thresholds, metrics) once more on the kernel set below the
# processor's default (AVX-512 -> AVX2, AVX2 -> plain): a result that held on one set only would pass or
# fail with the machine CI runs on.  tests/kernels.py names the set; the pytest header shows the one run.
NUMERIC_TESTS := tests/engine tests/model tests/experiments tests/test_threshold.py tests/test_metrics.py \
	tests/test_baselines.py tests/data/test_validation.py
test-kernels: env
	@lower="$$($(BIN)/python tests/kernels.py)"; \
	if [ -z "$$lower" ]; then echo "test-kernels: no kernel set below this processor's default; nothing to run"; \
	else echo "test-kernels: $$lower"; env $$lower $(BIN)/python -m pytest -n 2 --dist loadgroup -q -ra $(NUMERIC_TESTS); fi

# The two-minute loop: every test that does not train (tests/conftest.py fails a test that trains
# unmarked), on both cores.  `make test` stays the full gate.
test-fast: env
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -p no:nbmake -m "not slow and not notebooks"

# Copies of the notebooks in a work folder of your own ($PYRAMID_LAB, else <Documents>/pyramid-ad-lab),
# never the tracked files; without make: `pyramid-ad lab`.
lab: env
	$(BIN)/pyramid-ad lab

# Every notebook executed with papermill into build/notebooks/, outputs kept, by notebooks/execute.py:
# it shows which notebook runs and a bar of its cells, records in each executed copy the data it
# used, and never lets a notebook executed on a stand-in replace one executed on real data, nor a
# failed execution replace a successful one (both are kept beside it, named so).  Each notebook runs
# its own default profile (PROFILE = None: $PYRAMID_PROFILE, else laptop, on a GPU too);
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
