"""The nightly recompute: when it runs (time zones, missed and failed runs),
the lease that keeps two recomputes from running at once, and the loop of
`crm insights nightly` — driven by a fake clock, never by sleeping."""

import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from crm_backend import leases
from crm_backend.db import get_session
from crm_backend.insights import nightly, service
from crm_backend.insights.nightly import RETRY_AFTER, Schedule, next_run

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- when -------------------------------------------------------------------------


def test_the_time_is_read_in_the_support_time_zone_or_in_utc():
    assert Schedule.parse("02:30", "Europe/London") == Schedule(time(2, 30), LONDON)
    assert Schedule.parse("2:30 UTC", "Europe/London") == Schedule(time(2, 30), UTC)
    assert Schedule.parse("23:59", "") == Schedule(time(23, 59), UTC)


@pytest.mark.parametrize("text", ["24:00", "3am", "", "02:30 CET", "02:3"])
def test_a_time_that_cannot_be_read_is_refused_in_one_sentence(text):
    with pytest.raises(nightly.ScheduleError, match="INSIGHTS_NIGHTLY_AT .* is not a time of day such as 03:00"):
        Schedule.parse(text, "Europe/London")


def test_a_bad_nightly_time_stops_the_app_at_start(database_url):
    from crm_backend import create_app

    with pytest.raises(service.SettingsError, match="INSIGHTS_NIGHTLY_AT '3am'"):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "INSIGHTS_NIGHTLY_AT": "3am"})


def test_the_next_run_follows_the_local_clock_in_winter_and_in_summer():
    schedule = Schedule(time(2, 30), LONDON)

    assert schedule.next_slot(at("2026-12-02T10:00")) == at("2026-12-03T02:30")
    assert schedule.next_slot(at("2026-07-01T10:00")) == at("2026-07-02T01:30")  # 02:30 BST
    assert schedule.next_slot(at("2026-12-02T02:29")) == at("2026-12-02T02:30")
    assert schedule.latest_slot(at("2026-12-02T02:30")) == at("2026-12-02T02:30")
    assert schedule.latest_slot(at("2026-12-02T02:29")) == at("2026-12-01T02:30")


def test_on_the_nights_the_clocks_change_it_runs_once():
    skipped = Schedule(time(1, 30), LONDON)  # 29 March 2026: 01:00 GMT jumps to 02:00 BST
    twice = Schedule(time(1, 30), LONDON)  # 25 October 2026: 01:00-02:00 BST happens twice

    assert skipped.slot_on(date(2026, 3, 29)) == at("2026-03-29T01:30")  # 02:30 BST, an hour late by the clock
    first = twice.slot_on(date(2026, 10, 25))
    assert first == at("2026-10-25T00:30")  # the first 01:30, BST
    assert twice.next_slot(first) == at("2026-10-26T01:30")  # not the second 01:30 an hour later


def test_a_run_is_due_until_one_finishes_after_the_latest_run_time():
    schedule = Schedule(time(3, 0), UTC)
    now = at("2026-12-02T10:00")

    assert next_run(schedule, now, last_finished=None) == now  # never computed
    assert next_run(schedule, now, last_finished=at("2026-12-01T03:00:05")) == now  # last night missed (process down)
    assert next_run(schedule, now, last_finished=at("2026-12-02T03:00:05")) == at("2026-12-03T03:00")
    # A recompute run by hand this morning counts as today's.
    assert next_run(schedule, now, last_finished=at("2026-12-02T08:00")) == at("2026-12-03T03:00")


def test_a_failed_run_is_tried_again_later_but_not_after_the_next_night():
    schedule = Schedule(time(3, 0), UTC)
    failed = at("2026-12-02T03:00:10")

    assert next_run(schedule, at("2026-12-02T03:01"), at("2026-12-01T03:01"), failed) == failed + RETRY_AFTER
    assert next_run(schedule, at("2026-12-02T04:00"), at("2026-12-01T03:01"), failed) == at("2026-12-02T04:00")
    assert next_run(schedule, at("2026-12-03T02:59"), None, at("2026-12-03T02:50")) == at("2026-12-03T03:00")


