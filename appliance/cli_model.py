"""``appliance model train|score``: propensity models from a CSV, without a running node.

``train`` writes an artefact directory (see :mod:`predictors.model`) and prints its out-of-fold
quality; ``score`` writes one row per input row, in input order, with the row's id and its calibrated
probability (and, on request, the features that drove it). Publishing an artefact into a node's
registry is a node operation and lives with the proactive-service commands.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from appliance.cli_base import CliError
from predictors.dataset import read_table
from predictors.errors import PredictorError
from predictors.model import Model
from predictors.training import train

__all__ = ["model"]


def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "" if value is None else str(value)

    table = Table(title=title)
    table.add_column("metric (out-of-fold)")
    table.add_column("value", justify="right")
    captured = f"{float(metrics.get('top_positives') or 0):g} of {metrics.get('positives')}"
    rows = [
        ("rows", metrics.get("rows")),
        ("positives", metrics.get("positives")),
        ("base rate", metrics.get("base_rate")),
        ("AUC", metrics.get("auc")),
        ("average precision", metrics.get("average_precision")),
        ("log loss", metrics.get("log_loss")),
        ("Brier", metrics.get("brier")),
        (f"positives in top {metrics.get('top_share', 0.2):.0%} ({metrics.get('top_rows')} rows)", captured),
        ("share of positives captured", metrics.get("top_capture")),
        ("boosting rounds", metrics.get("rounds")),
        ("validation", f"{metrics.get('validation')}, {metrics.get('folds')} folds"),
    ]
    for label, value in rows:
        table.add_row(label, fmt(value))
    Console(file=sys.stdout, width=100).print(table)


@click.group("model")
def model() -> None:
    """Train LightGBM propensity models and score tables with them."""


@model.command("train")
@click.option("--data", "data", type=click.Path(dir_okay=False), help="Training CSV.")
@click.option("--target", help="Binary target column (1/0, yes/no, true/false).")
@click.option(
    "--playbook",
    help="Instead of --data/--target: build the training set from the node's events for this playbook.",
)
@click.option("--publish", is_flag=True, help="With --playbook: publish the model into the node's registry.")
@click.option("--cutoffs", type=click.IntRange(1, 52), default=4, show_default=True, help="With --playbook.")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Artefact directory to write.")
@click.option("--id-column", default=None, help="Customer id column (kept out of the features).")
@click.option(
    "--validation",
    type=click.Choice(["stratified", "time"]),
    default="stratified",
    show_default=True,
    help="Stratified folds, or expanding time windows (needs --time-column).",
)
@click.option("--time-column", default=None, help="Column to order rows by for --validation time.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=0), default=0, help="LightGBM threads (0: all cores).")
@click.option("--force", is_flag=True, help="Overwrite the model files in a non-empty --out.")
@click.pass_context
def model_train(
    ctx: click.Context,
    data: str | None,
    target: str | None,
    playbook: str | None,
    publish: bool,
    cutoffs: int,
    out: str | None,
    id_column: str | None,
    validation: str,
    time_column: str | None,
    folds: int,
    seed: int,
    threads: int,
    force: bool,
) -> None:
    """Train, cross-validate and calibrate a model on a CSV (or a playbook's history); write it to --out.

    \b
      appliance model train --data train.csv --target Purchase --out models/caravan
      appliance model train --playbook churn_retention --publish
    """
    if playbook is not None:
        if data or target:
            raise CliError("give either --playbook or --data with --target, not both")
        _train_playbook(ctx, playbook, out, publish, cutoffs, seed, threads, force)
        return
    if not data or not target or not out:
        raise CliError("--data, --target and --out are required (or use --playbook NAME)")
    if publish:
        raise CliError("--publish works with --playbook; publish a CSV-trained model with `model publish`")
    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise CliError(
            f"{out_dir} is not empty; choose another --out or pass --force to overwrite the model there"
        )
    try:
        trained = train(
            data,
            target,
            id_column=id_column,
            validation="time" if validation == "time" else "stratified",
            time_column=time_column,
            folds=folds,
            seed=seed,
            threads=threads,
        )
        trained.save(out_dir)
    except PredictorError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write the model to {out_dir}: {exc.strerror or exc}") from None
    _print_metrics(f"model {out_dir} (version {trained.model.digest[:16]})", trained.metrics)


def _train_playbook(
    ctx: click.Context,
    name: str,
    out: str | None,
    publish: bool,
    cutoffs: int,
    seed: int,
    threads: int,
    force: bool,
) -> None:
    from appliance.cli_base import CLI_ACTOR, node_from

    with node_from(ctx) as node:
        out_dir = Path(out) if out is not None else None
        if out_dir is not None and out_dir.exists() and any(out_dir.iterdir()) and not force:
            raise CliError(f"{out_dir} is not empty; choose another --out or pass --force")
        options: dict[str, Any] = {"cutoffs": cutoffs, "seed": seed, "threads": threads}
        try:
            if publish:
                trained, frame_rows, version, seq = node.proactive.train_and_publish(
                    name, actor=CLI_ACTOR, out=out_dir, **options
                )
            else:
                trained, frame_rows = node.proactive.train_playbook(name, **options)
                if out_dir is not None:
                    trained.save(out_dir)
        except PredictorError as exc:
            raise CliError(str(exc)) from None
        _print_metrics(f"playbook {name}: {frame_rows} training rows", trained.metrics)
        if publish:
            click.echo(f"published {version.name} version {version.version} (ledger entry {seq})")


@model.command("publish")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.pass_context
def model_publish(ctx: click.Context, name: str, directory: str) -> None:
    """Copy a trained artefact into the node's registry under NAME and make it live (ledger entry)."""
    from appliance.cli_base import CLI_ACTOR, node_from

    with node_from(ctx) as node:
        try:
            version, seq = node.proactive.publish_model(name, Path(directory), actor=CLI_ACTOR)
        except PredictorError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"published {version.name} version {version.version} (ledger entry {seq})")


