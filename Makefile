# Northwind helpdesk — one command to run it, one to test it (README "Quick start").
#
#   make run    create/update both environments, train if needed, start everything
#   make test   the same preparation, then the whole test suite
#
# Environments are rebuilt only when their requirements change (stamp files),
# the Rasa model only when data/, domain.yml or config.yml change (fingerprint).

SHELL := /bin/bash
.DEFAULT_GOAL := help

BOT_VENV     := .venv/bot
BACKEND_VENV := .venv/backend
BOT_STAMP     := $(BOT_VENV)/.installed
BACKEND_STAMP := $(BACKEND_VENV)/.installed
PYTHON311 ?= $(shell command -v python3.11 || command -v python3)

# The chat widget (widget/, npm + esbuild) is built into the CRM's pages; the
# bundle is rebuilt only when its sources, its packages or the build script change.
WIDGET_BUNDLE := crm_backend/pages/static/widget.js
WIDGET_MODULES := widget/node_modules/.installed
WIDGET_SOURCES := $(shell find widget/src -type f 2>/dev/null) widget/build.mjs
# The console dashboard's charts (Chart.js, npm + esbuild in crm_backend/console/frontend/), built the same way.
DASHBOARD_DIR := crm_backend/console/frontend
DASHBOARD_BUNDLE := crm_backend/console/static/dashboard.js
DASHBOARD_MODULES := $(DASHBOARD_DIR)/node_modules/.installed
DASHBOARD_SOURCES := $(shell find $(DASHBOARD_DIR)/src -type f 2>/dev/null) $(DASHBOARD_DIR)/build.mjs
# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium
# The scaled profile's load balancer (make run-scaled, tests/e2e/test_scaled.py): Debian's nginx.
NGINX := /usr/sbin/nginx

# No telemetry calls home, no TensorFlow chatter.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup widget train run test test-backend test-backend-postgres test-actions test-bot test-widget test-e2e clean

help:
	@echo "make run    start the whole service (CRM :8000, actions :5055, Rasa :5005)"
	@echo "make run-scaled  the scaled profile: PostgreSQL, Redis, RabbitMQ, 2 Rasa, 2 action servers, nginx on :8080 (docs/operations.md)"
	@echo "make test   run the whole test suite"
	@echo "make lint-imports  check who imports whom and that no import cycles exist (part of make test)"
	@echo "make setup  create/update the two Python environments and build the chat widget"
	@echo "make widget build the chat widget (widget/ -> $(WIDGET_BUNDLE)) if its sources changed"
	@echo "make train  train the Rasa model if data/, domain.yml or config.yml changed"
	@echo "           and the need classifier if data/needs/train.csv or its code changed"
	@echo "make bench-tools  install wrk, the load generator of bench/crm_api.py"
	@echo "make images build the container images helpdesk-crm and helpdesk-bot for deploy/k8s (needs a Docker engine;"
	@echo "           IMAGE_PREFIX=registry/path/ IMAGE_TAG=1.2.3, docs/operations.md \"Images\")"
	@echo "make clean  remove environments, trained models and var/"

setup: $(BOT_STAMP) $(BACKEND_STAMP) $(WIDGET_BUNDLE) $(DASHBOARD_BUNDLE)

widget: $(WIDGET_BUNDLE)

$(WIDGET_MODULES): widget/package.json widget/package-lock.json
	@command -v npm >/dev/null || { echo "error: the chat widget needs Node.js 18+ with npm (apt-get install nodejs npm)." >&2; exit 1; }
	cd widget && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WIDGET_BUNDLE): $(WIDGET_MODULES) $(WIDGET_SOURCES) widget/package.json widget/package-lock.json
	cd widget && node build.mjs --out ../$(WIDGET_BUNDLE)

.PHONY: dashboard
dashboard: $(DASHBOARD_BUNDLE)

