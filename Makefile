# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install run stop test lint typecheck importlint pytest system-deps bench clean

$(BIN)/tutela: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
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

pytest: install system-deps
	$(BIN)/pytest -q

test: install system-deps lint typecheck importlint pytest

bench: install system-deps
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .tutela .pytest_cache .mypy_cache .ruff_cache
