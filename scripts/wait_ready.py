"""Waits until the CRM, the action server and Rasa are healthy, prints where to
find them, then keeps watching and says when one stops answering.

Runs as the `ready` process of the Procfile. If the stack is not healthy
within READY_TIMEOUT seconds it exits non-zero, and honcho then stops the
whole stack rather than leave a half-started service running.

Where to look comes from the ports (CRM_PORT, ACTIONS_PORT, RASA_PORT), or,
for several instances (Procfile.scaled), from comma-separated URLs in
READY_CRM_URLS, READY_ACTIONS_URLS and READY_RASA_URLS; with READY_LB_URL the
load balancer in front is checked too and the URLs printed are its.
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


def check_load_balancer(base: str) -> str | None:
    """The CRM and a Rasa instance (its REST channel), both through the load balancer."""
    problem = check_crm(base)
    if problem:
        return f"through the load balancer: {problem}"
    status, _ = _get(f"{base}/webhooks/rest/")
    return None if status == 200 else f"Rasa's REST channel through the load balancer answered {status or 'nothing'}"


def _urls(setting: str, port_var: str, default_port: str) -> list[str]:
    urls = [url.strip().rstrip("/") for url in os.environ.get(setting, "").split(",") if url.strip()]
    return urls or [f"http://127.0.0.1:{os.environ.get(port_var, default_port)}"]


def _named(name: str, urls: list[str], check) -> dict:
    """One check per URL: "rasa", or "rasa http://..." when there are several."""
    if len(urls) == 1:
        return {name: lambda url=urls[0]: check(url)}
    return {f"{name} {url}": (lambda url=url: check(url)) for url in urls}


def main() -> int:
    host = os.environ.get("BIND_HOST", "127.0.0.1")
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    token = os.environ.get("RASA_TOKEN", "")
    timeout = float(os.environ.get("READY_TIMEOUT", "300"))
    load_balancer = os.environ.get("READY_LB_URL", "").rstrip("/")
    checks = {
        **_named("crm", _urls("READY_CRM_URLS", "CRM_PORT", "8000"), check_crm),
        **_named("actions", _urls("READY_ACTIONS_URLS", "ACTIONS_PORT", "5055"), check_actions),
        **_named("rasa", _urls("READY_RASA_URLS", "RASA_PORT", "5005"), lambda url: check_rasa(url, token)),
    }
    if load_balancer:
        checks["load balancer"] = lambda: check_load_balancer(load_balancer)

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

    if load_balancer:
        public = os.environ.get("READY_PUBLIC_URL", "").rstrip("/") or load_balancer
        print(
            "\n".join(
                [
                    READY_LINE + f" (ready in {time.monotonic() - started:.1f} s)",
                    f"  Demo shop + widget  {public}/",
                    f"  Agent console       {public}/console"
                    + ("  (demo agent: agent@example.com / northwind-demo)" if os.environ.get("SEED_DEMO", "1") == "1" else ""),
                    f"  CRM API docs        {public}/api/docs",
                    f"  Rasa REST channel   {public}/webhooks/rest/webhook",
                    f"  Rasa socket.io      {public}/socket.io/",
                    "  Behind the load balancer: " + ", ".join(name for name in checks if name != "load balancer"),
                    "Try it:",
                    f"  curl -s {public}/webhooks/rest/webhook "
                    "-H 'Content-Type: application/json' -d '{\"sender\": \"try-1f3a9c\", \"message\": \"hi\"}'",
                    "Press Ctrl-C to stop every process.",
                ]
            ),
            flush=True,
        )
    else:
        _print_default_urls(url, started)

    _watch(checks)


def _print_default_urls(url, started: float) -> None:
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
                "-H 'Content-Type: application/json' -d '{\"sender\": \"try-1f3a9c\", \"message\": \"hi\"}'",
                "Press Ctrl-C to stop every process.",
            ]
        ),
        flush=True,
    )


def _watch(checks: dict) -> None:
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
