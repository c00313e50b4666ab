#!/usr/bin/env bash
# The bot's own checks: Rasa's data validation and the test stories.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
results=var/test-results
mkdir -p "$results"

echo "rasa data validate"
.venv/bot/bin/rasa data validate --fail-on-warnings --quiet

echo "rasa test core --e2e on tests/stories (NLU parses each message, then the policies predict)"
.venv/bot/bin/rasa test core --model models/helpdesk.tar.gz --stories tests/stories \
  --out "$results/core" --e2e --fail-on-prediction-errors --quiet
.venv/bot/bin/python - "$results/core/story_report.json" <<'PY'
import json, sys
from pathlib import Path
report = json.load(open(sys.argv[1]))["conversation_accuracy"]
failed = (Path(sys.argv[1]).parent / "failed_test_stories.yml").read_text()
print(f"test stories: {report['correct']}/{report['total']} conversations predicted correctly")
if "None of the test stories failed" not in failed:
    print(failed)
    sys.exit(1)
sys.exit(report["correct"] != report["total"])
PY

echo "rasa test nlu on tests/nlu/held_out.yml (phrasings that are not in data/)"
.venv/bot/bin/rasa test nlu --model models/helpdesk.tar.gz --nlu tests/nlu/held_out.yml \
  --out "$results/nlu" --quiet
.venv/bot/bin/python scripts/nlu_figures.py "$results/nlu"