@model.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def model_list(ctx: click.Context, as_json: bool) -> None:
    """Models in the node's registry, their versions and metrics; * marks the live one."""
    from appliance.cli_base import echo_json, node_from

    with node_from(ctx) as node:
        listing = node.proactive.model_listing()
    if as_json:
        echo_json(listing)
        return
    for m in listing:
        click.echo(f"{m['name']}")
        for v in m["versions"]:
            star = "*" if v["version"] == m["live"] else " "
            auc = v.get("metrics", {}).get("auc")
            click.echo(f"  {star} {v['version']}  {v['created']}  auc={auc}")


@model.command("rollback")
@click.argument("name")
@click.argument("version")
@click.pass_context
def model_rollback(ctx: click.Context, name: str, version: str) -> None:
    """Make an earlier version of NAME live again (ledger entry)."""
    from appliance.cli_base import CLI_ACTOR, node_from

    with node_from(ctx) as node:
        try:
            v, seq = node.proactive.rollback_model(name, version, actor=CLI_ACTOR)
        except PredictorError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"{v.name} version {v.version} is live again (ledger entry {seq})")


@model.command("score")
@click.option(
    "--model", "model_dir", required=True, type=click.Path(file_okay=False), help="Artefact directory."
)
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False), help="CSV to score.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Scores CSV to write.")
@click.option("--id-column", default=None, help="Id column to copy to the output (default: the model's).")
@click.option(
    "--reasons", type=click.IntRange(min=1), default=None, help="Add the top N contributing features."
)
@click.option("--threads", type=click.IntRange(min=0), default=0, help="LightGBM threads (0: all cores).")
def model_score(
    model_dir: str, data: str, out: str, id_column: str | None, reasons: int | None, threads: int
) -> None:
    """Score every row of a CSV: writes <id or row>,score[,reasons] in input order."""
    try:
        loaded = Model.load(model_dir, threads=threads)
        text_columns = (*loaded.text_columns, *((id_column,) if id_column else ()))
        table = read_table(data, text_columns=text_columns)
        columns = set(map(str, table.frame.columns))
        if id_column and id_column not in columns:
            raise CliError(f"{data} has no id column {id_column!r}; name one of its columns or leave it out")
        id_name = id_column or (loaded.schema.id_column if loaded.schema.id_column in columns else None)
        ignore = (id_name,) if id_name else ()
        scores = loaded.score(table, ignore=ignore)
        result = pd.DataFrame(
            {
                id_name or "row": table.frame[id_name] if id_name else np.arange(1, len(scores) + 1),
                "score": scores,
            }
        )
        if reasons:
            result["reasons"] = [
                json.dumps([[n, v] for n, v in row], separators=(",", ":"), ensure_ascii=False)
                for row in loaded.reasons(table, reasons, ignore=ignore)
            ]
    except PredictorError as exc:
        raise CliError(str(exc)) from None
    out_path = Path(out)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        result.to_csv(tmp, index=False)
        os.replace(tmp, out_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    click.echo(f"scored {len(result):,} rows with model {loaded.digest[:16]} -> {out_path}")
