# The two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
STAMP := $(VENV)/.installed
# `make run`'s port: `make run PORT=5001` when 5000 is taken. Only from the command
# line: a PORT in the environment is gunicorn's (.env.example sets 8000).
RUN_PORT := $(if $(filter command line,$(origin PORT)),$(PORT),5000)

.PHONY: run test browser lint format fuzz bench soak screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) seed-demo --if-empty
	$(FLASK) create-user admin --email admin@electroisla.test --password admin12345 --rol admin --if-missing
	@echo ""
	@echo "  Electro Isla API on http://127.0.0.1:$(RUN_PORT)  (docs: http://127.0.0.1:$(RUN_PORT)/api/docs/)"
	@echo "  Log in:  curl -X POST http://127.0.0.1:$(RUN_PORT)/api/auth/login/ -H 'Content-Type: application/json' \\"
	@echo "             -d '{\"username\": \"admin\", \"password\": \"admin12345\"}'"
	@echo ""
	$(FLASK) run --host 127.0.0.1 --port $(RUN_PORT)

# pytest exits 5 when it collected no test: say so (make itself then exits 2, a failure).
test: $(STAMP) browser
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest ran no test; that is a failure" >&2; fi; \
	exit $$status

# The operator console's browser tests drive Debian's Chromium through its chromedriver:
# installed here when missing (as root), else a clear request to install them.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! [ -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then \
	    echo "make test: installing Debian's chromium and chromium-driver for the browser tests"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else \
	    echo "make test: the browser tests need Debian's chromium and chromium-driver:" \
	      "sudo apt-get install chromium chromium-driver" >&2; \
	    exit 1; \
	  fi; \
	fi

# Thousands of schemathesis cases: FUZZ_MAX_EXAMPLES per operation and role (the
# suite uses 3), FUZZ_STATEFUL_EXAMPLES scenarios per role (the suite uses 8).
FUZZ_MAX_EXAMPLES ?= 50
FUZZ_STATEFUL_EXAMPLES ?= 100
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_STATEFUL_EXAMPLES=$(FUZZ_STATEFUL_EXAMPLES) \
		$(BIN)/python -m pytest -p no:logging -q tests/fuzz

# Dashboard load: private PostgreSQL + Redis, seed-demo at 100,000 pedidos, gunicorn;
# all-hit baseline, the mix with the cache, the mix with CACHE_ENABLED=0 (~6 min).
bench: $(STAMP)
	$(BIN)/python bench/load.py --pedidos 100000 --seconds 60 --baseline-seconds 30

# 10 minutes of the mix: worker RSS growth < 10 %, zero errors (not in CI).
soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes 10 --pedidos 100000

# docs/consola.png and docs/consola-movil.png: the operator console on demo data, in
# headless Chromium (needs Debian's chromium and chromium-driver, as `make test` does).
screenshot: $(STAMP)
	$(BIN)/python docs/screenshot.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance logs .pytest_cache
