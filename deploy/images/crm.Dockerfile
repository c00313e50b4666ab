# The helpdesk-crm image: the CRM backend (crm_backend/, Python 3.11) with the
# chat widget and the console dashboard bundles it serves, and the need
# classifier trained from data/needs/train.csv at build time. Runs every
# CRM-side process of deploy/k8s/ (gunicorn, `crm init-db`, `crm webhooks
# worker`, `crm handoffs follow --broker ...`, `crm insights nightly`).
#
#   make images                 (docs/operations.md "Images"; context: the repository root)
#
# The layout is the repository's, as `make setup train` leaves it: the
# environment in /app/.venv/backend (on PATH), the code in /app, the model in
# /app/models/needs.skops; the working directory is /app.

ARG NODE_IMAGE=node:20-slim
ARG PYTHON_IMAGE=python:3.11-slim

# The browser bundles, built as the Makefile builds them (npm ci + esbuild);
# only the two bundle files go into the image.
FROM ${NODE_IMAGE} AS bundles
WORKDIR /src/widget
COPY widget/package.json widget/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY widget/ ./
RUN node build.mjs --out ../crm_backend/pages/static/widget.js
WORKDIR /src/crm_backend/console/frontend
COPY crm_backend/console/frontend/package.json crm_backend/console/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY crm_backend/console/frontend/ ./
RUN node build.mjs --out /src/crm_backend/console/static/dashboard.js

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/app/.venv/backend/bin:$PATH \
    VAR_DIR=/var/lib/helpdesk
WORKDIR /app

# The pinned requirements, installed the Makefile's way ($(BACKEND_STAMP)):
# the top-level requirements constrained by the lock file. A layer of its
# own, rebuilt only when a requirements file changes.
COPY requirements/backend.in requirements/backend.lock requirements/
RUN python -m venv .venv/backend \
 && .venv/backend/bin/python -m pip install --quiet -r requirements/backend.in -c requirements/backend.lock

COPY pyproject.toml ./
COPY crm_backend/ crm_backend/
COPY --from=bundles /src/crm_backend/pages/static/widget.js crm_backend/pages/static/widget.js
COPY --from=bundles /src/crm_backend/console/static/dashboard.js crm_backend/console/static/dashboard.js
RUN .venv/backend/bin/python -m pip install --quiet --no-deps -e .

# The need classifier, trained by the script `make train` runs. On an
# in-memory database: the build has no agents' corrections to add (they join
# a retraining, `crm classifier train`, against the real database).
COPY data/needs/ data/needs/
COPY scripts/train_needs_if_changed.sh scripts/
RUN DATABASE_URL=sqlite:// scripts/train_needs_if_changed.sh \
 && test -s models/needs.skops

# A non-root user with the uid of the manifests' securityContext; it may
# write only VAR_DIR and var/ (where the default DATABASE_URL, for a try
# without PostgreSQL, keeps its SQLite file).
RUN groupadd --gid 10001 helpdesk \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/helpdesk --shell /usr/sbin/nologin helpdesk \
 && mkdir -p /var/lib/helpdesk /app/var \
 && chown helpdesk:helpdesk /var/lib/helpdesk /app/var
USER 10001:10001

EXPOSE 8000
# What deploy/k8s/crm.yaml runs; the other manifests give their own command.
CMD ["sh", "-c", "exec gunicorn --bind=0.0.0.0:8000 --workers=${CRM_WORKERS:-4} --worker-class=gthread --threads=8 --access-logfile=- --error-logfile=- --graceful-timeout=20 'crm_backend.behind_proxy:create_app()'"]
