"""`crm insights recompute` (the nightly job), `crm insights nightly` (its scheduler) and `crm insights evaluate`."""

import json
import logging
import signal
import threading
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from ..commands import require_current_schema
from ..db import get_session
from . import nightly, service


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _echo_training(metrics: dict) -> None:
    if metrics["auc"] is not None:
        click.echo(
            f"Churn model: ROC AUC {metrics['auc']:.3f} on {metrics['test_rows']} held-out customers "
            f"(base rate {_percent(metrics['base_rate'])} churned, {metrics['labelled_customers']} labelled)."
        )
    if metrics["k"] is not None:
        by_k = ", ".join(f"k={k}: {score:.3f}" for k, score in metrics["silhouette_by_k"].items())
        click.echo(f"Segments: k={metrics['k']} chosen by silhouette ({by_k}).")
        for name, size in metrics["segment_sizes"].items():
            click.echo(f"  {name}: {size} customers")


def _fail_on_database(error: SQLAlchemyError) -> click.ClickException:
    return click.ClickException(f"the database failed while computing insights: {error.__class__.__name__}")


@click.group("insights")
def insights_group() -> None:
    """Customer lifetime value, loyalty, churn risk and segments."""


@insights_group.command("recompute")
@click.option("--no-train", "no_train", is_flag=True, help="Keep the stored models; only refresh every customer's figures.")
@with_appcontext
def recompute(no_train: bool) -> None:
    """Fit the churn and segment models and refresh every customer (the nightly job).

    The last line is a JSON object of figures and counts.
    """
    require_current_schema()
    started = time.perf_counter()
    try:
        result = nightly.run_exclusive(current_app._get_current_object(), train=not no_train)
    except SQLAlchemyError as error:
        raise _fail_on_database(error) from error
    if result.status == "held":
        raise click.ClickException(f"{nightly.summary(result)}; try again when it has finished")
    metrics = result.metrics
    for problem in metrics["problems"]:
        click.echo(problem)
    if not no_train:
        _echo_training(metrics)
    tiers = ", ".join(f"{count} {tier}" for tier, count in metrics["tiers"].items())
    click.echo(
        f"Refreshed {metrics['customers']} customers in {time.perf_counter() - started:.1f} s: {tiers}; "
        f"{metrics['high_churn_risk']} at churn risk of 50% or more."
    )
    click.echo(json.dumps({key: value for key, value in metrics.items() if key != "segment_sizes"}))


@insights_group.command("evaluate")
@click.option("--save", is_flag=True, help="Store the fitted models as the newest (customers keep their figures until a refresh).")
@with_appcontext
def evaluate(save: bool) -> None:
    """Fit the models on the current database and print how well they do.

    Nothing is stored unless --save. The last line is a JSON object with the
    churn model's auc and base_rate and the segments' k and silhouette per k.
    """
    require_current_schema()
    session = get_session()
    try:
        training = service.fit_models(session)
        if save:
            service.save_models(session, training)
            session.commit()
    except SQLAlchemyError as error:
        raise _fail_on_database(error) from error
    for problem in training.problems:
        click.echo(problem)
    metrics = service.training_metrics(training)
    _echo_training(metrics)
    if save:
        click.echo("Saved the models; `crm insights recompute --no-train` applies them to every customer.")
    click.echo(json.dumps({**metrics, "saved": save}))


@insights_group.command("nightly")
@click.option("--at", "at", default=None, metavar="HH:MM", help="Time of day in SUPPORT_TIMEZONE, or 'HH:MM UTC' (default: INSIGHTS_NIGHTLY_AT, 03:00).")
@click.option("--no-train", "no_train", is_flag=True, help="Keep the stored models; only refresh every customer's figures.")
@with_appcontext
def nightly_command(at: str | None, no_train: bool) -> None:
    """Run `recompute` once a day until SIGTERM or Ctrl-C (the `insights` process).

    A run missed while the process was down is made when it starts. Every
    recompute, this one's, `crm insights recompute`'s or another machine's,
    takes the same lease in the database, so two never run at once.
    """
    require_current_schema()
    try:
        schedule = nightly.schedule_from_config(current_app.config, at)
    except service.SettingsError as error:
        raise click.BadParameter(str(error).replace("INSIGHTS_NIGHTLY_AT", "--at", 1), param_hint="--at") from error
    # Flask's handler on the app's logger prints it; INFO shows each run.
    logging.getLogger("crm_backend.insights").setLevel(logging.INFO)
    stop = threading.Event()

    def handle(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    click.echo(f"Insights scheduler: recompute daily at {schedule.describe()}. Stop with Ctrl-C.")
    nightly.Nightly(current_app._get_current_object(), schedule, train=not no_train).run(stop)
    click.echo("Insights scheduler stopped.")
