#!/usr/bin/env bash
# Starts the scaled profile (make run-scaled, docs/operations.md): the CRM on
# PostgreSQL under gunicorn, two webhook workers, two action servers, two
# Rasa instances sharing a PostgreSQL tracker store, a Redis lock store and
# Redis-backed socket.io rooms, Rasa's events on RabbitMQ consumed by the
# CRM, and nginx in front.
#
# Checks that PostgreSQL, Redis and RabbitMQ answer, creates its databases if
# missing, migrates (safe when several start together), seeds the demo,
# makes sure the token and the bot's API key exist, renders the load
# balancer's configuration, then hands over to honcho with Procfile.scaled.
# Every setting can be overridden from the environment (docs/operations.md
# "Settings"); tests/e2e/test_scaled.py and the benchmarks start it on free
# ports this way (harness/scaled.py). What it shares with scripts/run_stack.sh
# is in scripts/env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh var/scaled "make run-scaled"

# Public: the load balancer (BIND_HOST). Everything else listens on 127.0.0.1 behind it.
export LB_PORT=${LB_PORT:-8080}
export RASA_API_LB_PORT=${RASA_API_LB_PORT:-8081}
export ACTIONS_LB_PORT=${ACTIONS_LB_PORT:-8082}
export CRM_PORT=${CRM_PORT:-8000}
export CRM_WORKERS=${CRM_WORKERS:-4}
export RASA1_PORT=${RASA1_PORT:-5005}
export RASA2_PORT=${RASA2_PORT:-5006}
export ACTIONS1_PORT=${ACTIONS1_PORT:-5055}
export ACTIONS2_PORT=${ACTIONS2_PORT:-5056}

