"""The nightly recompute: when it runs, and that only one runs at a time.

``Schedule`` turns INSIGHTS_NIGHTLY_AT ("03:00" in SUPPORT_TIMEZONE, or
"03:00 UTC") into moments; ``next_run`` decides, from when the last run
finished or failed, whether a run is due now or when the next one is.
``run_exclusive`` runs ``service.refresh_all`` under the lease
``insights.recompute`` (crm_backend/leases.py), which every recompute takes —
the scheduler, `crm insights recompute` and `crm seed-demo` — so two never
run at once, on any number of machines. ``Nightly`` is the long-running
loop of `crm insights nightly` (the Procfile's ``insights`` process).
"""

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time as time_of_day, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from .. import leases
from ..db import utcnow
from . import service

log = logging.getLogger("crm_backend.insights.nightly")

JOB = "insights.recompute"
# The holder renews every LEASE_TTL / 5; a holder that died blocks the
# next recompute for at most LEASE_TTL.
LEASE_TTL = timedelta(minutes=5)
# After a failed (or interrupted) run, try again this much later, until
# the next night's run is nearer.
RETRY_AFTER = timedelta(minutes=15)
# Sleeps are cut into pieces this long, so that a changed clock or a run
# made by another process is noticed.
MAX_SLEEP_SECONDS = 300.0
# While another process holds the lease, look again this often.
HELD_RECHECK_SECONDS = 60.0

_AT = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)(?:\s+(UTC))?\s*$", re.IGNORECASE)


class ScheduleError(service.SettingsError):
    """A time of day that cannot be read; the message names the setting."""


@dataclass(frozen=True)
class Schedule:
    """Once a day at ``at`` local time in ``zone``."""

    at: time_of_day
    zone: tzinfo

    @classmethod
    def parse(cls, text: str, zone_name: str, setting: str = "INSIGHTS_NIGHTLY_AT") -> "Schedule":
        match = _AT.match(text or "")
        if match is None:
            raise ScheduleError(f"{setting} {text!r} is not a time of day such as 03:00 (or 03:00 UTC)")
        hour, minute, utc = match.groups()
        zone = timezone.utc if utc or not zone_name else ZoneInfo(zone_name)
        return cls(time_of_day(int(hour), int(minute)), zone)

    def describe(self) -> str:
        return f"{self.at:%H:%M} {getattr(self.zone, 'key', 'UTC')}"

    def slot_on(self, day: date) -> datetime:
        """That day's run, in UTC. A time the clocks skip (spring forward) runs
        an hour later by the clock; a time they pass twice runs the first time."""
        return datetime.combine(day, self.at, tzinfo=self.zone).astimezone(timezone.utc)

    def _days_around(self, now: datetime) -> list[date]:
        today = now.astimezone(self.zone).date()
        return [today + timedelta(days=offset) for offset in (-2, -1, 0, 1, 2)]

    def latest_slot(self, now: datetime) -> datetime:
        """The latest run time at or before ``now``."""
        return max(slot for slot in map(self.slot_on, self._days_around(now)) if slot <= now)

    def next_slot(self, now: datetime) -> datetime:
        """The first run time after ``now``."""
        return min(slot for slot in map(self.slot_on, self._days_around(now)) if slot > now)


def schedule_from_config(config, at: str | None = None) -> Schedule:
    return Schedule.parse(at if at is not None else config.get("INSIGHTS_NIGHTLY_AT", "03:00"), config.get("SUPPORT_TIMEZONE", "UTC"))


def check_settings(config) -> None:
    """Fail at start, in one sentence, on a nightly time that cannot be read."""
    schedule_from_config(config)


def next_run(schedule: Schedule, now: datetime, last_finished: datetime | None, last_failed: datetime | None = None) -> datetime:
    """When the scheduler should run next: ``now`` if a run is due.

    Due means the latest run time passed without a run finishing after it
    (also on the very first start: the figures have never been computed).
    A run that failed after it is tried again RETRY_AFTER later, or at the
    next run time if that comes first.
    """
    latest = schedule.latest_slot(now)
    if last_finished is not None and last_finished >= latest:
        return schedule.next_slot(now)
    if last_failed is not None and last_failed >= latest and (last_finished is None or last_failed > last_finished):
        return max(now, min(last_failed + RETRY_AFTER, schedule.next_slot(now)))
    return now


@dataclass
class RunResult:
    status: str  # "finished", "held" (another process is recomputing), "failed", "interrupted"
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    holder: str | None = None  # who holds the lease, when "held"
    expires_at: datetime | None = None
    error: str | None = None


