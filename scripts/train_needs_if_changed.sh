#!/usr/bin/env bash
# Trains the need classifier only when what it is trained from has changed:
# the fingerprint hashes data/needs/train.csv, the code of crm_backend/needs and the
# backend lock file (library versions). Agents' corrections in the database are
# picked up by the next `crm classifier train`, run by hand or on a schedule.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${NEED_TRAIN_CSV:-data/needs/train.csv}
model=${NEED_MODEL_PATH:-models/needs.skops}
fingerprint_file=models/needs.fingerprint

fingerprint=$(
  {
    sha256sum "$data" requirements/backend.lock
    find crm_backend/needs -type f -name '*.py' | LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -d' ' -f1
)

if [ -f "$model" ] && [ -f "$fingerprint_file" ] && [ "$(cat "$fingerprint_file")" = "$fingerprint" ]; then
  echo "Need classifier is up to date ($model)"
  exit 0
fi

echo "Training the need classifier ($data or the classifier code changed)"
rm -f "$fingerprint_file"
mkdir -p "$(dirname "$model")"
.venv/backend/bin/crm classifier train --data "$data" --out "$model"
echo "$fingerprint" > "$fingerprint_file"
