# Every target sets itself up: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KCL_STAMP := $(VENV)/.kcl-installed

.PHONY: install kcl demo test unit integration lint format bench clean package

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# amazon-kclpy with the KCL MultiLangDaemon's jars (java 17 runs them; Maven is the fallback
# when amazon-kclpy's own jar download fails, see .ci/install_kclpy.py).
kcl: $(KCL_STAMP)

$(KCL_STAMP): $(STAMP) .ci/install_kclpy.py
	$(BIN)/python .ci/install_kclpy.py
	touch $(KCL_STAMP)

demo: $(STAMP)
	$(BIN)/campaign-workers demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/property

integration: $(STAMP) $(KCL_STAMP)
	$(BIN)/pytest -q tests/integration

test: lint $(KCL_STAMP)
	$(BIN)/pytest -q

# The Lambda deployment zip (Python 3.11, x86_64): production packages + runtime dependencies.
package: $(STAMP)
	$(BIN)/python .ci/package_lambda.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist
