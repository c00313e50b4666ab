"""The delivery worker: `crm webhooks worker`, one process under the supervisor.

The main thread is the only one that talks to the database: it claims due
deliveries, hands them to a small pool of threads that only send HTTP
requests, and records the finished attempts in batches (one commit for all
that finished meanwhile). Stop it with SIGTERM or SIGINT: it claims nothing
more, waits a few seconds for sends in flight, records them and exits 0. A
send cut off by a harder stop is made again once its lease expires
(at-least-once; receivers de-duplicate by webhook-id).

Nothing a delivery or a receiver's answer holds may end the process (honcho
would stop everything): a delivery that cannot be sent fails and is set
aside (delivery.py), an attempt the database refuses to store is set aside
without losing the others finished with it, and an unexpected error costs a
pause, not the worker.
"""

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from .. import dead_letters
from . import delivery, ssrf
from .delivery import Claimed, Policy
from .transport import Outcome

log = logging.getLogger("crm_backend.webhooks.worker")

# honcho sends SIGKILL 5 s after SIGTERM; finish well before that.
STOP_GRACE_SECONDS = 3.0
PRUNE_EVERY_SECONDS = 3600.0


def policy_from_config(config) -> Policy:
    return Policy(
        timeout=float(config["WEBHOOK_TIMEOUT"]),
        first_retry_seconds=float(config["WEBHOOK_FIRST_RETRY_SECONDS"]),
        max_retry_seconds=float(config["WEBHOOK_MAX_RETRY_SECONDS"]),
        retry_window_seconds=float(config["WEBHOOK_RETRY_HOURS"]) * 3600,
        failing_after=int(config["WEBHOOK_FAILING_AFTER"]),
        allow_private=bool(config["WEBHOOK_ALLOW_PRIVATE"]),
    )