class _Heartbeat(threading.Thread):
    """Renews the lease while the run works, on a session of its own."""

    def __init__(self, sessions, holder: str):
        super().__init__(name="insights-lease", daemon=True)
        self.sessions, self.holder = sessions, holder
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(LEASE_TTL.total_seconds() / 5):
            try:
                with self.sessions() as session:
                    if not leases.renew(session, JOB, self.holder, ttl=LEASE_TTL):
                        log.warning("the recompute lease was lost (it ran out); another process may start one")
            except SQLAlchemyError as error:
                log.warning("cannot renew the recompute lease: %s", error.__class__.__name__)


def run_exclusive(
    app: Flask,
    *,
    train: bool = True,
    holder: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> RunResult:
    """``service.refresh_all`` under the lease, or "held" at once if another process has it.

    Needs the app's context (settings). A database error or a bug is recorded
    on the lease (last_failed_at, last_error) and raised again.
    """
    sessions = app.extensions["crm_db"].sessionmaker
    holder = holder or leases.new_holder()
    with sessions() as session:
        if not leases.acquire(session, JOB, holder, ttl=LEASE_TTL, now=clock()):
            current = leases.state(session, JOB)
            return RunResult("held", holder=current.holder, expires_at=current.expires_at)
    heartbeat = _Heartbeat(sessions, holder)
    heartbeat.start()
    started = time.perf_counter()
    try:
        with sessions() as session:
            metrics = service.refresh_all(session, train=train, should_stop=should_stop)
    except BaseException as error:
        heartbeat.done.set()
        with sessions() as session:
            leases.release(session, JOB, holder, error=f"{error.__class__.__name__}: {error}"[:2000], now=clock())
        raise
    heartbeat.done.set()
    seconds = time.perf_counter() - started
    interrupted = metrics.get("interrupted", False)
    with sessions() as session:
        leases.release(session, JOB, holder, error="stopped before every customer was refreshed" if interrupted else None, now=clock())
    return RunResult("interrupted" if interrupted else "finished", metrics, seconds)


def summary(result: RunResult) -> str:
    """One log line of a run."""
    if result.status == "held":
        if result.holder is None or result.expires_at is None:  # it finished in the meantime
            return "another process was recomputing just now"
        return f"another process is recomputing ({result.holder}, lease until {result.expires_at:%H:%M:%S} UTC)"
    metrics = result.metrics
    line = f"{result.status} in {result.seconds:.1f} s: {metrics.get('customers', 0)} customers"
    if metrics.get("auc") is not None:
        line += f", churn ROC AUC {metrics['auc']:.3f}"
    if metrics.get("k") is not None:
        line += f", {metrics['k']} segments (silhouette {metrics['silhouette']:.3f})"
    for problem in metrics.get("problems") or []:
        line += f"; {problem}"
    return line


class Nightly:
    """Runs the recompute once a day until ``stop`` is set.

    ``clock`` and ``wait`` (``stop.wait`` by default) are replaceable, so
    tests drive days of scheduling without sleeping.
    """

    def __init__(
        self,
        app: Flask,
        schedule: Schedule,
        *,
        train: bool = True,
        clock: Callable[[], datetime] = utcnow,
        holder: str | None = None,
    ):
        self.app, self.schedule, self.train, self.clock = app, schedule, train, clock
        self.holder = holder or leases.new_holder()
        self.sessions = app.extensions["crm_db"].sessionmaker
        self._announced: datetime | None = None

    def due_at(self) -> datetime:
        with self.sessions() as session:
            current = leases.state(session, JOB)
        return next_run(self.schedule, self.clock(), current.last_finished_at, current.last_failed_at)

    def step(self, stop: threading.Event) -> float:
        """Run if due; return how many seconds to wait before the next look."""
        try:
            when = self.due_at()
        except SQLAlchemyError as error:
            log.warning("cannot read the recompute lease: %s; looking again in 30 s", error.__class__.__name__)
            return 30.0
        now = self.clock()
        if when > now:
            if when != self._announced:
                self._announced = when
                log.info("next recompute at %s (%s)", when.astimezone(self.schedule.zone).strftime("%Y-%m-%d %H:%M %Z"), self.schedule.describe())
            return min((when - now).total_seconds(), MAX_SLEEP_SECONDS)
        log.info("recompute starting%s", "" if self.train else " (no training)")
        try:
            result = run_exclusive(self.app, train=self.train, holder=self.holder, should_stop=stop.is_set, clock=self.clock)
        except Exception as error:  # a database outage or a bug must cost one run, not the process
            log.error("recompute failed: %s: %s; trying again in %d min", error.__class__.__name__, error, RETRY_AFTER.seconds // 60)
            return 1.0
        log.info("recompute %s", summary(result))
        return HELD_RECHECK_SECONDS if result.status == "held" else 1.0

    def run(self, stop: threading.Event, wait: Callable[[float], object] | None = None) -> None:
        wait = wait or stop.wait
        log.info("nightly recompute daily at %s", self.schedule.describe())
        while not stop.is_set():
            pause = self.step(stop)
            if stop.is_set():
                break
            wait(pause)
