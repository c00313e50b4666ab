# The helpdesk-bot image: Rasa 3.6.21 and rasa-sdk (Python 3.10) with the
# bot's own code (bot/), the action server (actions/), the scaled profile's
# endpoints and credentials, and the Rasa model trained at build time. Runs
# deploy/k8s/rasa.yaml (`rasa run ...`) and deploy/k8s/actions.yaml (`rasa
# run actions ...`).
#
#   make images                 (docs/operations.md "Images"; context: the repository root)
#
# The layout is the repository's, as `make setup train` leaves it: the
# environment in /app/.venv/bot (on PATH), the code in /app, the model in
# /app/models/helpdesk.tar.gz; the working directory is /app, which
# `rasa` puts on sys.path, so `bot.*` and `actions` import from there.

ARG PYTHON_IMAGE=python:3.10-slim
FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_INTER_OP_PARALLELISM_THREADS=1 \
    TF_INTRA_OP_PARALLELISM_THREADS=1 \
    PATH=/app/.venv/bot/bin:$PATH
WORKDIR /app

# The pinned requirements, installed the Makefile's way ($(BOT_STAMP)): pip
# upgraded first, then the top-level requirements constrained by the lock
# file. A layer of its own, rebuilt only when a requirements file changes.
COPY requirements/bot.in requirements/bot.lock requirements/
RUN python -m venv .venv/bot \
 && .venv/bot/bin/python -m pip install --quiet --upgrade "pip>=24" \
 && .venv/bot/bin/python -m pip install --quiet -r requirements/bot.in -c requirements/bot.lock

# The Rasa model, trained by the script `make train` runs (`rasa train
# --fixed-model-name helpdesk --out models`; the pipeline's seeds are fixed
# in config.yml). Only what training reads is copied first, so a change to
# actions/ or the endpoints does not retrain. Rasa's training cache (.rasa/)
# is dropped in the same layer.
COPY config.yml domain.yml ./
COPY data/ data/
COPY bot/ bot/
COPY scripts/train_if_changed.sh scripts/
RUN mkdir -p models \
 && scripts/train_if_changed.sh \
 && test -s models/helpdesk.tar.gz \
 && rm -rf .rasa

COPY actions/ actions/
COPY endpoints.yml endpoints.scaled.yml credentials.yml credentials.scaled.yml ./

# A non-root user with the uid of the manifests' securityContext. Rasa writes
# a little to $HOME (.config/rasa, .keras); the code and model stay root's.
RUN groupadd --gid 10001 helpdesk \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/helpdesk --shell /usr/sbin/nologin helpdesk
USER 10001:10001
ENV HOME=/home/helpdesk

# Rasa's server (rasa.yaml) and the action server (actions.yaml).
EXPOSE 5005 5055
# What deploy/k8s/rasa.yaml runs (RASA_TOKEN and the services' settings come
# from the environment); actions.yaml gives its own command.
CMD ["sh", "-c", "exec rasa run --interface=0.0.0.0 --port=5005 --model=models/helpdesk.tar.gz --endpoints=endpoints.scaled.yml --credentials=credentials.scaled.yml --enable-api --auth-token=\"${RASA_TOKEN:?set RASA_TOKEN, the token of the Rasa HTTP API}\" --cors='*'"]