$(DASHBOARD_MODULES): $(DASHBOARD_DIR)/package.json $(DASHBOARD_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "error: the console dashboard needs Node.js 18+ with npm (apt-get install nodejs npm)." >&2; exit 1; }
	cd $(DASHBOARD_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(DASHBOARD_BUNDLE): $(DASHBOARD_MODULES) $(DASHBOARD_SOURCES) $(DASHBOARD_DIR)/package.json $(DASHBOARD_DIR)/package-lock.json
	cd $(DASHBOARD_DIR) && node build.mjs --out $(abspath $(DASHBOARD_BUNDLE))

$(CHROMIUM):
	@echo "Installing Debian's Chromium for the browser tests"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends chromium fonts-liberation

# The load generator of bench/crm_api.py (not needed by make run or make test).
WRK := /usr/bin/wrk
.PHONY: bench-tools
bench-tools: $(WRK)
$(WRK):
	@echo "Installing Debian's wrk, the CRM API benchmark's load generator (needs root)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends wrk

# The container images of deploy/k8s/ (docs/operations.md "Images"): both
# train their model while building, from the repository root as context. Not
# part of make run or make test: it needs a running Docker engine.
IMAGE_PREFIX ?=
IMAGE_TAG ?= latest
IMAGE_PLATFORM ?= linux/amd64
.PHONY: images
images:
	@docker info >/dev/null 2>&1 || { echo "error: make images needs a running Docker engine and none answers (\`docker info\` failed); run it where one runs." >&2; exit 1; }
	docker build --platform $(IMAGE_PLATFORM) -f deploy/images/crm.Dockerfile -t $(IMAGE_PREFIX)helpdesk-crm:$(IMAGE_TAG) .
	docker build --platform $(IMAGE_PLATFORM) -f deploy/images/bot.Dockerfile -t $(IMAGE_PREFIX)helpdesk-bot:$(IMAGE_TAG) .

# Only the binary is used: run-scaled starts its own nginx with a rendered
# configuration (deploy/nginx.conf.template); the system service is not needed.
$(NGINX):
	@echo "Installing Debian's nginx, the scaled profile's load balancer (needs root; or install it yourself: apt-get install nginx)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends nginx

$(BOT_STAMP): requirements/bot.in requirements/bot.lock
	@python310=$$(scripts/find_python310.sh) || exit 1; \
	if [ ! -x $(BOT_VENV)/bin/python ]; then \
	  echo "Creating the bot environment ($(BOT_VENV), $$python310)"; \
	  "$$python310" -m venv $(BOT_VENV) || exit 1; \
	fi
	$(BOT_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true
	@echo "Installing the bot environment's pinned requirements (a few minutes the first time)"
	set -o pipefail; $(BOT_VENV)/bin/python -m pip install --quiet -r requirements/bot.in -c requirements/bot.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $@

$(BACKEND_STAMP): requirements/backend.in requirements/backend.lock pyproject.toml
	@if [ ! -x $(BACKEND_VENV)/bin/python ]; then \
	  echo "Creating the backend environment ($(BACKEND_VENV), $(PYTHON311))"; \
	  $(PYTHON311) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: the CRM backend needs Python 3.11 or newer; set PYTHON311=/path/to/python3.11." >&2; exit 1; }; \
	  $(PYTHON311) -m venv $(BACKEND_VENV) || exit 1; \
	fi
	@echo "Installing the backend environment's pinned requirements"
	set -o pipefail; $(BACKEND_VENV)/bin/python -m pip install --quiet -r requirements/backend.in -c requirements/backend.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	set -o pipefail; $(BACKEND_VENV)/bin/python -m pip install --quiet --no-deps -e . 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $@

train: $(BOT_STAMP) $(BACKEND_STAMP)
	@scripts/train_if_changed.sh
	@scripts/train_needs_if_changed.sh

run: setup train
	@scripts/run_stack.sh

# Needs PostgreSQL, Redis and RabbitMQ (settings in docs/operations.md); says which one does not answer.
.PHONY: run-scaled
run-scaled: setup train $(NGINX)
	@scripts/run_scaled.sh

test: setup train lint-imports test-backend test-backend-postgres test-actions test-bot test-widget test-e2e
	@echo "make test: every suite passed"

# Who may import whom, and no import cycles: the contracts in pyproject.toml
# [tool.importlinter], explained in docs/architecture.md "Import rules".
.PHONY: lint-imports
lint-imports: $(BACKEND_STAMP)
	$(BACKEND_VENV)/bin/lint-imports --no-logo

test-backend: $(BACKEND_STAMP)
	$(BACKEND_VENV)/bin/python -m pytest tests/backend -q

# The data layer on PostgreSQL (a database per test, created and dropped on
# the server at CRM_TEST_POSTGRES_URL): skipped, and said so, when none answers.
CRM_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432
POSTGRES_TESTS := test_tickets test_handoffs test_feedback test_customers test_customer_writes test_idempotency \
	test_migrations test_availability test_handoff_follower test_webhooks_outbox test_webhooks_delivery \
	test_webhooks_api test_inbound test_console test_admin_api test_analytics test_conversations_feed test_insights_models \
	test_imports
# The scaled profile's consumer of Rasa's RabbitMQ events, on PostgreSQL too.
POSTGRES_TESTS += test_broker_consumer
# The nightly recompute's lease: one holder at a time on PostgreSQL as on SQLite.
POSTGRES_TESTS += test_insights_nightly
# What the workers cannot handle is set aside (dead letters), on PostgreSQL too.
POSTGRES_TESTS += test_dead_letters test_follower_malformed_events test_consumer_malformed_messages test_webhooks_unsendable \
	test_insights_bad_rows test_webhooks_private_targets
# Console sessions kept on the server, chat's daily caps, malformed input (NUL is
# PostgreSQL's own trouble) and the bot key's readiness check, on PostgreSQL too.
POSTGRES_TESTS += test_console_sessions test_chat_limits test_malformed_input test_bot_key
# Whether the visitor proved the customer's address: the column, its migration, the console's warning.
POSTGRES_TESTS += test_customer_verified
# Orders with their fulfilment: the API, the order events, the import, migration 0013.
POSTGRES_TESTS += test_orders
test-backend-postgres: $(BACKEND_STAMP)
	@if $(BACKEND_VENV)/bin/python -c 'import sys, psycopg; psycopg.connect(sys.argv[1].replace("+psycopg", "") + "/postgres", connect_timeout=3).close()' "$(CRM_TEST_POSTGRES_URL)" 2>/dev/null; then \
	  CRM_TEST_POSTGRES_URL=$(CRM_TEST_POSTGRES_URL) $(BACKEND_VENV)/bin/python -m pytest -q $(addprefix tests/backend/,$(addsuffix .py,$(POSTGRES_TESTS))); \
	else \
	  echo "test-backend-postgres: SKIPPED - no PostgreSQL answers at $(CRM_TEST_POSTGRES_URL) (set CRM_TEST_POSTGRES_URL to run the data-layer tests on PostgreSQL)"; \
	fi

test-actions: $(BOT_STAMP)
	$(BOT_VENV)/bin/python -m pytest tests/actions -q

test-bot: $(BOT_STAMP) train
	$(BOT_VENV)/bin/python -m pytest tests/bot -q
	scripts/test_bot.sh

test-widget: $(WIDGET_MODULES)
	cd widget && node --test test/

test-e2e: setup train $(CHROMIUM) $(NGINX)
	$(BACKEND_VENV)/bin/python -m pytest tests/e2e -q

clean:
	rm -rf .venv models/*.tar.gz models/fingerprint models/needs.skops models/needs.fingerprint var results .rasa widget/node_modules $(WIDGET_BUNDLE) $(DASHBOARD_DIR)/node_modules $(DASHBOARD_BUNDLE)
