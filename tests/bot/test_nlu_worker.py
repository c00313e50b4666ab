"""bot.patches.nlu_worker: messages parsed in a second process as the server parses them, and the server's own parse whenever the worker cannot."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage

from bot.patches import nlu_worker
from bot.channels import RedisSocketIOInput

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "helpdesk.tar.gz"
TEXTS = [
    "hi",
    "my new blender arrived cracked and leaks, order NW-482913",
    "what's happening with TCK-000123?",
    "how long does shipping take to Canada?",
    "can I pay with PayPal",
    "I want to talk to a real person",
    "<script>alert(1)</script>' OR 1=1 --",
    "🙂🙂🙂",
    "asdkjh qwpoe zzzz",
]


def wait_until(condition, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def agent():
    return Agent.load(str(MODEL))


@pytest.fixture
def worker(agent, monkeypatch):
    monkeypatch.setenv("BOT_NLU_WORKER", "1")
    monkeypatch.setattr(nlu_worker, "BUSY_AT", 0)  # as if other messages were in hand
    started = nlu_worker.start(agent.processor)
    wait_until(lambda: started.ready or started.failed)
    assert started.ready, "the worker did not load the model"
    yield started
    nlu_worker.stop()


def local_parse(agent, text: str) -> dict:
    return asyncio.run(nlu_worker._original_parse_message(agent.processor, UserMessage(text=text, message_id="m1")))


def parse(agent, text: str) -> dict:
    return asyncio.run(agent.processor.parse_message(UserMessage(text=text, message_id="m1")))


def test_the_worker_parses_every_message_as_the_server_does(agent, worker, monkeypatch):
    answered = []
    parse_in_worker = nlu_worker.NLUWorker.parse

    async def counted(self, message):
        result = await parse_in_worker(self, message)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(nlu_worker.NLUWorker, "parse", counted)

    for text in TEXTS:
        assert parse(agent, text) == local_parse(agent, text), text
    assert answered == [True] * len(TEXTS)
    # The FAQ's full retrieval intent is filled in as in the server's own parse.
    assert parse(agent, "how long does shipping take to Canada?")["intent"]["full_retrieval_intent_name"].startswith("faq/")


def test_a_worker_that_died_is_not_waited_for_and_is_replaced(agent, worker, monkeypatch, caplog):
    os.kill(worker.pid(), signal.SIGKILL)
    wait_until(lambda: not alive(worker.pid()), 30)

    with caplog.at_level(logging.WARNING, logger="bot.patches.nlu_worker"):
        assert parse(agent, "hi") == local_parse(agent, "hi")
    assert worker.failed and "the worker process died" in caplog.text

    # Not started again at once (a crashing worker would be started in a loop) ...
    assert parse(agent, "hi")["intent"]["name"] == "greet"
    assert nlu_worker.current() is worker
    # ... but after the delay.
    monkeypatch.setattr(nlu_worker, "RESTART_DELAY", 0)
    assert parse(agent, "hi")["intent"]["name"] == "greet"
    replacement = nlu_worker.current()
    assert replacement is not worker
    wait_until(lambda: replacement.ready or replacement.failed)
    assert replacement.ready and parse(agent, TEXTS[1]) == local_parse(agent, TEXTS[1])
    assert nlu_worker._failures_in_a_row == 1  # the one that died had been working: no longer delay


def test_a_parse_that_takes_too_long_is_done_by_the_server(agent, worker, caplog):
    worker.timeout = 1e-6
    pid = worker.pid()

    with caplog.at_level(logging.WARNING, logger="bot.patches.nlu_worker"):
        assert parse(agent, TEXTS[1]) == local_parse(agent, TEXTS[1])

    assert worker.failed and "no answer in" in caplog.text
    wait_until(lambda: not alive(pid), 30)  # a stuck worker is ended, not left queueing


def test_a_worker_with_another_model_than_the_servers_is_not_used(agent, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.patches.nlu_worker"):
        other = nlu_worker.NLUWorker(MODEL, model_id="not-this-model")
        try:
            wait_until(lambda: other.ready or other.failed)
            assert other.failed and not other.ready
            assert asyncio.run(other.parse(UserMessage(text="hi"))) is None
        finally:
            other.stop()
    assert "not the server's not-this-model" in caplog.text


def test_a_replaced_model_gets_a_worker_of_its_own(agent, worker, monkeypatch):
    old_pid = worker.pid()
    monkeypatch.setattr(agent.processor.model_metadata, "model_id", "a-newer-model")
    try:
        assert parse(agent, "hi")["intent"]["name"] == "greet"  # by the server meanwhile
        assert nlu_worker.current() is not worker and nlu_worker.current().model_id == "a-newer-model"
        wait_until(lambda: not alive(old_pid), 30)  # the old model's worker is ended
    finally:
        nlu_worker.stop()


def test_a_message_on_an_idle_server_is_parsed_by_the_server(agent, worker, monkeypatch):
    monkeypatch.setattr(nlu_worker, "BUSY_AT", 2)
    asked = []
    monkeypatch.setattr(nlu_worker.NLUWorker, "parse", lambda self, message: asked.append(message))

    def in_hand(count: int) -> bool:
        nlu_worker._handling += count
        try:
            return nlu_worker.busy()
        finally:
            nlu_worker._handling -= count

    assert parse(agent, "hi")["intent"]["name"] == "greet"
    assert asked == []
    assert (in_hand(1), in_hand(2)) == (False, True)


def test_messages_in_hand_are_counted_also_when_handling_fails(agent, monkeypatch):
    seen = []

    async def failing(self, message):
        seen.append(nlu_worker._handling)
        raise RuntimeError("the tracker store is down")

    monkeypatch.setattr(nlu_worker, "_original_handle_message", failing)
    with pytest.raises(RuntimeError):
        asyncio.run(agent.processor.handle_message(UserMessage(text="hi")))
    assert seen == [1] and nlu_worker._handling == 0


def test_switched_off_the_server_parses_everything(agent, monkeypatch):
    monkeypatch.setenv("BOT_NLU_WORKER", "0")

    assert nlu_worker.start(agent.processor) is None
    assert nlu_worker.current() is None
    assert parse(agent, "hi") == local_parse(agent, "hi")


def test_the_worker_ends_when_the_server_is_killed(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from rasa.core.agent import Agent
        from bot.patches import nlu_worker

        if __name__ == "__main__":
            worker = nlu_worker.start(Agent.load({str(MODEL)!r}).processor)
            while not (worker.ready or worker.failed):
                time.sleep(0.2)
            print(worker.pid(), flush=True)
            time.sleep(600)
    """))
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env={**os.environ, "BOT_NLU_WORKER": "1"})
    try:
        pid = int(server.stdout.readline())
        assert alive(pid)
        server.kill()
        server.wait(timeout=30)
        wait_until(lambda: not alive(pid), 30)
    finally:
        server.kill()


def test_the_channel_starts_and_stops_the_worker_with_the_server():
    channel = RedisSocketIOInput.from_credentials({"session_persistence": True})

    async def on_new_message(message):  # pragma: no cover - never called
        return None

    listeners = [(entry.event, entry.listener) for entry in channel.blueprint(on_new_message)._future_listeners]
    assert ("after_server_start", nlu_worker.after_server_start) in listeners
    assert ("after_server_stop", nlu_worker.after_server_stop) in listeners


def test_workers_that_fail_before_they_are_ready_are_started_less_and_less_often(monkeypatch):
    monkeypatch.setattr(nlu_worker, "_failures_in_a_row", 0)
    delays = []
    for _ in range(8):
        delays.append(nlu_worker.restart_delay())
        nlu_worker._failures_in_a_row += 1

    assert delays == [30, 30, 60, 120, 240, 480, 600, 600]
