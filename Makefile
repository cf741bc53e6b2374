# bluetrace: every entry point a newcomer needs. `make test` and `make run-server`
# set everything up on first use (a virtual environment in .venv).

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed

PORT   ?= 4000
BLOCK  ?= 60
HOST   ?= 127.0.0.1
SERVER ?= 127.0.0.1
UDP    ?= 8000
SERVER_DIR ?= $(CURDIR)/.bluetrace/server
CLIENT_DIR ?= $(CURDIR)/.bluetrace/client
FUZZ_RUNS  ?= 1000000
FUZZ_SECONDS ?= 600
BENCH_ONLY ?=
SCENARIO   ?= office
SEEDS      ?= 5
SIM_OUT    ?= $(CURDIR)/.bluetrace/sim/$(SCENARIO)

.PHONY: help install test lint typecheck unit fuzz bench simulate sim-bench sim-bench-million investigate \
        conform run-server run-client certs clean clean-data

help:
	@echo "make run-server   a server on $(HOST):$(PORT) (HOST=0.0.0.0 serves other machines)"
	@echo "make run-client   a phone (UDP=8001 for a second one)"
	@echo "make test         ruff, mypy --strict and the test suite"
	@echo "make simulate     a built-in scenario (SCENARIO=$(SCENARIO)); prints where the report is"
	@echo "make investigate  regenerate docs/investigations.md"
	@echo "make conform      the conformance kit against bluetrace's own server and phone"
	@echo "make bench | sim-bench | fuzz   performance figures and long fuzzing"
	@echo "make sim-bench-million  town at 1,000,000 phones x 21 days (minutes)"
	@echo "make certs        a self-signed certificate for trying TLS (see README)"
	@echo "make clean        remove build and cache files (keeps .bluetrace/server data)"
	@echo "make clean-data   remove the server's and phones' data under .bluetrace/"

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) (first run: about a minute)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,sim]'
	@touch $(STAMP)
	@echo "$(VENV) is ready."

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
	$(BIN)/python -m fuzz --runs $(FUZZ_RUNS) --seconds $(FUZZ_SECONDS)

bench: install
	$(BIN)/python -m bluetrace.bench $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

simulate: install
	$(BIN)/bluetrace-sim run $(SCENARIO) --seeds $(SEEDS) --out $(SIM_OUT)

sim-bench: install
	@mkdir -p .bluetrace/bench
	$(BIN)/python -m bluetrace.sim.bench --json .bluetrace/bench/sim.json

sim-bench-million: install
	@mkdir -p .bluetrace/bench
	$(BIN)/python -m bluetrace.sim.bench --people 1000000 --json .bluetrace/bench/sim-million.json

investigate: install
	$(BIN)/python -m bluetrace.sim.studies.investigate

conform: install
	@mkdir -p .bluetrace
	$(BIN)/bluetrace-conform self --junit .bluetrace/conform.xml --html .bluetrace/conform.html

run-server: install
	@mkdir -p $(SERVER_DIR)
	@test -f $(SERVER_DIR)/credentials.txt || cp bluetrace/samples/credentials.txt $(SERVER_DIR)/
	@test -f $(SERVER_DIR)/tempIDs.txt || cp bluetrace/samples/tempIDs.txt $(SERVER_DIR)/
	@echo "data folder: $(SERVER_DIR)" >&2
	@cd $(SERVER_DIR) && exec $(BIN)/bluetrace-server $(PORT) $(BLOCK) --host $(HOST) || test $$? -eq 130

certs:
	@mkdir -p .bluetrace/tls
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
	  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	  -keyout .bluetrace/tls/key.pem -out .bluetrace/tls/cert.pem 2>/dev/null
	@echo "certificate: .bluetrace/tls/cert.pem (key: key.pem beside it)"
	@echo "pin (SHA-256): $$(openssl x509 -in .bluetrace/tls/cert.pem -outform DER | sha256sum | cut -d' ' -f1)"

run-client: install
	@mkdir -p $(CLIENT_DIR)
	@cd $(CLIENT_DIR) && exec $(BIN)/bluetrace-client $(SERVER) $(PORT) $(UDP) || true

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	@echo "kept .bluetrace/ (server data, contact logs): 'make clean-data' removes it"

clean-data:
	@echo "removing .bluetrace/ (credentials, tempIDs.txt, contact_checks.txt, contact logs)"
	rm -rf .bluetrace
