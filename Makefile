# The two commands of the quick start: `make demo` and `make test`; `make check` for contributors.
# Each creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKERS ?= 4
PYTEST_ARGS ?=
# The torch extra is part of every environment `make` builds (its tests run in CI). Pinned to the
# CPU build that lies on this machine's disk: an unpinned torch is a CUDA build of several GB.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test check format bench bench-torch bench-flower bench-flower-env env clean

$(BIN)/fedmq: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,check,torch]' '$(TORCH_PIN)'
	@touch $@

env: $(BIN)/fedmq

demo: env
	$(BIN)/fedmq demo --workers $(WORKERS)

test: env
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint, formatting, strict types, the import contracts between layers, and the code's shape.
check: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m harness.shape

format: env
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: env
	$(BIN)/python -m bench

# The PyTorch task's figures (docs/torch.md, docs/privacy.md): the centralised CNN ceiling over 3
# seeds, then Opacus DP-SGD at epsilon 1, 3, 8, inf and without DP. Tens of minutes on 2 cores.
bench-torch: env
	$(BIN)/python -m bench.torchtask ceiling --seeds 3 --epochs 20
	$(BIN)/python -m bench.torchtask privacy --epsilons 1,3,8,inf,none --seeds 1

# fedmq side by side with Flower's deployment runtime on the same PyTorch task (docs/torch.md).
# Flower lives in an environment of its own, never in the project's or CI's: the same pinned
# CPU torch, Flower 1.42 from PyPI and this repository (the Flower apps train with torchtrain).
FLOWER_VENV ?= .venv-flower
FLOWER_PIN ?= flwr==1.42.0

$(FLOWER_VENV)/bin/flower-superlink: pyproject.toml
	$(PYTHON) -m venv $(FLOWER_VENV)
	$(FLOWER_VENV)/bin/pip install --quiet --upgrade pip
	$(FLOWER_VENV)/bin/pip install --quiet -e '.[torch]' '$(FLOWER_PIN)' '$(TORCH_PIN)'
	@touch $@

bench-flower-env: $(FLOWER_VENV)/bin/flower-superlink

# About 45 minutes on 2 cores: three fedmq runs of 400 s, then Flower for 1200 s.
bench-flower: env bench-flower-env
	$(BIN)/python -m bench.flower --flower-venv $(FLOWER_VENV)

clean:
	rm -rf $(FLOWER_VENV) $(VENV) runs .pytest_cache .hypothesis .mypy_cache .ruff_cache
