# Cuidar — the commands a newcomer needs. `make run` and `make test` work on a fresh machine
# with Python 3.11 and make: they create .venv and install what they need.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
LOCALE_DIRS := $(wildcard */locale */*/locale)  # apps and sub-apps (clinic/accounts/locale)

.PHONY: help run serve test lint fmt bench messages makemessages install install-dev js-deps migrate clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed ## Install the application into .venv

install-dev: $(VENV)/.installed-dev ## Install the application and the test tools into .venv

messages: $(VENV)/.installed ## Compile the translation catalogues (.po -> .mo), no gettext needed
	@for dir in $(LOCALE_DIRS); do $(BIN)/pybabel -q compile --domain django --directory $$dir; done

makemessages: $(VENV)/.installed ## Extract new strings into the catalogues (needs GNU gettext)
	$(BIN)/python manage.py makemessages --locale pt_BR --no-obsolete --no-location \
	  --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --ignore 'bench/*' --ignore '*/migrations/*'

migrate: $(VENV)/.installed messages ## Apply database migrations
	$(BIN)/python manage.py migrate --noinput

run: migrate ## Run the demo: web + Celery worker + beat on the embedded default (Ctrl-C stops all)
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "  Cuidar is starting at http://$(HOST):$(PORT)/admin/"
	@echo "  Patient portal: http://$(HOST):$(PORT)/portal/ (CPF 529.982.247-25). Its sign-in code shows in this"
	@echo "    log (\"console whatsapp → …\") and in the admin: Integrações › Registros do console"
	@echo "  Health: http://$(HOST):$(PORT)/health/"
	@echo "  Demo sign-ins: admin, recepcao, gerente, profissional — password: $${DEMO_PASSWORD:-cuidar-demo}"
	@echo
	@$(SERVE)

# honcho runs the Procfile: Ctrl-C stops web, worker and beat once each (see Procfile).
SERVE = PATH="$(abspath $(BIN)):$$PATH" PYTHONUNBUFFERED=1 HOST=$(HOST) \
  $(BIN)/honcho $$([ -t 1 ] || echo --no-colour) start --port $(PORT) || [ $$? = 130 ]

serve: ## Only start web + worker + beat (no install, migrate or demo data; Ctrl-C stops all)
	@$(SERVE)

# make test runs the suite on every core, at most 4 (pytest-xdist; tests/conftest.py says how
# workers are kept apart). PYTEST_ARGS="-n 0" runs it in one process; add --create-db after
# editing a migration (the test database is otherwise reused between runs).
PYTEST_ARGS ?= -n auto --maxprocesses=4

# The JavaScript a partner follows in docs/api.md and docs/webhooks.md, pinned by its lock
# file; tests/contract/test_javascript.py runs it with node.
JS_DIR := tests/contract/js
$(JS_DIR)/node_modules/.installed: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

js-deps: $(JS_DIR)/node_modules/.installed ## Install the partner JavaScript the contract tests run (needs Node.js and npm)

test: install-dev messages js-deps ## Lint and run the whole test suite in parallel (PostgreSQL when DATABASE_URL points at one)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-dev ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: install-dev ## Format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev ## Run the benchmarks in bench/ and write bench/RESULTS.md
	$(BIN)/python bench/run.py

clean: ## Remove the virtualenv and local data (var/)
	rm -rf $(VENV) var