# PostgreSQL: one server, a database for the CRM and one for Rasa's trackers.
export POSTGRES_HOST=${POSTGRES_HOST:-127.0.0.1}
export POSTGRES_PORT=${POSTGRES_PORT:-5432}
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-}
export CRM_DB_NAME=${CRM_DB_NAME:-helpdesk_scaled_crm}
export RASA_DB_NAME=${RASA_DB_NAME:-helpdesk_scaled_rasa}
postgres_auth=$POSTGRES_USER${POSTGRES_PASSWORD:+:$POSTGRES_PASSWORD}
export DATABASE_URL=${DATABASE_URL:-postgresql+psycopg://$postgres_auth@$POSTGRES_HOST:$POSTGRES_PORT/$CRM_DB_NAME}
export RASA_DB_HOST=$POSTGRES_HOST RASA_DB_PORT=$POSTGRES_PORT RASA_DB_USER=$POSTGRES_USER RASA_DB_PASSWORD=$POSTGRES_PASSWORD

# Redis: Rasa's lock store (one database) and the socket.io rooms (pub/sub).
export REDIS_HOST=${REDIS_HOST:-127.0.0.1}
export REDIS_PORT=${REDIS_PORT:-6379}
export REDIS_PASSWORD=${REDIS_PASSWORD:-}
export RASA_LOCK_REDIS_DB=${RASA_LOCK_REDIS_DB:-1}
export RASA_LOCK_KEY_PREFIX=${RASA_LOCK_KEY_PREFIX:-helpdesk}
export SOCKETIO_REDIS_URL=${SOCKETIO_REDIS_URL:-redis://${REDIS_PASSWORD:+:$REDIS_PASSWORD@}$REDIS_HOST:$REDIS_PORT/2}
export SOCKETIO_REDIS_CHANNEL=${SOCKETIO_REDIS_CHANNEL:-helpdesk-socketio}
# The CRM's rate-limit counters, shared by every gunicorn worker (and machine).
export RATELIMIT_STORAGE_URI=${RATELIMIT_STORAGE_URI:-redis://${REDIS_PASSWORD:+:$REDIS_PASSWORD@}$REDIS_HOST:$REDIS_PORT/3}
# The chat channels' per-sender and per-address message limits, shared by both
# Rasa instances (bot/; docs/security.md).
export CHAT_RATE_LIMIT_REDIS_URL=${CHAT_RATE_LIMIT_REDIS_URL:-redis://${REDIS_PASSWORD:+:$REDIS_PASSWORD@}$REDIS_HOST:$REDIS_PORT/4}

# RabbitMQ: Rasa publishes every event to the exchange, bound to the queue the CRM consumes.
export RABBITMQ_HOST=${RABBITMQ_HOST:-127.0.0.1}
export RABBITMQ_PORT=${RABBITMQ_PORT:-5672}
export RABBITMQ_USER=${RABBITMQ_USER:-guest}
export RABBITMQ_PASSWORD=${RABBITMQ_PASSWORD:-guest}
export RASA_EVENTS_EXCHANGE=${RASA_EVENTS_EXCHANGE:-rasa-exchange}
export RASA_EVENTS_QUEUE=${RASA_EVENTS_QUEUE:-rasa_events}
export RASA_EVENTS_BROKER_URL=${RASA_EVENTS_BROKER_URL:-amqp://$RABBITMQ_USER:$RABBITMQ_PASSWORD@$RABBITMQ_HOST:$RABBITMQ_PORT/%2F}

# Who talks to whom through the load balancer.
export ACTION_ENDPOINT_URL=${ACTION_ENDPOINT_URL:-http://127.0.0.1:$ACTIONS_LB_PORT/webhook}
export RASA_URL=${RASA_URL:-http://127.0.0.1:$RASA_API_LB_PORT}
export CRM_URL=${CRM_URL:-http://127.0.0.1:$CRM_PORT}
# The demo page points the widget at the page's own host on this port (the
# load balancer's), unless RASA_PUBLIC_URL says otherwise (e.g. behind TLS).
export RASA_PORT=$LB_PORT
export LB_RUN_DIR=$VAR_DIR/nginx

# No NLU worker process beside each Rasa instance (bot/patches/nlu_worker.py): it
# helps one Rasa process use an idle second core, but here the instances
# already fill the cores, and with workers the profile did 32 msg/s at 20
# conversations against 36.7 without (docs/benchmarks.md). More instances,
# not workers, is how this profile grows.
export BOT_NLU_WORKER=${BOT_NLU_WORKER:-0}

require_installed
if ! command -v nginx >/dev/null; then
  echo "error: nginx is not installed; \`make run-scaled\` installs Debian's package (or: apt-get install nginx)." >&2
  exit 1
fi

.venv/backend/bin/python scripts/check_scaled_services.py

make_secrets
prepare_crm

# The load balancer's configuration, from deploy/nginx.conf.template.
export CRM_PORTS=$CRM_PORT RASA_PORTS=$RASA1_PORT,$RASA2_PORT ACTIONS_PORTS=$ACTIONS1_PORT,$ACTIONS2_PORT
export LB_BIND=$BIND_HOST
mkdir -p "$LB_RUN_DIR"
.venv/backend/bin/python scripts/render_lb_config.py deploy/nginx.conf.template "$LB_RUN_DIR/nginx.conf"
nginx -t -q -p "$LB_RUN_DIR" -c "$LB_RUN_DIR/nginx.conf" -e stderr

# What the `ready` process waits for and prints.
shown_host=$([ "$BIND_HOST" = 127.0.0.1 ] || [ "$BIND_HOST" = 0.0.0.0 ] && echo localhost || echo "$BIND_HOST")
export READY_CRM_URLS=$CRM_URL
export READY_RASA_URLS=http://127.0.0.1:$RASA1_PORT,http://127.0.0.1:$RASA2_PORT
export READY_ACTIONS_URLS=http://127.0.0.1:$ACTIONS1_PORT,http://127.0.0.1:$ACTIONS2_PORT
export READY_LB_URL=http://127.0.0.1:$LB_PORT
export READY_PUBLIC_URL=${RASA_PUBLIC_URL:-http://$shown_host:$LB_PORT}

exec .venv/backend/bin/honcho --no-colour start --procfile Procfile.scaled --app-root .
