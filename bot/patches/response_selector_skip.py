"""The ResponseSelector asked only about messages that may be its retrieval intent.

Rasa runs the ResponseSelector's model on every message, though its answer
is used only when the message's intent is the retrieval intent (``faq``: the
rule ``faq → utter_faq``). While this patch is active,
``bot.components.FastLoadingResponseSelector`` gives no response selection
to a message whose intent ranking (from DIET, which runs before) gives the
retrieval intent less than ``MIN_RETRIEVAL_CONFIDENCE``: 12 % of the Rasa
process's time under load, on the four in five messages that are not FAQ
questions; with the ``fast_features`` patch one parse went from 21.6 to
about 12.5 ms of CPU (docs/benchmarks.md, "Cheaper NLU and oldest message
first"). On the held-out phrasings, nine in ten non-FAQ messages give
``faq`` 0.0002 or less, and every FAQ message is far above the threshold, so
every message whose selection could matter still gets one. Messages without
an intent ranking (another pipeline) are selected for, as before.

What changes is only what a non-FAQ message's ``parse_data`` holds (no
``response_selector`` answer nobody reads), not what the assistant says.
"""

from __future__ import annotations

from typing import Optional, Text

from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

MIN_RETRIEVAL_CONFIDENCE = 0.01


def may_be_retrieval_intent(message: Message, retrieval_intent: Optional[Text]) -> bool:
    """Whether the ResponseSelector of ``retrieval_intent`` should look at ``message``."""
    if not retrieval_intent:
        return True
    intent = message.get(INTENT) or {}
    if intent.get(INTENT_NAME_KEY) == retrieval_intent:
        return True
    ranking = message.get(INTENT_RANKING_KEY)
    if not ranking:
        return True
    confidence = next(
        (entry.get(PREDICTED_CONFIDENCE_KEY, 0.0) for entry in ranking
         if entry.get(INTENT_NAME_KEY) == retrieval_intent),
        0.0,
    )
    return confidence >= MIN_RETRIEVAL_CONFIDENCE
