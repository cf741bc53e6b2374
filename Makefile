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
TLS_DIR    := $(CURDIR)/.bluetrace/tls
TLS        ?=
SERVER_TLS := $(if $(TLS),--tls-cert $(TLS_DIR)/cert.pem --tls-key $(TLS_DIR)/key.pem)
CLIENT_TLS := $(if $(TLS),--tls-ca $(TLS_DIR)/cert.pem)

# How run-server and run-client end: the program has already said why in its
# own words, so make adds no "*** Error" line of its own. Ctrl-C (status 130)
# is passed on as an interrupt of make itself, which then ends with 130 too;
# a usage error (2) and anything unexpected are make's error as usual. The
# recipe's shell traps SIGINT (trap :, which its children do not inherit) so
# that a Ctrl-C the program handles does not also kill the shell mid-way. The
# shell outlives its signal to make by a moment: make must take the signal
# while it still waits for the shell, or it may end with 2 instead of 130.
define ENDED_QUIETLY
status=$$?; \
	  if [ $$status -eq 130 ]; then kill -INT $$PPID; sleep 1; exit 0; fi; \
	  if [ $$status -le 1 ]; then exit 0; fi; \
	  exit $$status
endef

.PHONY: help install test lint typecheck unit fuzz bench simulate sim-bench sim-bench-million sim-bench-cluster investigate \
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
	@echo "make sim-bench-cluster  the same on a local Dask cluster of 2 worker processes"
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

sim-bench-cluster: install
	@mkdir -p .bluetrace/bench
	$(BIN)/python -m bluetrace.sim.bench --people 1000000 --workers 2 --no-ceiling \
		--json .bluetrace/bench/sim-cluster.json

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
	@$(if $(TLS),test -f $(TLS_DIR)/cert.pem || $(MAKE) --no-print-directory certs)
	@trap : INT; cd $(SERVER_DIR) && $(BIN)/bluetrace-server $(PORT) $(BLOCK) --host $(HOST) $(SERVER_TLS); \
	  $(ENDED_QUIETLY)

certs:
	@mkdir -p $(TLS_DIR)
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
	  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	  -keyout .bluetrace/tls/key.pem -out .bluetrace/tls/cert.pem 2>/dev/null
	@echo "certificate: .bluetrace/tls/cert.pem (key: key.pem beside it)"
	@echo "pin (SHA-256): $$(openssl x509 -in .bluetrace/tls/cert.pem -outform DER | sha256sum | cut -d' ' -f1)"

run-client: install
	@mkdir -p $(CLIENT_DIR)
	@trap : INT; cd $(CLIENT_DIR) && $(BIN)/bluetrace-client $(SERVER) $(PORT) $(UDP) $(CLIENT_TLS); \
	  $(ENDED_QUIETLY)

# A phone started in the top folder (not through make run-client) leaves the
# lock file of its contact log here; no phone holds it once it has exited.
STRAY_LOCKS = .*_contactlog.txt.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info $(STRAY_LOCKS)
	@echo "kept .bluetrace/ (server data, contact logs): 'make clean-data' removes it"

clean-data:
	@echo "removing .bluetrace/ (credentials, tempIDs.txt, contact_checks.txt, contact logs)"
	rm -rf .bluetrace $(STRAY_LOCKS)
