"""Print the NLU figures of a `rasa test nlu` run (results folder as argument).

Prints intent accuracy and macro/weighted F1, response-selector accuracy and
the misclassified examples, then one JSON line with the figures.
"""

import json
import sys
from pathlib import Path


def main(folder: str) -> int:
    results = Path(folder)
    intents = json.loads((results / "intent_report.json").read_text())
    selector_path = results / "response_selection_report.json"
    selector = json.loads(selector_path.read_text()) if selector_path.exists() else {}
    figures = {
        "intent_accuracy": round(intents["accuracy"], 4),
        "intent_macro_f1": round(intents["macro avg"]["f1-score"], 4),
        "intent_weighted_f1": round(intents["weighted avg"]["f1-score"], 4),
    }
    if selector:
        figures["response_selector_accuracy"] = round(selector["accuracy"], 4)
        figures["response_selector_macro_f1"] = round(selector["macro avg"]["f1-score"], 4)
    errors_path = results / "intent_errors.json"
    if errors_path.exists():
        for error in json.loads(errors_path.read_text()):
            print(f"  intent: {error['text']!r} expected {error['intent']} got {error['intent_prediction']['name']}")
    errors_path = results / "response_selection_errors.json"
    if errors_path.exists():
        for error in json.loads(errors_path.read_text()):
            print(f"  faq: {error['text']!r} expected {error.get('intent_response_key_target')} got "
                  f"{(error.get('intent_response_key_prediction') or {}).get('name')}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
