"""`crm classifier train` and `crm classifier evaluate`."""

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from . import corrections as corrections_module
from .data import DataError, read_labelled_csv
from .defaults import DEFAULT_C, DEFAULT_THRESHOLD

csv_path = click.Path(exists=True, dir_okay=False, path_type=Path)


def _column_options(command):
    command = click.option("--label-column", default="label", show_default=True, help="Column holding the need label.")(command)
    command = click.option("--text-column", default="text", show_default=True, help="Column holding the customer text.")(command)
    return command


def _model_options(command):
    command = click.option("--C", "C", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_C, show_default=True, help="Inverse regularisation strength of the logistic regression.")(command)
    command = click.option("--class-weight", type=click.Choice(["none", "balanced"]), default="none", show_default=True, help="'balanced' up-weights rare labels.")(command)
    command = click.option("--threshold", type=click.FloatRange(0, 1), default=DEFAULT_THRESHOLD, show_default=True, help='Below this confidence the label is "other".')(command)
    return command


def _read(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    try:
        return read_labelled_csv(path, text_column, label_column)
    except DataError as error:
        raise click.ClickException(str(error)) from error


class _StepBar:
    """A progress bar over the named steps of fitting (written to stderr)."""

    def __init__(self, total: int = 3):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="fitting", unit="step", leave=False)
        self.started = False

    def __call__(self, step: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description(step)

    def close(self) -> None:
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()


def _collect_corrections(corrections_csv: Path | None) -> list:
    found = []
    if corrections_csv is not None:
        try:
            found.extend(corrections_module.read_corrections_csv(corrections_csv))
        except DataError as error:
            raise click.ClickException(str(error)) from error
    try:
        found.extend(corrections_module.collect(current_app))
    except corrections_module.CorrectionsUnavailable as error:
        click.echo(f"Warning: {error}; training without them.", err=True)
    return found


@click.group("classifier")
def classifier_group() -> None:
    """Train and measure the need classifier."""


@classifier_group.command("train")
@click.option("--data", "data_path", type=csv_path, required=True, help="CSV of labelled customer texts.")
@_column_options
@_model_options
@click.option("--corrections", "corrections_csv", type=csv_path, help="Extra corrections (text,label[,corrected_at]); newest wins.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the model [default: NEED_MODEL_PATH].")
@with_appcontext
def train(data_path, text_column, label_column, C, class_weight, threshold, corrections_csv, out_path) -> None:
    """Fit the need classifier on CSV plus agents' corrections and save it.

    Running backends pick the new model up within NEED_MODEL_CHECK_SECONDS.
    """
    from .model import TrainingError, fit, save

    texts, labels = _read(data_path, text_column, label_column)
    found = _collect_corrections(corrections_csv)
    texts, labels, used = corrections_module.merge(texts, labels, found)
    click.echo(f"Training on {len(texts)} texts with {len(set(labels))} labels from {data_path}, including {used} correction(s).")
    bar = _StepBar()
    try:
        model = fit(texts, labels, C=C, class_weight=None if class_weight == "none" else class_weight, threshold=threshold, progress=bar)
    except TrainingError as error:
        raise click.ClickException(str(error)) from error
    finally:
        bar.close()
    model.metadata["corrections_used"] = used
    model.metadata["source"] = str(data_path)
    out_path = out_path or Path(current_app.config["NEED_MODEL_PATH"])
    save(model, out_path)
    click.echo(
        f"Saved the need model to {out_path} ({out_path.stat().st_size / 1e6:.1f} MB, "
        f"fit {model.metadata['fit_seconds']:.1f} s, temperature {model.metadata['hyperparameters']['temperature']})."
    )
    click.echo(json.dumps({"model": str(out_path), "n_examples": len(texts), "corrections_used": used, "data_sha256": model.metadata["data_sha256"]}))


@classifier_group.command("evaluate")
@click.option("--train", "train_path", type=csv_path, required=True, help="CSV to fit on.")
@click.option("--test", "test_path", type=csv_path, required=True, help="CSV to measure on (never fitted on).")
@_column_options
@_model_options
def evaluate(train_path, test_path, text_column, label_column, C, class_weight, threshold) -> None:
    """Fit on --train, measure on --test; the last line is a JSON object of figures."""
    from tqdm import tqdm

    from .evaluation import evaluate as run_evaluation
    from .model import TrainingError

    train_texts, train_labels = _read(train_path, text_column, label_column)
    test_texts, test_labels = _read(test_path, text_column, label_column)
    unseen = sorted(set(test_labels) - set(train_labels))
    if unseen:
        click.echo(f"Note: {len(unseen)} test label(s) never occur in training: {', '.join(unseen[:10])}", err=True)
    click.echo(f"Fitting on {len(train_texts)} texts ({len(set(train_labels))} labels), measuring on {len(test_texts)}.")
    bar = _StepBar()
    try:
        _, metrics, report, confusions = run_evaluation(
            train_texts, train_labels, test_texts, test_labels,
            C=C, class_weight=None if class_weight == "none" else class_weight, threshold=threshold,
            progress=bar, tqdm=tqdm,
        )
    except TrainingError as error:
        raise click.ClickException(str(error)) from error
    finally:
        bar.close()
    click.echo(report)
    click.echo("Most frequent confusions (true -> predicted: count):")
    for truth, predicted, count in confusions:
        click.echo(f"  {truth} -> {predicted}: {count}")
    click.echo(
        f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, fit {metrics['fit_seconds']:.1f} s, "
        f"single text {metrics['predict_ms_per_text']:.2f} ms, batch {metrics['batch_ms_per_text']:.3f} ms/text, "
        f"model {metrics['model_mb']:.1f} MB"
    )
    click.echo(json.dumps(metrics))
