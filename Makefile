# Two commands on a fresh machine: `make dev` runs everything, `make test` proves it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint format bench chaos lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency declarations change.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/entrega dev

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Every package of a full install, pinned, so a fresh .venv is reproducible.\n# Regenerate with `make lock` after changing pyproject.toml.' > constraints.txt

clean:
	rm -rf $(VENV) .entrega .pytest_cache .mypy_cache .ruff_cache

# The storm (issue 10): its own stack, faults, crashes, restarts, then the invariants.
# Bigger: make chaos CHAOS_ARGS="--purchases 10000 --minutes 30".
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)
