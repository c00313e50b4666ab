"""What a handoff is about, from what the customer actually said.

A customer who asks for a person often says it in anger ("this bot is
useless, get me a human") after having described the problem earlier ("my
kettle arrived cracked"). The handoff's reason, its need and the ticket the
agent opens should come from the problem, not from the request for a person.

A customer line is **substantive** when the need classifier reads a real need
in it (not ``other``) and it is not about the assistant or about getting a
person (a ``service_complaint`` about the bot is not the problem to solve; a
complaint about a courier is). Without a need model, a line is substantive
when it has words beyond the request for a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REASON_LENGTH = 300
SUBJECT_LENGTH = 120
# How many of the newest customer lines are read (each is one classifier call).
LINES_READ = 30
# The reason joins at most this many substantive lines, newest last.
REASON_LINES = 3
NO_NEED = {"other", "praise"}
# Lines about the assistant itself or about getting a person say nothing about the problem.
ABOUT_THE_CHAT = re.compile(
    r"\b(bot|robot|chat\s?bot|assistant|machine|ai|human|humans|person|people|someone|somebody|anyone|agent|"
    r"operator|representative|rep|real|useless|pointless|stupid|talk|speak|chat|connect|transfer)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"[a-z']+")
# Button choices and the widget's start of a conversation ("/greet", "[greet]").
PAYLOAD = re.compile(r"^\s*(/\w|\[\w+\]\s*$)")
EMAIL_ONLY = re.compile(r"^\s*\S+@\S+\s*$")


@dataclass(frozen=True)
class Reading:
    text: str
    label: str
    confidence: float | None
    substantive: bool


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def read_line(text: str) -> Reading:
    """The need in one customer line, and whether it says what the problem is."""
    from ..needs import classify_or_other

    line = _one_line(text)
    if not line or PAYLOAD.match(line) or EMAIL_ONLY.match(line) or line.startswith("EXTERNAL:"):
        return Reading(line, "other", None, False)
    label, confidence = classify_or_other(line)
    about_the_chat = bool(ABOUT_THE_CHAT.search(line))
    if confidence is None:  # no need model: any words beyond the request for a person
        words = [w for w in WORD.findall(line.lower()) if not ABOUT_THE_CHAT.fullmatch(w)]
        return Reading(line, label, None, len(words) >= 3 and not about_the_chat)
    substantive = label not in NO_NEED and not (label == "service_complaint" and about_the_chat)
    return Reading(line, label, confidence, substantive)


def substantive_lines(texts: list[str]) -> list[Reading]:
    """The customer's lines that describe the problem, oldest first, each once."""
    seen: set[str] = set()
    found = []
    for text in texts[-LINES_READ:]:
        line = _one_line(text)
        if line.lower() in seen:
            continue
        seen.add(line.lower())
        reading = read_line(line)
        if reading.substantive:
            found.append(reading)
    return found


def customer_texts(transcript: list[dict]) -> list[str]:
    return [line.get("text") or "" for line in transcript or [] if line.get("sender") == "customer"]


def reason_for(given: str, transcript: list[dict]) -> tuple[str, str, float | None]:
    """The handoff's reason and its need: the given reason if it names the
    problem, else the customer's substantive lines.

    ``given`` is what the assistant sent (the request itself, or the problem
    the customer described); it is kept when nothing better was said. Each
    text is classified once.
    """
    from ..needs import classify_or_other

    reading = read_line(given)
    if reading.substantive:
        return given, reading.label, reading.confidence
    lines = substantive_lines(customer_texts(transcript))
    if not lines:
        if reading.confidence is None and reading.label == "other":
            return given, *classify_or_other(given)
        return given, reading.label, reading.confidence
    reason = _shorten(" · ".join(line.text for line in lines[-REASON_LINES:]), REASON_LENGTH)
    if len(lines) == 1:
        return reason, lines[0].label, lines[0].confidence
    return reason, *classify_or_other(reason)


@dataclass(frozen=True)
class TicketDraft:
    subject: str
    description: str


def ticket_draft(reason: str, customer_lines: list[str]) -> TicketDraft:
    """A ticket prefilled from what the customer said: the subject is the problem
    in one line, the description every substantive line (before and after the
    handoff), oldest first."""
    lines = substantive_lines(customer_lines)
    if not lines:
        return TicketDraft(_shorten(_one_line(reason), SUBJECT_LENGTH), reason)
    # The line the classifier is surest about names the problem best.
    best = max(lines, key=lambda reading: reading.confidence or 0.0)
    description = "\n".join(reading.text for reading in lines)
    return TicketDraft(_shorten(best.text, SUBJECT_LENGTH), description)
