"""``Domain.states_for_tracker_history`` worked out once per tracker state, not once per policy.

To predict each next action Rasa 3.6 asks every policy, and each turns the
whole conversation into its list of past states (``tracker.past_states``,
which replays every event into a fresh tracker copy and builds a state at
each action): RulePolicy twice (from the text, then from the intent),
MemoizationPolicy once, TED once. The first three ask with the same
arguments about the same tracker, so three of those four replays give the
same list. For a conversation of a dozen turns that replay was most of what
the Rule and Memoization policies cost (docs/benchmarks.md, "Conversations").

This keeps the last list worked out for each set of arguments, in the
thread that asked, and hands out a copy of it while the tracker is the same
object with the same events: its identity, its number of events and its
last event (events are only ever appended; a reset replaces them). Every
caller gets a list of its own, two levels deep, as the policies change the
last state's user part in place (``_choose_last_user_input``). Anything
else — a different tracker, a new event, other arguments — is worked out
by Rasa's function as before. ``tests/bot/test_past_states.py`` checks the
lists are Rasa's.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.shared.core.domain import Domain, State

_original = Domain.states_for_tracker_history
_local = threading.local()


def _copy(states: List[State]) -> List[State]:
    # A state maps "user", "prev_action", "active_loop", "slots" to dicts of
    # strings and tuples: two levels of dicts are all a caller can change.
    return [{key: dict(sub_state) for key, sub_state in state.items()} for state in states]


def _arguments_key(omit_unset_slots: bool, ignore_rule_only_turns: bool, rule_only_data: Optional[Dict[Text, Any]]) -> Tuple:
    if not ignore_rule_only_turns or not rule_only_data:
        rule_only: Tuple = ()  # only read when rule-only turns are left out
    else:
        rule_only = tuple(sorted((key, tuple(values)) for key, values in rule_only_data.items()))
    return (bool(omit_unset_slots), bool(ignore_rule_only_turns), rule_only)


def states_for_tracker_history(
    self: Domain,
    tracker: Any,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[Text, Any]] = None,
) -> List[State]:
    events = tracker.events
    if not events:
        return _original(self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = _arguments_key(omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    version = (id(self), len(events), id(events[-1]))
    kept = cache.get(key)
    if kept is not None:
        tracker_ref, kept_version, states = kept
        if tracker_ref() is tracker and kept_version == version:
            return _copy(states)
    states = _original(self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    try:
        tracker_ref = weakref.ref(tracker)
    except TypeError:  # not weakly referenceable: nothing to keep
        return states
    cache[key] = (tracker_ref, version, _copy(states))
    return states


def install() -> None:
    if Domain.states_for_tracker_history is not states_for_tracker_history:
        Domain.states_for_tracker_history = states_for_tracker_history
