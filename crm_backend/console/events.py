"""/console/events: Server-Sent Events that keep the console live.

Every worker process may be asked, and customers' messages are written by
another process (the event-broker follower), so a stream watches the
database rather than an in-process signal: every CONSOLE_SSE_POLL_SECONDS it
compares a small signature of the queue and reads the watched handoff's new
messages, each read in its own short transaction (no connection is held
between polls). Events:

- ``queue``: the queue list as HTML, with counts, whenever it changes (and
  once at the start);
- ``message`` (``id:`` the message id, so a reconnecting browser resumes
  with Last-Event-ID): a new message of the watched handoff, as HTML;
- ``handoff``: the watched handoff's state whenever it changes (claimed,
  resolved, need corrected, ticket linked).

A comment line every CONSOLE_SSE_HEARTBEAT_SECONDS keeps proxies from
closing an idle stream and lets the server notice a browser that left. The
server ends a stream after CONSOLE_SSE_MAX_SECONDS, and at most
CONSOLE_SSE_MAX_STREAMS run per worker process, so streams never starve the
worker's threads of ordinary requests; the browser reconnects by itself.
"""

import json
import threading
import time

from flask import Flask, Response, current_app, g, render_template, request, stream_with_context
from sqlalchemy import select

from ..agents import sessions as agent_sessions
from ..db import get_session
from ..handoffs import availability
from ..models import AgentSession, Handoff, HandoffMessage
from ..problems import problem
from . import queries
from .views import bp

RECONNECT_MILLISECONDS = 2000


def init_app(app: Flask) -> None:
    app.extensions["console_sse_slots"] = threading.BoundedSemaphore(int(app.config["CONSOLE_SSE_MAX_STREAMS"]))


def event(name: str, data: dict, event_id: int | None = None) -> str:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # json.dumps escapes line breaks, so the data is one line.
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def queue_event(session, agent_id: int, current_id: int | None) -> str:
    handoffs = queries.active_handoffs(session)
    html = render_template(
        "console/_queue.html",
        handoffs=handoffs,
        previews=queries.last_customer_lines(session, handoffs),
        current_id=current_id,
    )
    return event(
        "queue",
        {
            "html": html,
            "total": len(handoffs),
            "queued": sum(h.status == "queued" for h in handoffs),
            "mine": sum(h.agent_id == agent_id for h in handoffs),
        },
    )


def message_event(message: HandoffMessage) -> str:
    html = render_template("console/_message.html", line=queries.message_line(message))
    return event("message", {"id": message.id, "sender": message.sender, "html": html}, event_id=message.id)


class _Slot:
    """Wraps a stream so that its slot is given back exactly once, however it ends."""

    def __init__(self, stream, slots: threading.BoundedSemaphore):
        self._stream, self._slots, self._held = stream, slots, True

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._stream)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            if self._held:
                self._held = False
                self._slots.release()


def _stream(app: Flask, agent_id: int, handoff_id: int | None, after_id: int, session_id: int | None = None):
    config = app.config
    poll = float(config["CONSOLE_SSE_POLL_SECONDS"])
    heartbeat = float(config["CONSOLE_SSE_HEARTBEAT_SECONDS"])
    lifetime = float(config["CONSOLE_SSE_MAX_SECONDS"])
    sessionmaker = app.extensions["crm_db"].sessionmaker
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
    started = last_write = time.monotonic()
    queue_seen = handoff_seen = None
    while True:
        chunks = []
        # A console with its live stream open keeps the agent online.
        availability.mark_seen_soon(sessionmaker, agent_id)
        with sessionmaker() as session:
            if session_id is not None and not agent_sessions.is_active(session.get(AgentSession, session_id)):
                return  # signed out (here or everywhere): the stream ends with the session
            signature = queries.queue_signature(session)
            if signature != queue_seen:
                queue_seen = signature
                chunks.append(queue_event(session, agent_id, handoff_id))
            handoff = session.get(Handoff, handoff_id) if handoff_id is not None else None
            if handoff is not None:
                new_messages = session.scalars(
                    select(HandoffMessage)
                    .where(HandoffMessage.handoff_id == handoff.id, HandoffMessage.id > after_id)
                    .order_by(HandoffMessage.id)
                ).all()
                for message in new_messages:
                    chunks.append(message_event(message))
                    after_id = message.id
                state = queries.handoff_state(handoff, agent_id)
                if state != handoff_seen:
                    handoff_seen = state
                    chunks.append(event("handoff", state))
        now = time.monotonic()
        if chunks:
            yield "".join(chunks)
            last_write = now
        elif now - last_write >= heartbeat:
            yield ": keep-alive\n\n"
            last_write = now
        if now - started >= lifetime:
            return
        time.sleep(poll)


def _int_or_zero(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


@bp.get("/events")
def events():
    slots: threading.BoundedSemaphore = current_app.extensions["console_sse_slots"]
    if not slots.acquire(blocking=False):
        return problem(503, "Too many live connections to this server; the console retries shortly.", {"Retry-After": "5"})
    handoff_id = request.args.get("handoff", type=int)
    # A reconnecting EventSource sends the id of the last message it got.
    after_id = max(_int_or_zero(request.args.get("after")), _int_or_zero(request.headers.get("Last-Event-ID")))
    agent_id = g.console_agent.id
    # Nothing of this request's session is needed while streaming: give its
    # connection back now rather than in minutes.
    get_session().close()
    session_id = g.get("console_session_id")
    stream = stream_with_context(_stream(current_app._get_current_object(), agent_id, handoff_id, after_id, session_id))
    return Response(
        _Slot(stream, slots),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
