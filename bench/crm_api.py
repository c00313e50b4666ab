"""Throughput and latency of the CRM API under 1, 10 and 50 concurrent clients.

Measures lookups (GET /api/v1/tickets/{number}, GET /api/v1/customers?email=)
and creations (POST /api/v1/tickets) against a running backend and prints
req/s, p50 and p99 per scenario, then one JSON line with every figure.

Against a backend you started (key needs tickets:* and customers:*; raise its
rate limit, e.g. CRM_RATE_LIMIT="1000000 per minute", or the figures measure
429s):

    .venv/backend/bin/python -m bench.crm_api --url http://127.0.0.1:8000 --key crm_...

Or let it start its own gunicorn, configured like the Procfile's `crm:` line,
on a temporary SQLite database:

    .venv/backend/bin/python -m bench.crm_api --serve [--workers 2] [--threads 1]

or on PostgreSQL instead of SQLite (a database of its own, created on that
server and dropped afterwards):

    .venv/backend/bin/python -m bench.crm_api --serve --postgres postgresql+psycopg://postgres@127.0.0.1:5432

The load generator is wrk (`make bench-tools` installs Debian's; this script
installs nothing and says so if wrk is missing). A C client with one epoll
thread and one keep-alive connection per simulated client uses a small
fraction of the CPU that a Python client would need for the same rate, so on
a 2-core machine the figures measure the server, not the client. Latency is
wrk's, from writing a request to reading the whole response. Every
simulated client sends its next request as soon as it has the previous
answer (a closed loop), so at N clients the mean latency is N / throughput:
p50 < 5 ms at 50 clients would need about 10,000 req/s. Real clients pause
between requests; `--lookup-rate R` / `--creation-rate R` add paced runs in
which the N clients together offer about R req/s (each waits N/R seconds,
jittered, between requests), which measures the latency at that throughput.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from harness import REPO
from harness.ports import free_port

BIN = REPO / ".venv" / "backend" / "bin"
WRK_MISSING = (
    "wrk is not installed, and this benchmark needs it as its load generator: "
    "install it with `make bench-tools` (Debian's wrk) and run this again."
)
# Rate limiting stays on, as in production, but high enough never to answer 429.
BENCH_RATE_LIMIT = "1000000 per minute"

# wrk runs this Lua: the requests of a file, formatted once and sent in turn,
# then one JSON line with the counts and latency percentiles.
WRK_SCRIPT = r"""
local requests = {}
local counter = 0
think_ms = 0

