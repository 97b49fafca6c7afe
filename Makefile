# stackops: `make demo` runs the main job, `make test` runs the whole suite. Both set themselves up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: demo demo-down test lint unit real crds bench bench-converge system-packages clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

system-packages:
	./hack/system-packages.sh

demo: $(STAMP)
	$(BIN)/stackops demo up -f examples/minimal.yaml

demo-down: $(STAMP)
	$(BIN)/stackops demo down

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy

test: $(STAMP) system-packages lint
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

crds: $(STAMP)
	$(BIN)/stackops crds --output-dir crds/
	$(BIN)/stackops docs --output docs/reference.md

bench: $(STAMP)
	$(BIN)/python bench/render.py

bench-converge: $(STAMP)
	$(BIN)/python -m bench.converge

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
