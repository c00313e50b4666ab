#!/usr/bin/env bash
# NLU cross-validation of the assistant's pipeline (config.yml) on data/:
# intent F1 and response-selector accuracy, averaged over the folds.
#
#   bench/nlu_cross_validation.sh [FOLDS]      (default 3; ~3 min per fold here)
#
# Prints Rasa's per-fold summary, then one JSON line with the test-fold means
# (scripts/nlu_figures.py reads the reports). Results in var/bench/nlu-cv/.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2} PYTHONPATH=.
folds=${1:-3}
out=var/bench/nlu-cv
rm -rf "$out" && mkdir -p "$out"
start=$(date +%s)
echo "rasa test nlu --cross-validation --folds $folds (log: $out/rasa.log)"
.venv/bot/bin/rasa test nlu --config config.yml --nlu data --cross-validation --folds "$folds" \
  --out "$out" --quiet > "$out/rasa.log" 2>&1
.venv/bot/bin/python - "$out/intent_report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rows = sorted((v["f1-score"], k, v["support"]) for k, v in report.items() if isinstance(v, dict) and "avg" not in k)
print("intent F1 on the test folds, worst first:")
for f1, name, support in rows:
    print(f"  {name:16} {f1:.3f}  ({support} examples)")
PY
.venv/bot/bin/python scripts/nlu_figures.py "$out" | tail -1 | sed "s/}$/, \"folds\": $folds, \"seconds\": $(( $(date +%s) - start ))}/"
