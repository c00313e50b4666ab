#!/usr/bin/env bash
# Starts the whole service on the embedded defaults (docs/architecture.md,
# "Ports and settings"): prepares var/, migrates the CRM database, makes sure
# the Rasa token and the bot's CRM API key exist, then hands over to honcho,
# which runs the Procfile and stops every process on Ctrl-C.
#
# Every setting can be overridden from the environment; the end-to-end tests
# and the benchmarks start the stack this way on free ports with a temporary
# VAR_DIR (harness/stack.py). What it shares with scripts/run_scaled.sh is in
# scripts/env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh var "make run"

export CRM_PORT=${CRM_PORT:-8000}
export RASA_PORT=${RASA_PORT:-5005}
export ACTIONS_PORT=${ACTIONS_PORT:-5055}
export CRM_WORKERS=${CRM_WORKERS:-2}
export DATABASE_URL=${DATABASE_URL:-sqlite:///$VAR_DIR/crm.db}
export RASA_TRACKER_DB=${RASA_TRACKER_DB:-$VAR_DIR/tracker.db}
export RASA_EVENTS_DB=${RASA_EVENTS_DB:-$VAR_DIR/rasa_events.db}
export CRM_URL=${CRM_URL:-http://127.0.0.1:$CRM_PORT}
export RASA_URL=${RASA_URL:-http://127.0.0.1:$RASA_PORT}

require_installed
make_secrets
prepare_crm

exec .venv/backend/bin/honcho --no-colour start --procfile Procfile --app-root .
