# stackops: `make demo` runs the main job, `make test` runs the whole suite. Both set themselves up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: demo demo-down test lint unit real crds bench bench-converge bench-real-cloud system-packages clean images chart guest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

system-packages:
	./hack/system-packages.sh

demo: $(STAMP) system-packages
	$(BIN)/stackops demo up -f examples/minimal.yaml

demo-down: $(STAMP)
	$(BIN)/stackops demo down

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench hack
	$(BIN)/ruff format --check operator tests bench hack
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) system-packages lint
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

crds: $(STAMP)
	$(BIN)/stackops crds --output-dir crds/
	$(BIN)/stackops docs --output docs/reference.md
	$(BIN)/stackops flows -f examples/minimal.yaml --doc docs/security.md
	$(BIN)/stackops flows -f examples/production.yaml --doc docs/security.md

# The operator image and every Kolla-compatible image of a release (RELEASE=2025.2 for another),
# built with buildah from a debootstrap base; IMAGES="operator keystone" builds only those.
images: $(STAMP) system-packages
	$(BIN)/python hack/images/build.py $(if $(RELEASE),--release $(RELEASE)) $(IMAGES)

# The tiny guest for servers (vmlinuz, initrd.img, disk.raw) from Debian packages; BOOT=1 boots it here in QEMU.
guest: system-packages
	$(PYTHON) hack/guest/build.py $(if $(BOOT),--boot)

# The chart's CRDs and RBAC rules from the code, then helm lint.
chart: $(STAMP)
	$(BIN)/python hack/helm/sync_chart.py
	"$$($(BIN)/python hack/helm/helm.py)" lint --strict charts/stackops

bench: $(STAMP)
	$(BIN)/python bench/render.py

bench-converge: $(STAMP)
	$(BIN)/python -m bench.converge

# The cloud make demo deploys, on the real node: phase times and memory (needs root).
bench-real-cloud: $(STAMP) system-packages
	$(BIN)/python -m bench.real_cloud

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
