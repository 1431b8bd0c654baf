# The README's two commands: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output

.PHONY: demo test lint typecheck unit bench-encode bench-linkage bench-audit bench-hub clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m hub.demo --out-dir $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# PostgreSQL tests run against the machine's PostgreSQL 15 when .ci/postgres can start it
# (CI always can); otherwise they are skipped locally and fail in CI.
unit: $(STAMP)
	PPRL_TEST_POSTGRES_URL="$${PPRL_TEST_POSTGRES_URL:-$$(.ci/postgres 2>/dev/null)}" $(BIN)/pytest -q

test: lint typecheck unit

bench-encode: $(STAMP)
	$(BIN)/python bench/encode.py

bench-linkage: $(STAMP)
	$(BIN)/python bench/linkage.py

bench-audit: $(STAMP)
	$(BIN)/python bench/audit.py

bench-hub: $(STAMP)
	$(BIN)/python bench/hub.py

.PHONY: bench-load
bench-load: $(STAMP)
	$(BIN)/python bench/load.py --postgres "$$(.ci/postgres)"

.PHONY: bench-faults
bench-faults: $(STAMP)
	$(BIN)/python bench/faults.py --private-postgres

.PHONY: bench-attack
bench-attack: $(STAMP)
	$(BIN)/python bench/attack.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .pytest_cache .ruff_cache bench/.peers-venv
