"""Benchmark of the need classifier (issue 5), recorded in docs/benchmarks.md.

Runs the real `crm classifier evaluate` on BANKING77 (the public benchmark,
official test split) and on the demo shop's own split, parses the JSON last
line of each, and prints a Markdown table with the goals and the gap to the
published numbers.

    .venv/backend/bin/python -m bench.classifier [--banking77 DIR]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from harness import REPO

CRM = REPO / ".venv" / "backend" / "bin" / "crm"
# Casanueva et al. 2020, "Efficient Intent Detection with Dual Sentence
# Encoders", full training data, accuracy on the 3,080 test texts.
PUBLISHED = {"BERT (fine-tuned)": 0.9366, "USE+ConveRT": 0.9336}
GOALS = {"accuracy": 0.90, "macro_f1": 0.90, "fit_seconds": 60, "predict_ms_per_text": 2.0,
         "batch_ms_per_text": 0.2, "model_mb": 50}


def evaluate(train: Path, test: Path, label_column: str) -> dict:
    command = [str(CRM), "classifier", "evaluate", "--train", str(train), "--test", str(test),
               "--label-column", label_column]
    print("$", " ".join(command), file=sys.stderr)
    # NEED_MODEL_PATH points nowhere: evaluate must not depend on a trained model.
    env = {**os.environ, "NEED_MODEL_PATH": os.devnull + ".absent"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"evaluate failed: {result.stderr.strip() or result.stdout.strip()}")
    print(result.stdout, file=sys.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banking77", type=Path, default=REPO.parent / "shared" / "datasets" / "banking77")
    args = parser.parse_args()

    runs = {
        "BANKING77": evaluate(args.banking77 / "train.csv", args.banking77 / "test.csv", "category"),
        "demo shop": evaluate(REPO / "data/needs/train.csv", REPO / "data/needs/test.csv", "label"),
    }
    rows = [("accuracy", "{:.4f}"), ("macro_f1", "{:.4f}"), ("fit_seconds", "{:.1f}"),
            ("predict_ms_per_text", "{:.2f}"), ("predict_ms_p95", "{:.2f}"), ("batch_ms_per_text", "{:.3f}"),
            ("model_mb", "{:.1f}"), ("served_accuracy", "{:.4f}"), ("coverage_above_threshold", "{:.3f}"),
            ("accuracy_above_threshold", "{:.4f}"), ("expected_calibration_error", "{:.4f}"),
            ("n_train", "{}"), ("n_test", "{}"), ("n_labels", "{}")]
    print("| figure | " + " | ".join(runs) + " | goal (BANKING77) |")
    print("| --- | " + " | ".join("---" for _ in runs) + " | --- |")
    for key, fmt in rows:
        goal = GOALS.get(key)
        goal_text = "" if goal is None else (f"≥ {goal}" if key in ("accuracy", "macro_f1") else f"< {goal}")
        print(f"| {key} | " + " | ".join(fmt.format(run[key]) for run in runs.values()) + f" | {goal_text} |")
    accuracy = runs["BANKING77"]["accuracy"]
    print()
    for name, published in PUBLISHED.items():
        print(f"- gap to {name} ({published:.2%}): {100 * (published - accuracy):.1f} accuracy points")
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
