PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint install services bench worker

$(BIN)/.installed: requirements.txt
	@# Colour emoji for posters come from Debian's Noto Color Emoji (CJK text comes from a PyPI font package).
	@dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq fonts-noto-color-emoji) \
	  || echo "warning: could not install fonts-noto-color-emoji; posters will leave emoji out"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(BIN)/.installed

# The product with embedded defaults: SQLite, in-process Redis, inline jobs, the periodic jobs in the served
# process, the WeChat emulator at /_emulator. The seed prints who to be; it needs the URL the app will serve at.
RUN_URL = PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}
run: install
	$(BIN)/flask --app wsgi db upgrade
	$(RUN_URL) $(BIN)/flask --app wsgi seed-demo
	$(RUN_URL) $(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT) --with-threads

# The whole suite against real PostgreSQL and Redis on localhost, then the tests marked `sqlite` again on a SQLite
# file (the embedded mode's database, see tests/conftest.py). Both passes must pass.
test: install services
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	LIEBIAN_TEST_DB=sqlite $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

services:
	./scripts/services-up

bench: install services
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk || echo "warning: no wrk; bench_scans uses its Python client"
	$(BIN)/python -m bench

worker: install
	$(BIN)/rq worker -w rq.worker.SimpleWorker --url $${REDIS_URL:?set REDIS_URL} payouts default posters notifications
