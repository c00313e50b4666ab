"""Waits until the CRM, the action server and Rasa are healthy, prints where to
find them, then keeps watching and says when one stops answering.

Runs as the `ready` process of the Procfile. If the stack is not healthy
within READY_TIMEOUT seconds it exits non-zero, and honcho then stops the
whole stack rather than leave a half-started service running.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

READY_LINE = "All services are healthy."


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError):
        return 0, b""


def check_crm(base: str) -> str | None:
    """None when healthy, else what is wrong."""
    status, body = _get(f"{base}/readyz")
    if status == 200:
        return None
    return f"CRM /readyz answered {status or 'nothing'} {body[:200].decode(errors='replace')}".strip()


def check_actions(base: str) -> str | None:
    status, _ = _get(f"{base}/health")
    return None if status == 200 else f"action server /health answered {status or 'nothing'}"


def check_rasa(base: str, token: str) -> str | None:
    status, body = _get(f"{base}/status?token={token}")
    if status != 200:
        return f"Rasa /status answered {status or 'nothing'}"
    try:
        model = json.loads(body).get("model_file")
    except ValueError:
        model = None
    return None if model else "Rasa has no model loaded"


def main() -> int:
    host = os.environ.get("BIND_HOST", "127.0.0.1")
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    crm = f"http://127.0.0.1:{os.environ.get('CRM_PORT', '8000')}"
    actions = f"http://127.0.0.1:{os.environ.get('ACTIONS_PORT', '5055')}"
    rasa = f"http://127.0.0.1:{os.environ.get('RASA_PORT', '5005')}"
    token = os.environ.get("RASA_TOKEN", "")
    timeout = float(os.environ.get("READY_TIMEOUT", "300"))
    checks = {
        "crm": lambda: check_crm(crm),
        "actions": lambda: check_actions(actions),
        "rasa": lambda: check_rasa(rasa, token),
    }

    started = time.monotonic()
    problems = {name: "not checked yet" for name in checks}
    while problems:
        for name in list(problems):
            problem = checks[name]()
            if problem is None:
                del problems[name]
                print(f"{name} is healthy after {time.monotonic() - started:.1f} s", flush=True)
            else:
                problems[name] = problem
        if problems and time.monotonic() - started > timeout:
            for name, problem in problems.items():
                print(f"error: {name} did not become healthy in {timeout:.0f} s: {problem}", flush=True)
            return 1
        if problems:
            time.sleep(0.5)

    def url(port_var: str, default: str, path: str) -> str:
        return f"http://{shown_host}:{os.environ.get(port_var, default)}{path}"

    print(
        "\n".join(
            [
                READY_LINE + f" (ready in {time.monotonic() - started:.1f} s)",
                f"  Demo shop + widget  {url('CRM_PORT', '8000', '/')}",
                f"  Agent console       {url('CRM_PORT', '8000', '/console')}"
                + ("  (demo agent: agent@example.com / northwind-demo)" if os.environ.get("SEED_DEMO", "1") == "1" else ""),
                f"  CRM API docs        {url('CRM_PORT', '8000', '/api/docs')}",
                f"  CRM OpenAPI         {url('CRM_PORT', '8000', '/api/v1/openapi.json')}",
                f"  CRM health          {url('CRM_PORT', '8000', '/readyz')}",
                f"  Rasa REST channel   {url('RASA_PORT', '5005', '/webhooks/rest/webhook')}",
                f"  Rasa socket.io      {url('RASA_PORT', '5005', '/socket.io/')}",
                f"  Rasa HTTP API       {url('RASA_PORT', '5005', '/status')}  (token in var/rasa_token)",
                f"  Action server       {url('ACTIONS_PORT', '5055', '/health')}",
                "Try it:",
                f"  curl -s {url('RASA_PORT', '5005', '/webhooks/rest/webhook')} "
                "-H 'Content-Type: application/json' -d '{\"sender\": \"ada@example.com\", \"message\": \"hi\"}'",
                "Press Ctrl-C to stop every process.",
            ]
        ),
        flush=True,
    )

    # Keep watching: honcho stops everything when one process exits, so this
    # one stays up and reports changes instead.
    down: set[str] = set()
    while True:
        time.sleep(5)
        for name, check in checks.items():
            problem = check()
            if problem and name not in down:
                down.add(name)
                print(f"warning: {name} stopped answering: {problem}", flush=True)
            elif not problem and name in down:
                down.discard(name)
                print(f"{name} is healthy again", flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
