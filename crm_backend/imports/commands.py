"""`crm import-customers` and `crm import-orders`.

Both print the counts, the cleaning rate and, as the last line, one JSON
object of the figures. Exit code 1 for a file that cannot be imported at all
(one sentence) or when a batch was rolled back; rejected rows alone are not
a failure, they are listed in --report.
"""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import click
from flask.cli import with_appcontext

from .cleaning import BadValue, check_region
from .csvfile import ImportFileError
from .customers import DEFAULT_BATCH_SIZE
from .orders import DEFAULT_SOURCE
from .results import ImportResult, write_report

SHOWN_ISSUES = 5

csv_argument = click.argument("csv_path", metavar="CSV", type=click.Path(exists=True, dir_okay=False, path_type=Path))
report_option = click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rejected, merged and warned rows here (CSV: line, outcome, reason, the row as read).",
)
batch_option = click.option(
    "--batch-size", type=click.IntRange(1, 100_000), default=DEFAULT_BATCH_SIZE, show_default=True,
    help="Records per transaction; a batch that fails is rolled back alone.",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Clean, compare and count, but store nothing.")


def _read(csv_path: Path) -> bytes:
    try:
        return csv_path.read_bytes()
    except OSError as error:
        raise click.ClickException(f"cannot read {csv_path}: {error.strerror}") from error


def _run(importer: Callable[..., ImportResult], csv_path: Path, report_path: Path | None, **options) -> tuple[ImportResult, float]:
    from tqdm import tqdm

    from ..commands import require_current_schema
    from ..db import get_session

    data = _read(csv_path)
    if report_path is not None and not report_path.resolve().parent.is_dir():
        # Found out now rather than after the whole import.
        raise click.ClickException(f"cannot write the report {report_path}: no directory {report_path.parent}")
    require_current_schema()
    started = time.perf_counter()
    try:
        result = importer(get_session(), data, progress=tqdm, **options)
    except ImportFileError as error:
        raise click.ClickException(f"{csv_path}: {error}") from error
    return result, time.perf_counter() - started


def _finish(result: ImportResult, seconds: float, what: str, report_path: Path | None) -> None:
    figures = result.figures()
    stored = "would be" if result.dry_run else "were"  # --dry-run
    click.echo(
        f"Read {result.read} rows. {what.capitalize()} that {stored} created: {result.created}, updated: {result.updated}, "
        f"unchanged: {result.unchanged}. Rows merged: {result.merged}, rejected: {result.rejected}, failed: {result.failed}; "
        f"warnings: {figures['warnings']}."
    )
    click.echo(f"Cleaning rate {result.cleaning_rate:.2f} % ({result.read - result.rejected} valid of {result.read} rows), {seconds:.1f} s.")
    for batch in result.failed_batches:
        click.echo(f"Lines {batch.first_line}-{batch.last_line}: {batch.error}", err=True)
    if report_path is not None:
        try:
            count = write_report(report_path, result)
        except OSError as error:
            raise click.ClickException(f"cannot write the report {report_path}: {error.strerror}") from error
        click.echo(f"Report of {count} row(s) needing attention: {report_path}")
    else:
        _show_some_issues(result)
    click.echo(json.dumps({**figures, "seconds": round(seconds, 2)}))
    if result.failed_batches:
        click.get_current_context().exit(1)


def _show_some_issues(result: ImportResult) -> None:
    rejected = result.listed("rejected")
    for issue in rejected[:SHOWN_ISSUES]:
        click.echo(f"Line {issue.line} rejected: {issue.reason}", err=True)
    if len(rejected) > SHOWN_ISSUES:
        click.echo(f"... and {len(rejected) - SHOWN_ISSUES} more rejected; --report PATH lists every one.", err=True)


@click.command("import-customers")
@csv_argument
@report_option
@batch_option
@click.option(
    "--default-region", metavar="CODE", default=None,
    help="Country of phone numbers written without +country code, e.g. GB (default: such numbers are dropped).",
)
@dry_run_option
@click.option(
    "--jobs", type=click.IntRange(1, 64), default=None,
    help="Processes that clean rows (phone numbers are the slow part) [default: one per CPU].",
)
@with_appcontext
def import_customers_command(
    csv_path: Path, report_path: Path | None, batch_size: int, default_region: str | None, dry_run: bool, jobs: int | None
) -> None:
    """Clean, de-duplicate and import customers from CSV (name, email, phone).

    Customers whose e-mail is already stored are updated with the file's
    non-empty values. See docs/import.md.
    """
    from .customers import import_customers

    try:
        region = check_region(default_region)
    except BadValue as error:
        raise click.ClickException(f"--default-region: {error}") from error
    processes = jobs or os.cpu_count() or 1
    result, seconds = _run(import_customers, csv_path, report_path, default_region=region, batch_size=batch_size, dry_run=dry_run, processes=processes)
    _finish(result, seconds, "customers", report_path)


@click.command("import-orders")
@csv_argument
@click.option("--source", default=DEFAULT_SOURCE, show_default=True, help="The system the orders come from; order ids are unique per source.")
@report_option
@batch_option
@click.option("--create-customers", is_flag=True, help="Create customers for unknown e-mails instead of rejecting their orders.")
@dry_run_option
@with_appcontext
def import_orders_command(csv_path: Path, source: str, report_path: Path | None, batch_size: int, create_customers: bool, dry_run: bool) -> None:
    """Import orders from CSV (order_id, customer_email, amount, currency, ordered_at,
    status, refunded_amount; optionally number, shipped_at, carrier, tracking_number,
    tracking_url, estimated_delivery, delivered_at); an order already imported from SOURCE is updated.

    See docs/import.md.
    """
    from .orders import import_orders

    source = source.strip()
    if not 1 <= len(source) <= 64:
        raise click.ClickException("--source must be 1-64 characters")
    result, seconds = _run(
        import_orders, csv_path, report_path, source=source, batch_size=batch_size, create_missing_customers=create_customers, dry_run=dry_run
    )
    _finish(result, seconds, "orders", report_path)
