# The environment block both profiles share, sourced by scripts/run_stack.sh
# (make run) and scripts/run_scaled.sh (make run-scaled) after `cd` to the
# repository root:
#
#   . scripts/env.sh DEFAULT_VAR_DIR "MAKE TARGET"
#
# Makes $VAR_DIR (private to this user) and exports the settings every process
# of either profile reads; defines the steps both take before honcho:
# require_installed, make_secrets and prepare_crm. Every setting can be
# overridden from the environment (README "Settings", docs/operations.md).

export VAR_DIR=$(realpath -m "${VAR_DIR:-$1}")
mkdir -p "$VAR_DIR"
chmod 700 "$VAR_DIR"
make_target=$2

export BIND_HOST=${BIND_HOST:-127.0.0.1}
export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# TensorFlow runs the graph of one message's DIET, ResponseSelector or TED
# prediction. Its ops are tiny (one short message), and with TensorFlow's
# default pools (a thread per core) handing them between threads cost more
# CPU than the ops: DIET took 6.0 ms of CPU per message with the defaults,
# 2.6 ms with one thread each (docs/benchmarks.md). Rasa reads these two at
# start; 0 gives TensorFlow's defaults back.
export TF_INTER_OP_PARALLELISM_THREADS=${TF_INTER_OP_PARALLELISM_THREADS:-1}
export TF_INTRA_OP_PARALLELISM_THREADS=${TF_INTRA_OP_PARALLELISM_THREADS:-1}
export PYTHONUNBUFFERED=1
# Sanic (the action server and Rasa) closes idle keep-alive connections after
# 5 s by default, while Rasa's HTTP client to the action server keeps them for
# 15 s: under load Rasa then reused a connection the action server had just
# closed ("Cannot write to closing transport") and dropped the action. With a
# longer server-side timeout the client always closes first.
export SANIC_KEEP_ALIVE_TIMEOUT=${SANIC_KEEP_ALIVE_TIMEOUT:-75}
# The webhook SSRF guard stays on: integrations' endpoints must be public
# addresses. WEBHOOK_ALLOW_PRIVATE=1 allows private ones for local testing
# only (the CRM logs a warning when it is on).

crm=.venv/backend/bin/crm

# Both environments and the Rasa model, which the make target prepares.
require_installed() {
  if [ ! -x "$crm" ] || [ ! -x .venv/bot/bin/rasa ] || [ ! -f models/helpdesk.tar.gz ]; then
    echo "error: the environments or the Rasa model are missing; run \`$make_target\`, which prepares them." >&2
    exit 1
  fi
}

# Secrets: each generated once into $VAR_DIR unless given in the
# environment, so they survive restarts and every process (every Rasa
# instance of the scaled profile too) shares them.
secret() {  # secret NAME FILE BYTES
  if [ -z "${!1:-}" ]; then
    if [ ! -s "$2" ]; then
      (umask 077 && .venv/backend/bin/python -c "import secrets; print(secrets.token_urlsafe($3))" > "$2")
    fi
    export "$1"="$(cat "$2")"
  fi
  export "$1"
}
make_secrets() {
  # The Rasa HTTP API token. (It may start with "-"; the Procfiles pass it as
  # --auth-token=..., never as a separate argument, which Rasa's argument
  # parser would take for an option.)
  secret RASA_TOKEN "$VAR_DIR/rasa_token" 32
  # The agent console's key for its session cookie and CSRF tokens.
  secret CRM_SECRET_KEY "$VAR_DIR/secret_key" 48
  # The key host sites sign customers' identities with (docs/security.md): the
  # channels verify them, the demo shop page signs Ada's.
  secret CHAT_IDENTITY_SECRET "$VAR_DIR/chat_identity_secret" 48
  # What Rasa shows the action server (endpoints.yml); nothing else may call it.
  secret ACTIONS_TOKEN "$VAR_DIR/actions_token" 32
  # What a server-to-server integration shows the REST channel to assert a
  # verified customer email (credentials.yml).
  secret REST_CHANNEL_TOKEN "$VAR_DIR/rest_channel_token" 32
}

# Migrates the CRM database (on PostgreSQL several backends may run this at
# once: the migration takes an advisory lock, the others find the schema at
# head), seeds the demo unless SEED_DEMO=0, and creates the bot's API key to
# the CRM on first run unless CRM_API_KEY is given, with only the scopes the
# bot needs.
prepare_crm() {
  "$crm" init-db
  if [ "${SEED_DEMO:-1}" = "1" ]; then
    "$crm" seed-demo
  fi
  if [ -z "${CRM_API_KEY:-}" ]; then
    export CRM_API_KEY_FILE=$VAR_DIR/crm_api_key
    "$crm" ensure-api-key bot --file "$CRM_API_KEY_FILE" \
      --scopes customers:read --scopes customers:write \
      --scopes tickets:read --scopes tickets:write --scopes handoffs:write \
      --scopes feedback:write --scopes orders:read
  fi
}
