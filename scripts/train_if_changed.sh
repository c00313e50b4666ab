#!/usr/bin/env bash
# Trains the Rasa model only when what it is trained from has changed: the
# fingerprint is a hash of data/, domain.yml, config.yml and the Rasa version.
set -euo pipefail
cd "$(dirname "$0")/.."

export RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
model=models/helpdesk.tar.gz
fingerprint_file=models/fingerprint

fingerprint=$(
  {
    find data -type f -name '*.yml' | LC_ALL=C sort | xargs sha256sum
    sha256sum domain.yml config.yml
    grep -i '^rasa==' requirements/bot.lock
  } | sha256sum | cut -d' ' -f1
)

if [ -f "$model" ] && [ -f "$fingerprint_file" ] && [ "$(cat "$fingerprint_file")" = "$fingerprint" ]; then
  echo "Rasa model is up to date ($model)"
  exit 0
fi

echo "Training the Rasa model (data/, domain.yml or config.yml changed)"
rm -f "$fingerprint_file"
.venv/bot/bin/rasa train --fixed-model-name helpdesk --out models --quiet
echo "$fingerprint" > "$fingerprint_file"
