# bluetrace: every entry point a newcomer needs. `make test` and `make run-server`
# set everything up on first use (a virtual environment in .venv).

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed

PORT   ?= 4000
BLOCK  ?= 60
SERVER ?= 127.0.0.1
UDP    ?= 8000
SERVER_DIR ?= $(CURDIR)/.bluetrace/server
CLIENT_DIR ?= $(CURDIR)/.bluetrace/client
FUZZ_RUNS  ?= 1000000

.PHONY: install test lint typecheck unit fuzz bench run-server run-client clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,sim]'
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy --strict bluetrace

unit: install
	$(BIN)/pytest

test: lint typecheck unit

fuzz: install
	@$(BIN)/python -c 'import atheris' 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[fuzz]' || \
	  echo "atheris is unavailable here: running the hypothesis fuzzers only"
	@mkdir -p .bluetrace/fuzz-corpus fuzz/crashes
	$(BIN)/python fuzz/fuzz_parser.py -runs=$(FUZZ_RUNS) -rss_limit_mb=2048 \
	  -artifact_prefix=fuzz/crashes/ .bluetrace/fuzz-corpus fuzz/corpus

bench: install
	$(BIN)/python -m bluetrace.bench

run-server: install
	@mkdir -p $(SERVER_DIR)
	@test -f $(SERVER_DIR)/credentials.txt || cp bluetrace/samples/credentials.txt $(SERVER_DIR)/
	@echo "data folder: $(SERVER_DIR)" >&2
	cd $(SERVER_DIR) && $(BIN)/bluetrace-server $(PORT) $(BLOCK)

run-client: install
	@mkdir -p $(CLIENT_DIR)
	cd $(CLIENT_DIR) && $(BIN)/bluetrace-client $(SERVER) $(PORT) $(UDP)

clean:
	rm -rf $(VENV) .bluetrace .pytest_cache .mypy_cache .ruff_cache .hypothesis
