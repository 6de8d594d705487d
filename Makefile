# The two commands of the quick start: `make demo` and `make test`.
# Each creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKERS ?= 4
PYTEST_ARGS ?=

.PHONY: demo test bench env clean

$(BIN)/fedmq: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

env: $(BIN)/fedmq

demo: env
	$(BIN)/fedmq demo --workers $(WORKERS)

test: env
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: env
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
