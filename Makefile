# stackops: `make demo` runs the main job, `make test` runs the whole suite. Both set themselves up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint unit real crds bench system-packages clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

system-packages:
	./hack/system-packages.sh

demo: $(STAMP)
	$(BIN)/stackops validate -f examples/minimal.yaml
	$(BIN)/stackops render -f examples/minimal.yaml

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
