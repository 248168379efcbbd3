# navilink-etl: `make help` lists the targets. Each target creates/refreshes .venv first,
# so `make collect` or `make test` works as the first command on a fresh machine.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help install collect serve simulate views report notebooks test lint typecheck check bench clean

help: ## Show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with test tools

collect: $(STAMP) ## Run the collector (embedded simulator when NAVILINK_EMAIL is unset); ARGS="--duration 10"
	$(BIN)/navilink-etl collect $(ARGS)

serve: $(STAMP) ## Run the offline fake NaviLink cloud in the foreground
	$(BIN)/navilink-etl sim serve $(ARGS)

simulate: $(STAMP) ## Simulate 30 days of one heater straight into data/ (ARGS to change)
	$(BIN)/navilink-etl simulate $(or $(ARGS),--days 30 --loss 0.05)

views: $(STAMP) ## (Re)build data/warehouse.duckdb
	$(BIN)/navilink-etl views

report: $(STAMP) ## Write the efficiency report into reports/
	$(BIN)/navilink-etl report $(ARGS)

notebooks: $(STAMP) ## Open JupyterLab on notebooks/
	$(BIN)/python -m pip install -q -e '.[test,notebooks]'
	$(BIN)/jupyter lab notebooks/

test: $(STAMP) ## Run the test suite
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=15 $(ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check navilink_etl tests bench

typecheck: $(STAMP) ## mypy
	$(BIN)/mypy

check: lint typecheck test ## What CI runs: lint, types, tests

bench: $(STAMP) ## Run the benchmarks in bench/ (slow; numbers go to bench/results/)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## Remove the virtual environment and caches (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
