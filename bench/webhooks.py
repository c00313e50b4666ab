"""Outbound webhooks: outbox throughput and change-to-delivery latency.

    .venv/backend/bin/python -m bench.webhooks [--events 2000] [--concurrency 4]
                                               [--rate 20] [--duration 15]

On a temporary SQLite database (the embedded default) it registers one
endpoint pointing at a local receiver (a threaded http.server in this
process that answers 204 at once) and runs the real delivery worker,
`crm webhooks worker`, as its own process, the way the Procfile does.

1. Throughput: ``--events`` ticket.created events are written first (a
   backlog, as after an outage); then the worker starts and the receiver
   times the first to the last arrival: delivered events per second.
2. Latency: with the worker idle and polling, tickets are created at
   ``--rate`` per second for ``--duration`` seconds, each in its own
   committed transaction through the same service function the API uses;
   change-to-delivery is the receiver's arrival time minus the commit's
   return. p50 / p95 / max are printed.

Prints one JSON line at the end. Nothing is installed; nothing outside a
temporary directory (removed at the end) is touched.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import REPO
from harness.stats import percentile

BIN = REPO / ".venv" / "backend" / "bin"


class Receiver:
    def __init__(self):
        self.arrivals: dict[int, float] = {}  # ticket id -> first arrival
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrived = time.time()
                ticket_id = json.loads(body)["data"]["id"]
                with receiver.lock:
                    receiver.count += 1
                    receiver.arrivals.setdefault(ticket_id, arrived)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/bench"

    def wait_for(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrivals) >= total:
                    return True
            time.sleep(0.01)
        return False


def start_worker(env: dict, concurrency: int, poll_interval: float) -> subprocess.Popen:
    worker = subprocess.Popen(
        [str(BIN / "crm"), "webhooks", "worker", "--concurrency", str(concurrency), "--poll-interval", str(poll_interval)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = worker.stdout.readline()
    if not line.startswith("Webhook worker delivering"):
        raise SystemExit(f"the worker did not start: {line!r}")
    return worker


def stop_worker(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="backlog size for the throughput run")
    parser.add_argument("--concurrency", type=int, default=4, help="the worker's --concurrency")
    parser.add_argument("--poll-interval", type=float, default=0.25, help="the worker's --poll-interval (its default)")
    parser.add_argument("--rate", type=float, default=20, help="changes per second in the latency run")
    parser.add_argument("--duration", type=float, default=15, help="seconds of the latency run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'crm.db'}",
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "NEED_MODEL_PATH": str(tmp / "no-model.skops"),
    }
    os.environ.update(env)

    from crm_backend import create_app, migrate
    from crm_backend.db import get_engine, get_session
    from crm_backend.tickets import service as tickets
    from crm_backend.webhooks import service as webhooks

    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "WEBHOOK_ALLOW_PRIVATE": True})
    receiver = Receiver()
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
        session = get_session()
        webhooks.create_endpoint(session, url=receiver.url, events=["ticket.created"])
        session.commit()
        customer_email = "bench@example.com"

        # 1. Throughput from a backlog.
        started = time.perf_counter()
        for n in range(args.events):
            tickets.create_ticket(session, subject=f"Bench {n}", description="x", customer_email=customer_email)
            if n % 100 == 99:
                session.commit()
        session.commit()
        write_seconds = time.perf_counter() - started
        worker = start_worker(env, args.concurrency, args.poll_interval)
        try:
            if not receiver.wait_for(args.events, timeout=600):
                raise SystemExit(f"only {len(receiver.arrivals)} of {args.events} events arrived")
        finally:
            stop_worker(worker)
        times = sorted(receiver.arrivals.values())
        span = times[-1] - times[0]
        throughput = (len(times) - 1) / span if span > 0 else float("inf")
        duplicates = receiver.count - len(receiver.arrivals)
        print(f"throughput: {len(times)} events from a backlog in {span:.2f} s = {throughput:.0f} events/s "
              f"(worker --concurrency {args.concurrency}; {duplicates} duplicates; writing the backlog took {write_seconds:.1f} s)")

        # 2. Change-to-delivery latency at a steady rate.
        receiver.arrivals.clear()
        committed: dict[int, float] = {}
        worker = start_worker(env, args.concurrency, args.poll_interval)
        try:
            interval = 1 / args.rate
            next_at = time.perf_counter()
            end = next_at + args.duration
            while time.perf_counter() < end:
                ticket = tickets.create_ticket(session, subject="Latency", description="x", customer_email=customer_email)
                session.commit()
                committed[ticket.id] = time.time()
                next_at += interval
                time.sleep(max(0.0, next_at - time.perf_counter()))
            receiver.wait_for(len(committed), timeout=60)
        finally:
            stop_worker(worker)
        latencies = [(receiver.arrivals[ticket_id] - at) * 1000 for ticket_id, at in committed.items() if ticket_id in receiver.arrivals]
        missing = len(committed) - len(latencies)
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        print(f"latency: {len(latencies)} changes at {args.rate:g}/s, commit to arrival p50 {p50:.0f} ms, "
              f"p95 {p95:.0f} ms, max {max(latencies):.0f} ms, mean {statistics.mean(latencies):.0f} ms "
              f"(poll interval {args.poll_interval:g} s; {missing} missing)")
        get_engine().dispose()
    shutil.rmtree(tmp, ignore_errors=True)

    print(json.dumps({
        "events": args.events,
        "concurrency": args.concurrency,
        "poll_interval_s": args.poll_interval,
        "throughput_events_per_s": round(throughput, 1),
        "latency_rate_per_s": args.rate,
        "latency_p50_ms": round(p50, 1),
        "latency_p95_ms": round(p95, 1),
        "latency_max_ms": round(max(latencies), 1),
        "missing": missing,
        "duplicates": duplicates,
    }))


if __name__ == "__main__":
    main()
