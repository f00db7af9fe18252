# Every target installs what it needs into .venv first, so a fresh clone needs only Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench sweeps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hashbench fit --config experiments/demo.yaml

# One pytest worker per core (pytest-xdist), each with one torch thread: more threads would oversubscribe
# the cores the workers and their subprocesses (DDP ranks, CLI runs) share.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy hashbench

bench: $(STAMP)
	$(BIN)/python benchmarks/eval_speed.py
	$(BIN)/python benchmarks/quantizer_cost.py
	$(BIN)/python benchmarks/step_overhead.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/data_speed.py
	$(BIN)/python benchmarks/retrieval_speed.py

sweeps: $(STAMP)
	$(BIN)/hashbench sweep experiments/sweeps/lambda.yaml --local
	$(BIN)/hashbench sweep experiments/sweeps/bits.yaml --local

clean:
	rm -rf $(VENV) runs lightning_logs wandb .pytest_cache