# --- the lease --------------------------------------------------------------------


def test_one_holder_at_a_time_until_its_lease_runs_out(app):
    ttl, start = timedelta(minutes=5), at("2026-12-02T03:00")
    with app.app_context():
        session = get_session()

        first = leases.acquire(session, "job", "a", ttl=ttl, now=start)
        second = leases.acquire(session, "job", "b", ttl=ttl, now=start + timedelta(minutes=4))
        renewed = leases.renew(session, "job", "a", ttl=ttl, now=start + timedelta(minutes=4))
        still_held = leases.acquire(session, "job", "b", ttl=ttl, now=start + timedelta(minutes=8))
        taken_over = leases.acquire(session, "job", "b", ttl=ttl, now=start + timedelta(minutes=10))
        lost = leases.renew(session, "job", "a", ttl=ttl, now=start + timedelta(minutes=10))
        state = leases.state(session, "job")

    assert (first, second, renewed, still_held, taken_over, lost) == (True, False, True, False, True, False)
    assert (state.holder, state.last_started_at) == ("b", start + timedelta(minutes=10))


def test_giving_the_lease_back_records_how_the_job_ended(app):
    with app.app_context():
        session = get_session()
        leases.acquire(session, "job", "a", ttl=timedelta(minutes=5), now=at("2026-12-02T03:00"))
        leases.release(session, "job", "a", now=at("2026-12-02T03:02"))
        finished = leases.state(session, "job")
        leases.acquire(session, "job", "b", ttl=timedelta(minutes=5), now=at("2026-12-03T03:00"))
        leases.release(session, "job", "b", error="OperationalError: gone", now=at("2026-12-03T03:01"))
        failed = leases.state(session, "job")

    assert (finished.holder, finished.last_finished_at, finished.held(at("2026-12-02T03:03"))) == (None, at("2026-12-02T03:02"), False)
    assert (failed.last_finished_at, failed.last_failed_at, failed.last_error) == (at("2026-12-02T03:02"), at("2026-12-03T03:01"), "OperationalError: gone")


