"""`fraudpipe evaluate`: score a published model on a labelled Parquet file, without retraining.

    fraudpipe evaluate --input data/shifted.parquet [--model VERSION] [--report PATH]

The same path as the stream and as training's evaluation: Spark window_features ->
SenderHistory context -> scoring.score_matrix -> bursts.predicted (training.assessment),
over every window of the file after its history warm-up: the first minutes (the model's
`history_warmup_minutes`, or --warmup-minutes; at most half the file's minutes) only build
the sender history, as training's first minutes do, because a stream that has run a while
never meets a sender population that is new to it all at once. The report is training's
report; it goes to versions/<version>/evaluations/<input stem>.json unless --report says otherwise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa

from fraudpipe.config import Config, load_config
from fraudpipe.errors import ModelError
from spark_apps.model_registry import ModelRegistry
from spark_apps.scoring import ModelMetadata
from spark_apps.training.assessment import assess, format_summary
from spark_apps.training.data import Progress
from spark_apps.training.evaluation import report_json
from spark_apps.training.labelled_input import read_labelled, to_spark
from spark_apps.training.run import labelled_windows
from spark_apps.training.windows import warmup_mask

EVALUATIONS_DIR = "evaluations"


def load_model(config: Config, version: str | None) -> tuple[ModelMetadata, Path]:
    """The metadata and directory of `version`, or of the LATEST published version."""
    registry = ModelRegistry(config.path(config.model.dir))
    version = version or registry.latest_version()
    if version is None:
        raise ModelError(f"no model published under {registry.dir}: run `fraudpipe train` first")
    directory = registry.version_dir(version)
    if not directory.is_dir():
        known = ", ".join(registry.versions()) or "none"
        raise ModelError(f"no model version {version} under {registry.dir} (published: {known})")
    return registry.load(version), directory


def model_warmup_minutes(model: ModelMetadata) -> float:
    """The history warm-up the model was trained with (0 for models from before it existed)."""
    return float(model.params.get("history_warmup_minutes") or 0.0)


def evaluate_file(spark: Any, path: Path, model: ModelMetadata, *, progress: Progress,
                  table: pa.Table | None = None, warmup_minutes: float | None = None) -> tuple[dict[str, Any], Any]:
    """The report of `model` on the windows of the labelled file `path` (or its checked `table`) after the
    history warm-up (default: the model's), and the scored windows."""
    if table is None:
        table = read_labelled(path)  # refuses a malformed file before any Spark work
    progress(f"read {table.num_rows:,} labelled transactions from {path}")
    windows = labelled_windows(to_spark(spark, table), progress=progress)
    missing = [name for name in model.feature_names if name not in windows.columns]
    if missing:
        raise ModelError(f"model {model.version} uses feature(s) {', '.join(missing)} this code does not compute")
    minutes = model_warmup_minutes(model) if warmup_minutes is None else warmup_minutes
    warmup = warmup_mask(windows["window_start"], np.ones(len(windows), dtype=bool), minutes)
    if warmup.any():
        progress(f"the first {minutes:g} minutes (at most half the file's) only build the sender history: "
                 f"{int(warmup.sum()):,} windows not scored")
    report, scored = assess(windows[~warmup], model)
    report["input"] = str(path)
    report["split"] = "none: every window of the file after the history warm-up"
    report["warmup_minutes"] = minutes
    report["warmup_windows"] = int(warmup.sum())
    return report, scored


def run_evaluation(config: Config, path: Path, *, version: str | None = None, report_path: Path | None = None,
                   progress: Progress, spark: Any = None, warmup_minutes: float | None = None) -> tuple[dict[str, Any], Path]:
    """Evaluate, print the summary, write the report; returns the report and where it went."""
    from spark_apps.training.job import training_session

    table = read_labelled(path)  # a malformed file is refused before Spark starts
    model, directory = load_model(config, version)
    progress(f"evaluating model {model.version} on {path}")
    spark = spark or training_session(config)
    report, _scored = evaluate_file(spark, path, model, progress=progress, table=table, warmup_minutes=warmup_minutes)
    target = report_path or directory / EVALUATIONS_DIR / f"{path.stem}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(report_json(report))
    except OSError as exc:
        raise ModelError(f"cannot write the evaluation report {target}: {exc}") from exc
    click.echo(format_summary(f"model {model.version} on {path.name}", report))
    progress(f"report written to {target}")
    return report, target


@click.command("evaluate")
@click.option("--input", "input_path", required=True, help="labelled Parquet (produce --to-file layout, docs/detection.md)")
@click.option("--model", "version", help="model version to evaluate (default: LATEST)")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="where the report JSON goes (default: versions/<version>/evaluations/<input stem>.json)")
@click.option("--warmup-minutes", type=click.FloatRange(min=0), default=None,
              help="first minutes that only build the sender history (default: the model's history_warmup_minutes)")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="config.yml to use")
def evaluate_command(input_path: str, version: str | None, report_path: str | None, warmup_minutes: float | None,
                     config_file: str | None) -> None:
    """Score a published model on a labelled Parquet file without retraining."""
    from spark_apps.training.job import console_progress

    run_evaluation(load_config(config_file), Path(input_path), version=version,
                   report_path=Path(report_path) if report_path else None, progress=console_progress(),
                   warmup_minutes=warmup_minutes)