class Worker:
    """Delivers for one app (database). ``clock`` drives scheduling and is
    replaceable in tests; signatures always carry the real time, which is
    what receivers compare them with."""

    def __init__(
        self,
        app: Flask,
        *,
        concurrency: int = 4,
        poll_interval: float = 0.25,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        resolver: ssrf.Resolver = ssrf.system_resolver,
        policy: Policy | None = None,
    ):
        self.app = app
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.clock = clock
        self.rng = rng or random.Random()
        self.resolver = resolver
        self.policy = policy or policy_from_config(app.config)
        self.sessions = app.extensions["crm_db"].sessionmaker
        self.box = app.extensions["crm_secret_box"]
        self.retention = timedelta(days=float(app.config["WEBHOOK_RETENTION_DAYS"]))
        self._finished: queue.SimpleQueue[tuple[Claimed, Outcome, datetime]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._last_prune = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def send(self, claimed: Claimed) -> Outcome:
        try:
            return delivery.send(claimed, signed_at=int(time.time()), policy=self.policy, resolver=self.resolver)
        except Exception as error:  # a bug must cost one attempt, not the worker
            log.exception("sending delivery %s failed unexpectedly", claimed.delivery_id)
            return Outcome(None, 0.0, f"internal error: {type(error).__name__}")

    def claim(self, limit: int) -> list[Claimed]:
        with self.sessions() as session:
            return delivery.claim(session, self.box, now=self.now(), limit=limit, policy=self.policy, rng=self.rng)

    def _store(self, finished: list[tuple[Claimed, Outcome, datetime]]) -> list[str | None]:
        with self.sessions() as session:
            statuses = [
                delivery.record(session, claimed, outcome, now=at, policy=self.policy, rng=self.rng)
                for claimed, outcome, at in finished
            ]
            session.commit()
        return statuses

    def _store_each(self, finished: list[tuple[Claimed, Outcome, datetime]]) -> list[str | None]:
        """Store attempts one at a time after the database refused them together.

        An attempt it refuses alone is set aside; its delivery is sent again
        when the lease runs out.
        """
        statuses: list[str | None] = []
        for claimed, outcome, at in finished:
            try:
                statuses.extend(self._store([(claimed, outcome, at)]))
            except Exception as error:  # noqa: BLE001
                statuses.append(None)
                if not dead_letters.is_transient(error):
                    with self.sessions() as session:
                        dead_letters.set_aside(
                            session, source="webhooks", position=f"delivery {claimed.delivery_id}", error=error, raw=outcome.response_body
                        )
        return statuses

    def record(self, finished: list[tuple[Claimed, Outcome, datetime]]) -> list[str | None]:
        """Store finished attempts in one transaction; retried if the database is busy.

        If it cannot be stored at all, the leases run out and the deliveries
        are sent again.
        """
        for pause in (0.1, 0.5, 2.0, None):
            try:
                statuses = self._store(finished)
                break
            except Exception as error:  # noqa: BLE001  (never the worker's end)
                if not dead_letters.is_transient(error):
                    statuses = self._store_each(finished)
                    break
                if pause is None:
                    log.error("could not record %d attempt(s): %s", len(finished), error.__class__.__name__)
                    return [None] * len(finished)
                time.sleep(pause)
        for (claimed, outcome, _), status in zip(finished, statuses):
            if outcome.succeeded:
                log.info("delivered %s to endpoint %s (%s, %.0f ms)", claimed.message_id, claimed.endpoint_id, outcome.status_code, outcome.duration_ms)
            else:
                log.warning("delivery %s of %s to endpoint %s: %s; now %s", claimed.delivery_id, claimed.message_id, claimed.endpoint_id, outcome.error, status or "taken over")
        return statuses

    def process(self, claimed: Claimed) -> str | None:
        """Send one claimed delivery and record it, on this thread."""
        outcome = self.send(claimed)
        return self.record([(claimed, outcome, self.now())])[0]

    def run_once(self, limit: int | None = None) -> int:
        """Claim what is due and deliver it on this thread; the number of attempts made."""
        claimed = self.claim(limit or self.concurrency)
        for item in claimed:
            self.process(item)
        return len(claimed)

    def run_until_idle(self, max_rounds: int = 1000) -> int:
        """Deliver until nothing is due (tests and benchmarks)."""
        total = 0
        for _ in range(max_rounds):
            done = self.run_once()
            total += done
            if not done:
                break
        return total

    def _send_in_pool(self, claimed: Claimed) -> None:
        outcome = self.send(claimed)
        self._finished.put((claimed, outcome, self.now()))
        self._wake.set()

    def _record_finished(self) -> int:
        finished = []
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except queue.Empty:
                break
        if finished:
            self.record(finished)
        return len(finished)

    def _prune_if_due(self) -> None:
        if time.monotonic() - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = time.monotonic()
        with self.sessions() as session:
            removed = delivery.prune(session, older_than=self.now() - self.retention)
        if removed:
            log.info("pruned %d finished deliveries older than %s", removed, self.retention)

    def run(self, stop: threading.Event) -> int:
        """Deliver until ``stop`` is set; then wait briefly for sends in flight.

        Returns how many sends were still in flight when it gave up waiting.
        """
        if self.policy.allow_private:
            log.warning(ssrf.PRIVATE_TARGETS_WARNING)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook")
        in_flight = 0
        errors_in_a_row = 0
        try:
            while not stop.is_set():
                self._wake.clear()
                in_flight -= self._record_finished()
                free = self.concurrency - in_flight
                claimed: list[Claimed] = []
                if free > 0:
                    try:
                        self._prune_if_due()
                        claimed = self.claim(free)
                        errors_in_a_row = 0
                    except Exception as error:  # noqa: BLE001
                        # A busy or restarting database, or a bug: wait, never
                        # exit (the supervisor would stop the whole service).
                        errors_in_a_row += 1
                        if isinstance(error, SQLAlchemyError):
                            log.warning("cannot claim deliveries: %s", error.__class__.__name__)
                        else:
                            log.error("cannot claim deliveries: %s", dead_letters.describe(error))
                        stop.wait(min(30.0, self.poll_interval * 2**errors_in_a_row))
                        continue
                for item in claimed:
                    pool.submit(self._send_in_pool, item)
                in_flight += len(claimed)
                if in_flight == self.concurrency:
                    # Every slot is busy: wait for a send to finish (or a stop).
                    self._wake.wait(self.policy.timeout + 10)
                else:
                    # Nothing more is due: poll again later, or as soon as a send finishes.
                    self._wake.wait(self.poll_interval)
        finally:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while in_flight and time.monotonic() < deadline:
                self._wake.wait(0.05)
                self._wake.clear()
                in_flight -= self._record_finished()
            if in_flight:
                log.warning("stopping with %d send(s) in flight; they are made again when their lease expires", in_flight)
            pool.shutdown(wait=False, cancel_futures=True)
        return in_flight

    def stop_signal(self, stop: threading.Event) -> Callable:
        def handle(signum, frame) -> None:
            stop.set()
            self._wake.set()

        return handle
