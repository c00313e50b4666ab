"""Throughput and latency of the CRM API under 1, 10 and 50 concurrent clients.

Measures lookups (GET /api/v1/tickets/{number}, GET /api/v1/customers?email=)
and creations (POST /api/v1/tickets) against a running backend and prints
req/s, p50 and p99 per scenario, then one JSON line with every figure.

Against a backend you started (key needs tickets:* and customers:*; switch
its rate limit off with CRM_RATE_LIMIT_ENABLED=0 or the figures measure 429s):

    .venv/backend/bin/python bench/crm_api.py --url http://127.0.0.1:8000 --key crm_...

Or let it start its own gunicorn on a temporary SQLite database:

    .venv/backend/bin/python bench/crm_api.py --serve [--workers 2]

Each client is a thread with its own HTTP connection (gunicorn's sync
workers close it after every response, so each request is a new TCP
connection, as for most real clients of a sync server). The clients run on
the same machine as the server, so they compete with it for CPU.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "backend" / "bin"


@dataclass
class Result:
    scenario: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        ordered = sorted(self.latencies)
        count = len(ordered)

        def pct(p: float) -> float:
            return ordered[min(count - 1, int(p * count))] * 1000 if count else float("nan")

        return {
            "scenario": self.scenario,
            "clients": self.clients,
            "requests": count,
            "errors": self.errors,
            "req_per_s": round(count / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(pct(0.50), 2),
            "p99_ms": round(pct(0.99), 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if count else float("nan"),
        }


class Client:
    def __init__(self, base_url: str, key: str):
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        payload = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=payload, headers=self.headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive socket; reconnect once.
                self.connection.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def run_scenario(base_url: str, key: str, name: str, make_request, expected: int, clients: int, duration: float) -> Result:
    result = Result(name, clients)
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration
    start_barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        client = Client(base_url, key)
        latencies, errors, n = [], 0, 0
        start_barrier.wait()
        while time.perf_counter() < stop_at:
            method, path, body = make_request(index, n)
            n += 1
            started = time.perf_counter()
            try:
                status, _ = client.request(method, path, body)
            except OSError:
                status = 0
            elapsed = time.perf_counter() - started
            if status == expected:
                latencies.append(elapsed)
            else:
                errors += 1
        with lock:
            result.latencies.extend(latencies)
            result.errors += errors

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    return result


def prepare(base_url: str, key: str, customers: int = 50) -> tuple[list[str], list[str]]:
    """Create the customers and tickets that lookups read; return (numbers, emails)."""
    client = Client(base_url, key)
    run_id = f"{os.getpid()}-{int(time.time())}"
    emails, numbers = [], []
    for n in range(customers):
        email = f"bench-{run_id}-{n}@example.com"
        status, body = client.request(
            "POST",
            "/api/v1/tickets",
            {"customer_email": email, "subject": "Where is my parcel?", "description": f"Order {n} has not arrived."},
        )
        if status != 201:
            raise SystemExit(f"cannot create bench data: HTTP {status} {body[:300]!r}")
        emails.append(email)
        numbers.append(json.loads(body)["number"])
    return numbers, emails


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workers: int, tmp: Path) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'crm.db'}", "CRM_RATE_LIMIT_ENABLED": "0"}
    subprocess.run([BIN / "crm", "init-db"], env=env, check=True, capture_output=True, cwd=REPO)
    created = subprocess.run(
        [BIN / "crm", "create-api-key", "bench", "--scopes", "tickets:*,customers:*"],
        env=env, check=True, capture_output=True, text=True, cwd=REPO,
    )
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [BIN / "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "crm_backend:create_app()"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if Client(base_url, key).request("GET", "/healthz")[0] == 200:
                return server, base_url, key
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start within 90 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CRM_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("CRM_API_KEY"))
    parser.add_argument("--serve", action="store_true", help="start a gunicorn on a temporary database")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers with --serve")
    parser.add_argument("--clients", default="1,10,50", help="comma-separated concurrency levels")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario and level")
    args = parser.parse_args()

    server = None
    tmp = tempfile.TemporaryDirectory(prefix="crm-bench-")
    if args.serve:
        server, args.url, args.key = start_server(args.workers, Path(tmp.name))
    if not args.key:
        parser.error("give --key (or CRM_API_KEY), or use --serve")
    try:
        numbers, emails = prepare(args.url, args.key)
        scenarios = [
            ("GET /tickets/{number}", lambda i, n: ("GET", f"/api/v1/tickets/{numbers[(i + n) % len(numbers)]}", None), 200),
            (
                "GET /customers?email=",
                lambda i, n: ("GET", f"/api/v1/customers?email={urllib.parse.quote(emails[(i + n) % len(emails)])}", None),
                200,
            ),
            (
                "POST /tickets",
                lambda i, n: (
                    "POST",
                    "/api/v1/tickets",
                    {"customer_email": emails[(i + n) % len(emails)], "subject": "Refund please", "description": f"Client {i} request {n}: the kettle leaks."},
                ),
                201,
            ),
        ]
        results = []
        print(f"{'scenario':24} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for name, make_request, expected in scenarios:
            for clients in [int(c) for c in args.clients.split(",")]:
                summary = run_scenario(args.url, args.key, name, make_request, expected, clients, args.duration).summary()
                results.append(summary)
                print(
                    f"{name:24} {clients:>7} {summary['req_per_s']:>9} {summary['p50_ms']:>8} {summary['p99_ms']:>8} {summary['errors']:>7}",
                    flush=True,
                )
        print(json.dumps({"cpus": os.cpu_count(), "workers": args.workers if args.serve else None, "results": results}))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        tmp.cleanup()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