def test_of_processes_asking_at_once_exactly_one_gets_the_lease(app):
    sessions = app.extensions["crm_db"].sessionmaker
    with app.app_context(), sessions() as session:
        leases.state(session, "job")  # the row exists; the race is for the UPDATE
    barrier, results = threading.Barrier(4), []

    def ask(holder: str) -> None:
        with sessions() as session:
            barrier.wait()
            results.append(leases.acquire(session, "job", holder, ttl=timedelta(minutes=5)))

    threads = [threading.Thread(target=ask, args=(f"p{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, False, False, True]


# --- running under the lease --------------------------------------------------------


@pytest.fixture
def recomputes(monkeypatch):
    """Replace the recompute itself; returns the list of its calls."""
    calls = []

    def refresh_all(session, train=True, should_stop=None, **_):
        calls.append(train)
        return {"customers": 3, "auc": None, "k": None, "problems": [], "interrupted": False}

    monkeypatch.setattr(service, "refresh_all", refresh_all)
    return calls


def test_a_recompute_while_another_holds_the_lease_does_nothing(app, recomputes):
    with app.app_context():
        leases.acquire(get_session(), nightly.JOB, "elsewhere:1:x", ttl=timedelta(minutes=5))

        result = nightly.run_exclusive(app)

    assert (result.status, result.holder, recomputes) == ("held", "elsewhere:1:x", [])
    assert "another process is recomputing (elsewhere:1:x" in nightly.summary(result)


def test_a_lease_given_back_while_asking_is_said_plainly():
    assert nightly.summary(nightly.RunResult("held")) == "another process was recomputing just now"


def test_a_recompute_gives_the_lease_back_and_records_a_failure(app, monkeypatch):
    def broken(session, **_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "refresh_all", broken)
    with app.app_context():
        with pytest.raises(RuntimeError):
            nightly.run_exclusive(app)
        state = leases.state(get_session(), nightly.JOB)

    assert (state.holder, state.last_finished_at, state.last_error) == (None, None, "RuntimeError: disk full")


def test_the_recompute_command_refuses_to_run_beside_another(app, run_cli, recomputes):
    with app.app_context():
        leases.acquire(get_session(), nightly.JOB, "elsewhere:1:x", ttl=timedelta(minutes=5))

    result = run_cli("insights", "recompute")

    assert result.exit_code != 0 and recomputes == []
    assert "another process is recomputing (elsewhere:1:x" in result.output and "try again" in result.output


def test_a_stop_between_batches_ends_the_refresh_early(app, add_customers):
    add_customers(("Ada", "ada@example.com"))
    with app.app_context():
        metrics = service.refresh_all(get_session(), train=False, should_stop=lambda: True)

    assert (metrics["customers"], metrics["interrupted"]) == (0, True)


# --- the scheduler loop -----------------------------------------------------------


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_scheduler_runs_at_start_when_never_run_then_once_a_night(app, recomputes):
    clock = Clock(at("2026-12-02T10:00"))
    scheduler = nightly.Nightly(app, Schedule(time(3, 0), UTC), clock=clock)
    stop = threading.Event()

    with app.app_context():
        scheduler.step(stop)  # never computed: runs now
        pause = scheduler.step(stop)  # done for today
        clock.now = at("2026-12-03T02:59")
        before_the_night = scheduler.step(stop)
        clock.now = at("2026-12-03T03:00")
        scheduler.step(stop)
        scheduler.step(stop)

    assert recomputes == [True, True]
    assert pause == nightly.MAX_SLEEP_SECONDS  # sleeps in pieces until 03:00 tomorrow
    assert before_the_night == 60.0


def test_two_schedulers_never_recompute_at_once(app, recomputes, monkeypatch):
    clock = Clock(at("2026-12-02T03:00"))
    first = nightly.Nightly(app, Schedule(time(3, 0), UTC), clock=clock, holder="first")
    second = nightly.Nightly(app, Schedule(time(3, 0), UTC), clock=clock, holder="second")
    stop = threading.Event()
    waits = []

    def refresh_all(session, **_):
        # While the first one recomputes, the second wakes up too.
        waits.append(second.step(stop))
        return {"customers": 3, "problems": [], "interrupted": False}

    monkeypatch.setattr(service, "refresh_all", refresh_all)
    with app.app_context():
        first.step(stop)
        after = second.step(stop)

    assert waits == [nightly.HELD_RECHECK_SECONDS]  # it found the lease taken and ran nothing
    assert after > 1.0  # and then found tonight's run done


def test_the_scheduler_survives_a_failed_run_and_tries_again_later(app, monkeypatch):
    clock = Clock(at("2026-12-02T03:00"))
    scheduler = nightly.Nightly(app, Schedule(time(3, 0), UTC), clock=clock)
    calls = []

    def flaky(session, **_):
        calls.append(clock.now)
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        return {"customers": 3, "problems": [], "interrupted": False}

    monkeypatch.setattr(service, "refresh_all", flaky)
    with app.app_context():
        scheduler.step(threading.Event())
        clock.now = at("2026-12-02T03:12")
        waiting = scheduler.step(threading.Event())
        clock.now = at("2026-12-02T03:16")
        scheduler.step(threading.Event())

    assert calls == [at("2026-12-02T03:00"), at("2026-12-02T03:16")]
    assert waiting == (RETRY_AFTER - timedelta(minutes=12)).total_seconds()


def test_the_loop_ends_when_told_to_stop(app, recomputes):
    stop = threading.Event()
    scheduler = nightly.Nightly(app, Schedule(time(3, 0), UTC), clock=Clock(at("2026-12-02T10:00")))
    waited = []

    def wait(seconds: float) -> None:
        waited.append(seconds)
        if len(waited) == 2:
            stop.set()  # what SIGTERM's handler does

    with app.app_context():
        scheduler.run(stop, wait=wait)

    assert recomputes == [True] and len(waited) == 2


def test_the_nightly_command_refuses_a_time_it_cannot_read(run_cli):
    result = run_cli("insights", "nightly", "--at", "25:00")

    assert result.exit_code == 2 and "--at '25:00' is not a time of day" in result.output
