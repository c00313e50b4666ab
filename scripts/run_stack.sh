#!/usr/bin/env bash
# Starts the whole service on the embedded defaults (DESIGN "Ports and
# settings"): prepares var/, migrates the CRM database, makes sure the Rasa
# token and the bot's CRM API key exist, then hands over to honcho, which runs
# the Procfile and stops every process on Ctrl-C.
#
# Every setting can be overridden from the environment; the end-to-end tests
# start the stack this way on free ports with a temporary VAR_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

export VAR_DIR=$(realpath -m "${VAR_DIR:-var}")
mkdir -p "$VAR_DIR"
chmod 700 "$VAR_DIR"

export BIND_HOST=${BIND_HOST:-127.0.0.1}
export CRM_PORT=${CRM_PORT:-8000}
export RASA_PORT=${RASA_PORT:-5005}
export ACTIONS_PORT=${ACTIONS_PORT:-5055}
export CRM_WORKERS=${CRM_WORKERS:-2}
export DATABASE_URL=${DATABASE_URL:-sqlite:///$VAR_DIR/crm.db}
export RASA_TRACKER_DB=${RASA_TRACKER_DB:-$VAR_DIR/tracker.db}
export CRM_URL=${CRM_URL:-http://127.0.0.1:$CRM_PORT}
export RASA_URL=${RASA_URL:-http://127.0.0.1:$RASA_PORT}
export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export PYTHONUNBUFFERED=1

crm=.venv/backend/bin/crm
if [ ! -x "$crm" ] || [ ! -x .venv/bot/bin/rasa ] || [ ! -f models/helpdesk.tar.gz ]; then
  echo "error: the environments or the Rasa model are missing; start the service with \`make run\`." >&2
  exit 1
fi

# The Rasa HTTP API token: generated once into var/ unless given.
if [ -z "${RASA_TOKEN:-}" ]; then
  if [ ! -s "$VAR_DIR/rasa_token" ]; then
    (umask 077 && .venv/backend/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$VAR_DIR/rasa_token")
  fi
  RASA_TOKEN=$(cat "$VAR_DIR/rasa_token")
fi
export RASA_TOKEN

"$crm" init-db
if [ "${SEED_DEMO:-1}" = "1" ]; then
  "$crm" seed-demo
fi

# The bot's API key to the CRM: created on first run unless given. Only the
# scopes the bot needs.
if [ -z "${CRM_API_KEY:-}" ]; then
  export CRM_API_KEY_FILE=$VAR_DIR/crm_api_key
  "$crm" ensure-api-key bot --file "$CRM_API_KEY_FILE" \
    --scopes customers:read --scopes customers:write \
    --scopes tickets:read --scopes tickets:write --scopes handoffs:write \
    --scopes feedback:write
fi

exec .venv/backend/bin/honcho --no-colour start --procfile Procfile --app-root .
