# metasift: `make run` runs the worked example; `make test` runs the tests.
# Both create .venv and install what they need (idempotent: a stamp file records the install).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test venv lint format bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python examples/ivig-ssc/build.py $(if $(NO_SERVE),,--serve-if-interactive)

serve: $(STAMP)
	$(BIN)/python examples/ivig-ssc/build.py --serve

test: $(STAMP)
	@if [ -z "$$METASIFT_TEST_PG" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  export METASIFT_TEST_PG=$$(scripts/pg.sh start); fi; \
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

clean:
	rm -rf $(VENV) examples/ivig-ssc/review.db* examples/ivig-ssc/out examples/ivig-ssc/searches
