"""The action server answers only whoever holds ACTIONS_TOKEN (Rasa), and listens on BIND_HOST.

The server runs as `make run` runs it: `python -m actions.server --port PORT`,
in a subprocess on a free port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx
import pytest

from actions.server import token_matches
from harness.ports import free_port

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-actions-token-Zk3"
# One real action call, as Rasa makes it: a greeting from an anonymous visitor.
ACTION_CALL = {
    "next_action": "action_identify_customer",
    "sender_id": "widget-1",
    "version": "3.6.2",
    "domain": {},
    "tracker": {
        "sender_id": "widget-1",
        "slots": {"customer_known": False},
        "latest_message": {"text": "hi", "intent": {"name": "greet"}, "entities": []},
        "events": [{"event": "user", "text": "hi", "parse_data": {}, "metadata": {}}],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    },
}


def reachable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


class ActionServer:
    def __init__(self, env: dict[str, Optional[str]]):
        self.port = free_port()
        self.host = env.get("BIND_HOST") or "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if k not in ("ACTIONS_TOKEN", "ACTIONS_ALLOW_NO_TOKEN", "BIND_HOST")}
        full_env.update({k: v for k, v in env.items() if v is not None})
        # Nothing to reach: the greeting of an anonymous visitor never calls the CRM.
        full_env["CRM_URL"] = "http://127.0.0.1:9"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "actions.server", "--port", str(self.port)],
            cwd=REPO,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: float = 60) -> "ActionServer":
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the action server exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the action server did not answer in {seconds:.0f} s: {self.output()}")

    def output(self) -> str:
        if self.process.poll() is None:
            return ""
        return self.process.stdout.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


@pytest.fixture(scope="module")
def server():
    started = ActionServer({"ACTIONS_TOKEN": TOKEN, "SANIC_KEEP_ALIVE_TIMEOUT": "75"}).wait_ready()
    yield started
    started.stop()


def test_a_call_without_the_token_is_refused(server):
    reply = httpx.post(f"{server.url}/webhook", json=ACTION_CALL, timeout=10)

    assert reply.status_code == 401
    assert reply.json()["error"] == "unauthorized"
    assert "events" not in reply.json()


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", TOKEN, f"Basic {TOKEN}"],
    ids=["longer", "shorter", "empty", "no scheme", "basic"],
)
def test_a_call_with_a_wrong_token_is_refused(server, authorization):
    reply = httpx.post(f"{server.url}/webhook", json=ACTION_CALL, headers={"Authorization": authorization}, timeout=10)

    assert reply.status_code == 401


def test_the_list_of_actions_is_not_open_either(server):
    assert httpx.get(f"{server.url}/actions", timeout=10).status_code == 401


def test_a_call_with_the_token_runs_the_action(server):
    reply = httpx.post(f"{server.url}/webhook", json=ACTION_CALL, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    assert reply.status_code == 200
    assert reply.json() == {"events": [], "responses": []}


def test_health_stays_open_for_health_checks(server):
    reply = httpx.get(f"{server.url}/health", timeout=10)

    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_it_listens_on_127_0_0_1_unless_told_otherwise(server):
    assert reachable("127.0.0.1", server.port)
    assert not reachable("127.0.0.2", server.port)


def test_it_listens_on_bind_host():
    other = ActionServer({"ACTIONS_TOKEN": TOKEN, "BIND_HOST": "127.0.0.2"})
    try:
        other.wait_ready()
        assert reachable("127.0.0.2", other.port)
        assert not reachable("127.0.0.1", other.port)
    finally:
        other.stop()


def test_without_a_token_it_refuses_to_start_with_one_clear_line():
    unset = ActionServer({})
    try:
        assert unset.process.wait(timeout=30) != 0
        lines = unset.output().strip().splitlines()
    finally:
        unset.stop()

    assert len(lines) == 1
    assert "ACTIONS_TOKEN is not set" in lines[0]


def test_rasa_sends_the_token_that_endpoints_yml_names(server, monkeypatch):
    """Rasa's own action-endpoint client (EndpointConfig, what RemoteAction calls), configured from endpoints.yml."""
    from rasa.utils.endpoints import read_endpoint_config

    for name, value in {
        "ACTIONS_PORT": str(server.port),
        "ACTIONS_TOKEN": TOKEN,
        "RASA_TRACKER_DB": "unused.db",
        "RASA_EVENTS_DB": "unused.db",
    }.items():
        monkeypatch.setenv(name, value)
    endpoint = read_endpoint_config(str(REPO / "endpoints.yml"), "action_endpoint")

    async def call():
        return await endpoint.request(json=ACTION_CALL, method="post", timeout=10)

    import asyncio

    assert asyncio.run(call()) == {"events": [], "responses": []}


def test_sanic_keeps_idle_connections_as_long_as_told(monkeypatch):
    from sanic import Sanic

    from actions.server import create_app

    monkeypatch.setattr(Sanic, "test_mode", True)  # more than one app named rasa_sdk in this process
    monkeypatch.setenv("SANIC_KEEP_ALIVE_TIMEOUT", "75")

    assert create_app(TOKEN).config.KEEP_ALIVE_TIMEOUT == 75


def test_the_token_is_compared_whole():
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"bearer  {TOKEN} ", TOKEN)
    assert not token_matches(f"Bearer {TOKEN[:5]}", TOKEN)
    assert not token_matches("", TOKEN)