init = function(args)
  think_ms = tonumber(args[3] or "0")
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  local file = assert(io.open(args[1], "r"))
  local read_headers = {["Authorization"] = "Bearer " .. args[2]}
  local write_headers = {["Authorization"] = "Bearer " .. args[2], ["Content-Type"] = "application/json"}
  for line in file:lines() do
    local method, path, body = line:match("^(%S+) (%S+) ?(.*)$")
    if body == "" then
      requests[#requests + 1] = wrk.format(method, path, read_headers)
    else
      requests[#requests + 1] = wrk.format(method, path, write_headers, body)
    end
  end
  file:close()
end

request = function()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

-- Paced runs: each connection waits about think_ms (0.5-1.5 times, so the
-- clients do not march in step) before its next request.
delay = function()
  if think_ms > 0 then
    return think_ms * (0.5 + math.random())
  end
  return 0
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "WRK_RESULT {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d, \"socket_errors\": %d, " ..
    "\"p50_us\": %d, \"p99_us\": %d, \"mean_us\": %.1f}\n",
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


class Client:
    """A plain keep-alive HTTP client, used only to create the data the lookups read."""

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
                # The server closed the connection after the last response; reconnect once.
                self.connection.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


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


def request_lines(numbers: list[str], emails: list[str]) -> dict[str, list[str]]:
    """Per scenario, the requests wrk cycles through: "METHOD PATH [JSON body]"."""
    creations = []
    for n in range(1000):
        body = {
            "customer_email": emails[n % len(emails)],
            "subject": "Refund please",
            "description": f"Request {n}: the kettle leaks.",
        }
        creations.append(f"POST /api/v1/tickets {json.dumps(body)}")
    return {
        "GET /tickets/{number}": [f"GET /api/v1/tickets/{number}" for number in numbers],
        "GET /customers?email=": [f"GET /api/v1/customers?email={urllib.parse.quote(email)}" for email in emails],
        "POST /tickets": creations,
    }


def run_wrk(base_url: str, key: str, lines: list[str], clients: int, duration: float, tmp: Path,
            think_ms: float = 0.0) -> dict:
    script, requests_file = tmp / "bench.lua", tmp / "requests.txt"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    requests_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    command = [
        "wrk", "--threads", "1", "--connections", str(clients), "--duration", f"{max(1, round(duration))}s",
        "--timeout", "10s", "--script", str(script), base_url, "--", str(requests_file), key, f"{think_ms:.3f}",
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in finished.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            return json.loads(line.removeprefix("WRK_RESULT "))
    raise SystemExit(f"wrk failed (exit {finished.returncode}): {finished.stderr.strip() or finished.stdout.strip()}")


def summarise(name: str, clients: int, raw: dict, offered: float | None = None) -> dict:
    seconds = raw["duration_us"] / 1e6
    errors = raw["status_errors"] + raw["socket_errors"]
    return {
        "scenario": name,
        "clients": clients,
        "offered_req_per_s": offered,
        "requests": raw["requests"],
        "errors": errors,
        "req_per_s": round((raw["requests"] - errors) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "mean_ms": round(raw["mean_us"] / 1000, 2),
    }


class BenchDatabase:
    """A PostgreSQL database of the benchmark's own: created now, dropped at the end."""

    def __init__(self, server_url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.name = f"crm_bench_{os.getpid()}"
        self.url = make_url(server_url).set(database=self.name).render_as_string(hide_password=False)
        self.admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


def start_server(workers: int, threads: int, tmp: Path, database_url: str | None = None) -> tuple[subprocess.Popen, str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url or f"sqlite:///{tmp / 'crm.db'}",
        "CRM_RATE_LIMIT": BENCH_RATE_LIMIT,
        "CRM_RATE_LIMIT_ENABLED": "1",
    }
    subprocess.run([BIN / "crm", "init-db"], env=env, check=True, capture_output=True, cwd=REPO)
    created = subprocess.run(
        [BIN / "crm", "create-api-key", "bench", "--scopes", "tickets:*,customers:*"],
        env=env, check=True, capture_output=True, text=True, cwd=REPO,
    )
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [
            BIN / "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread" if threads > 1 else "sync", "--threads", str(threads),
            "crm_backend:create_app()",
        ],
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
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes with --serve")
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per worker with --serve (8: gthread, as in the Procfile; 1: sync workers)"
    )
    parser.add_argument("--postgres", metavar="SERVER_URL",
                        help="with --serve: run on a new database on this PostgreSQL server instead of SQLite")
    parser.add_argument("--clients", default="1,10,50", help="comma-separated concurrency levels")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario and level (whole seconds)")
    parser.add_argument("--lookup-rate", type=float, default=0.0,
                        help="also run each lookup paced: the clients together offer about this many req/s")
    parser.add_argument("--creation-rate", type=float, default=0.0,
                        help="also run the creations paced at about this many req/s")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        raise SystemExit(WRK_MISSING)
    server = database = None
    tmp = tempfile.TemporaryDirectory(prefix="crm-bench-")
    if args.serve:
        database = BenchDatabase(args.postgres) if args.postgres else None
        server, args.url, args.key = start_server(args.workers, args.threads, Path(tmp.name), database and database.url)
    if not args.key:
        parser.error("give --key (or CRM_API_KEY), or use --serve")
    try:
        numbers, emails = prepare(args.url, args.key)
        # Creations classify their text only if the server has a need model.
        readiness = json.loads(Client(args.url, args.key).request("GET", "/readyz")[1])
        classifier = readiness.get("checks", {}).get("classifier", "unknown")
        results = []
        print(f"{'scenario':30} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        levels = [int(c) for c in args.clients.split(",")]
        for name, lines in request_lines(numbers, emails).items():
            rate = args.creation_rate if name.startswith("POST") else args.lookup_rate
            # Closed loop first (each client at full speed), then paced at the given rate.
            runs = [(clients, None) for clients in levels] + [(clients, rate) for clients in levels if rate]
            for clients, offered in runs:
                think_ms = clients / offered * 1000 if offered else 0.0
                raw = run_wrk(args.url, args.key, lines, clients, args.duration, Path(tmp.name), think_ms)
                summary = summarise(name, clients, raw, offered)
                results.append(summary)
                label = f"{name} @{offered:g}/s" if offered else name
                print(
                    f"{label:30} {clients:>7} {summary['req_per_s']:>9} {summary['p50_ms']:>8} "
                    f"{summary['p99_ms']:>8} {summary['errors']:>7}",
                    flush=True,
                )
        server_setup = {"workers": args.workers, "threads": args.threads,
                        "database": "postgresql" if database else "sqlite"} if args.serve else None
        print(
            json.dumps(
                {
                    "cpus": os.cpu_count(),
                    "client": "wrk",
                    "server": server_setup,
                    "classifier": classifier,
                    "results": results,
                }
            )
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if database is not None:
            database.drop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
