# Every target creates the environment it needs (.venv) first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PYRAMID_DATA ?= $(CURDIR)/data

.PHONY: env demo test test-fast lab notebooks html benchmark strip clean

$(BIN)/pyramid-ad: pyproject.toml
	$(PY) -m venv --system-site-packages $(VENV)
	$(BIN)/python -m pip install -q -e ".[notebooks,dev]"
	@touch $@

env: $(BIN)/pyramid-ad

demo: env
	$(BIN)/pyramid-ad demo

test: env
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -ra

test-fast: env
	$(BIN)/python -m pytest -q -m "not slow and not notebooks"

lab: env
	$(BIN)/jupyter lab notebooks/

notebooks: env
	$(BIN)/python -m pyramid_lib.notebooks run build/notebooks

html: notebooks
	$(BIN)/jupyter nbconvert --to html build/notebooks/*.ipynb --output-dir build/html

benchmark: env
	$(BIN)/python benchmarks/throughput.py

strip:
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) build .pytest_cache
