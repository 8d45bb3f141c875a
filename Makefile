# Every target creates the environment it needs (.venv) first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PYRAMID_DATA ?= $(CURDIR)/data

.PHONY: env demo lint test test-fast test-notebooks lab notebooks html benchmark strip clean

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# The notebooks as pytest items (nbmake; each kernel starts in notebooks/ and inherits this
# environment): quick mode, runs under a fresh build/nbmake-runs, one torch thread per kernel
# (two kernels at once on 2 cores).  The notebooks select the inline backend themselves
# (`%matplotlib inline`), so an exported MPLBACKEND=Agg does not hide their figures.
NBMAKE_ENV := PYRAMID_QUICK=1 PYRAMID_WORK=$(CURDIR)/build/nbmake-runs OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

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
	rm -rf build/nbmake-runs
	$(NBMAKE_ENV) $(BIN)/python -m pytest -n 2 -q -ra --nbmake --nbmake-timeout=600 notebooks/

test-fast: env
	$(BIN)/python -m pytest -q -m "not slow and not notebooks"

lab: env
	$(BIN)/jupyter lab notebooks/

# Every notebook executed with papermill into build/notebooks/, outputs kept (full mode unless
# CI or PYRAMID_QUICK=1 is set; `make notebooks PAPERMILL_ARGS="-p CATEGORY bottle"` overrides
# parameters).  A failing notebook does not stop the others; the target fails at the end.
notebooks: env
	@mkdir -p build/notebooks
	@failed=""; for nb in $(NOTEBOOKS); do \
	    echo "$$nb -> build/notebooks/$$(basename $$nb)"; \
	    $(BIN)/papermill "$$nb" "build/notebooks/$$(basename $$nb)" --cwd notebooks --kernel python3 \
	        --no-progress-bar --execution-timeout 1800 $(PAPERMILL_ARGS) || failed="$$failed $$nb"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

html: notebooks
	$(BIN)/jupyter nbconvert --to html $(addprefix build/notebooks/,$(notdir $(NOTEBOOKS))) --output-dir build/html

benchmark: env
	$(BIN)/python benchmarks/throughput.py

strip:
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) build .pytest_cache
