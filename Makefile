# Every target sets itself up. A fresh machine needs python3 (3.11+) and make for everything,
# and Java 17 with Maven for the KCL MultiLangDaemon (make test, make integration, make kcl):
# `make prereqs` checks all of them and says in one line what is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed
KCL_STAMP := $(VENV)/.kcl-installed
KERNEL_STAMP := $(VENV)/.kernel-built
KERNEL_SOURCES := kernel/Cargo.toml kernel/Cargo.lock kernel/pyproject.toml $(wildcard kernel/src/*.rs)

# uv installs exactly uv.lock: never a Python of its own (the machine's python3 runs the venv),
# and quietly (a failure still prints what failed).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
UV_SYNC := $(UV) sync --quiet --frozen --python $(PYTHON)

.PHONY: kernel kernel-lambda install lock lock-check prereqs kcl demo test unit integration lint format bench clean package template

# uv itself, pinned with its wheels' hashes (.ci/uv.txt).
$(UV): .ci/uv.txt
	@$(PYTHON) .ci/check_prereqs.py python
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r .ci/uv.txt
	touch $(UV)

# The venv holds exactly what uv.lock says for the `dev` extra (production + cli + local + dev),
# hashes checked. A pyproject.toml the lock does not match stops here: run `make lock`.
$(STAMP): $(UV) pyproject.toml uv.lock
	@$(MAKE) --no-print-directory lock-check
	$(UV_SYNC) --extra dev --inexact
	touch $(STAMP)

install: $(STAMP) kernel

# The compiled scoring kernel (kernel/, docs/kernel.md), built where cargo exists: a wheel
# (maturin, the crates Cargo.lock pins) installed into the venv beside the locked packages
# (`uv sync --inexact` keeps it). Without cargo the transform runs in pure Python.
kernel: $(STAMP)
	@if command -v cargo >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory --silent $(KERNEL_STAMP); \
	else \
		echo "no Rust toolchain: the scoring transform runs in pure Python"; \
	fi

# The kernel for the Lambda zip (make package takes it from dist/kernel): a manylinux2014 wheel,
# cross-linked by zig against glibc 2.17. zig comes from the lock's `lambda-build` extra (a build
# tool, never shipped; ~50 MB, so `make install` leaves it out); needs cargo and the Rust target
# x86_64-unknown-linux-gnu.
kernel-lambda: $(STAMP)
	$(UV_SYNC) --extra dev --extra lambda-build --inexact
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/maturin build --quiet --release --locked -m kernel/Cargo.toml -o dist/kernel \
		--zig --compatibility manylinux2014 --target x86_64-unknown-linux-gnu \
		--interpreter $(BIN)/python

$(KERNEL_STAMP): $(KERNEL_SOURCES)
	rm -rf dist/kernel-host
	@$(BIN)/maturin build --quiet --release --locked -m kernel/Cargo.toml -o dist/kernel-host \
		--interpreter $(BIN)/python >$(VENV)/kernel-build.log 2>&1 \
		|| { cat $(VENV)/kernel-build.log >&2; exit 1; }
	@$(UV) pip install --quiet --reinstall --no-deps --python $(BIN)/python dist/kernel-host/*.whl
	touch $(KERNEL_STAMP)

# The one deliberate refresh: re-resolve pyproject.toml's pins into uv.lock (transitive
# dependencies and hashes included). Review the diff of uv.lock, then run make test.
lock: $(UV)
	$(UV) lock --quiet --python $(PYTHON)

lock-check: $(UV)
	@$(UV) lock --check --quiet --python $(PYTHON) 2>/dev/null || { \
		echo "uv.lock does not match pyproject.toml: a dependency was added or changed" \
		     "without locking it. Run 'make lock' and commit uv.lock." >&2; exit 1; }

prereqs:
	@$(PYTHON) .ci/check_prereqs.py python java maven

# amazon-kclpy with the KCL MultiLangDaemon's jars (java 17 runs them, Maven fetches them;
# see .ci/install_kclpy.py). Outside uv.lock, so `uv sync --inexact` above leaves it installed.
kcl: $(KCL_STAMP)

$(KCL_STAMP): $(STAMP) .ci/install_kclpy.py
	@$(PYTHON) .ci/check_prereqs.py python java maven
	$(BIN)/python .ci/install_kclpy.py
	touch $(KCL_STAMP)

demo: $(STAMP) kernel
	$(BIN)/campaign-workers demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: $(STAMP) kernel
	$(BIN)/pytest -q tests/unit tests/property

integration: $(STAMP) kernel $(KCL_STAMP)
	$(BIN)/pytest -q tests/integration

test: prereqs lint kernel $(KCL_STAMP)
	$(BIN)/pytest -q

# The Lambda deployment zip (Python 3.11, x86_64): production packages + the locked runtime
# dependencies (uv.lock, hashes checked).
package: $(STAMP)
	$(BIN)/python .ci/package_lambda.py

# The AWS SAM template (deploy/template.yaml, checked in), generated from the worker registry;
# tests/unit/test_deploy_template.py fails while it differs from what this writes.
template: $(STAMP)
	$(BIN)/python -m deploy.template deploy/template.yaml

bench: $(STAMP) kernel
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist
