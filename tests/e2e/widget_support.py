"""Helpers for the chat widget's browser tests (the browser and the widget's
elements are harness/browser.py's): Rasa's tracker, a TCP proxy that can
cut the widget off from Rasa the way a Rasa restart does, a host page of
another origin, and a Rasa server of a test's own that it can really stop
and start again."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from harness import REPO
from harness.ports import free_port

AXE = REPO / "widget" / "node_modules" / "axe-core" / "axe.min.js"
BUNDLE = REPO / "crm_backend" / "pages" / "static" / "widget.js"


def tracker(stack, session_id: str) -> dict:
    """Rasa's tracker of a conversation; ``stack`` is the Stack or an OwnRasa
    (anything with ``rasa_url`` and ``rasa_token``)."""
    response = requests.get(
        f"{stack.rasa_url}/conversations/{session_id}/tracker",
        params={"token": stack.rasa_token},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def user_texts(stack, session_id: str) -> list[str]:
    return [e["text"] for e in tracker(stack, session_id)["events"] if e.get("event") == "user"]


def push_bot_event(stack, session_id: str, event: dict) -> None:
    """Appends a bot event through Rasa's HTTP API and pushes it to the
    conversation's socket.io room, as the CRM does with agents' replies."""
    response = requests.post(
        f"{stack.rasa_url}/conversations/{session_id}/tracker/events",
        params={"output_channel": "socketio", "execute_side_effects": "true", "token": stack.rasa_token},
        json=event,
        timeout=10,
    )
    response.raise_for_status()


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to a target port. `cut()` drops every open
    connection and refuses new ones (as a stopped Rasa does) until `restore()`.
    `mute()` throws away what the server sends on the open connections (a
    reply lost on a connection about to break); cut them afterwards."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepting = True
        self.muted = False
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.accepting:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.connections += [client, upstream]
            for source, sink, mutable in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(source, sink, mutable), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, mutable: bool) -> None:
        try:
            while data := source.recv(65536):
                if not (mutable and self.muted):
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.accepting = False
        with self.lock:
            connections, self.connections = self.connections, []
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    def mute(self) -> None:
        self.muted = True

    def restore(self) -> None:
        self.muted = False
        self.accepting = True

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


class HostPage:
    """Serves one HTML page from its own origin on 127.0.0.1: a third-party
    site that embeds the widget with its script tag."""

    def __init__(self, html: str):
        body = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition, timeout: float = 30, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")


class OwnRasa:
    """A `rasa run` of a test's own, with the `rasa:` line of the Procfile, on
    a free port, beside the stack's (whose Rasa honcho supervises: if that one
    exits honcho stops the whole stack). It uses the stack's action server,
    and a tracker store and event broker in ``state_dir``, so a restart keeps
    the conversations as the stack's Rasa would. ``stop()`` is SIGTERM and a
    wait, as honcho does it; ``start()`` again brings it back on the same port."""

    def __init__(self, stack, state_dir: Path, port: int | None = None):
        self.port = port or free_port()
        self.rasa_url = f"http://127.0.0.1:{self.port}"
        self.rasa_token = secrets.token_urlsafe(32)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.state_dir / "rasa.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("RASA_TOKEN", "DATABASE_URL")},
            "ACTIONS_PORT": str(stack.actions_port),
            # The stack's secrets: the action server's token, and the keys
            # the channels check identities and session tokens with.
            "ACTIONS_TOKEN": stack.actions_token,
            "CHAT_IDENTITY_SECRET": stack.identity_secret,
            "REST_CHANNEL_TOKEN": stack.rest_channel_token,
            "RASA_TRACKER_DB": str(self.state_dir / "tracker.db"),
            "RASA_EVENTS_DB": str(self.state_dir / "rasa_events.db"),
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
            "SANIC_KEEP_ALIVE_TIMEOUT": "75",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        return [
            str(REPO / ".venv/bot/bin/rasa"), "run",
            "--interface", "127.0.0.1", "--port", str(self.port),
            "--model", "models/helpdesk.tar.gz",
            "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
            "--enable-api", f"--auth-token={self.rasa_token}",
            "--cors", "*",
        ]  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ready(self) -> bool:
        try:
            response = requests.get(f"{self.rasa_url}/status", params={"token": self.rasa_token}, timeout=2)
        except requests.RequestException:
            return False
        return response.status_code == 200 and bool(response.json().get("model_file"))

    def start(self, timeout: float = 120) -> "OwnRasa":
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(), cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rasa exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if self.ready():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"rasa was not ready in {timeout:.0f} s:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then wait for it to exit (SIGKILL to its group after ``timeout``)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
        # Its own session: nothing it started outlives it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
