"""``appliance privacy`` (keys, encrypted columns, budgets) and ``appliance query`` (run a privacy query).

The CLI acts with the node's own keys on the local data dir: ``privacy keygen|rotate`` is the
custodian's, ``privacy encrypt|grant`` an admin's, ``query`` an analyst's (recorded as the actor given
with ``--as``, default ``analyst:cli``). Errors exit with code 2 and say what to do.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from appliance.cli_base import CLI_ACTOR, CliError, echo_json, node_from

__all__ = ["privacy", "query"]


def _refusal(exc: Exception) -> CliError:
    return CliError(str(exc))


def _errors() -> tuple[type[Exception], ...]:
    from appliance.privacy.errors import PrivacyError
    from appliance.store.errors import StoreError

    return (PrivacyError, StoreError)


@click.group()
def privacy() -> None:
    """Homomorphic-encryption keys, encrypted columns and privacy budgets."""


@privacy.command("keygen")
@click.pass_context
def keygen(ctx: click.Context) -> None:
    """Create the CKKS, BFV and Paillier keys (the custodian's; sealed with privacy.passphrase_file)."""
    with node_from(ctx) as node:
        try:
            info = node.privacy.keygen(actor="custodian:cli")
        except _errors() as exc:
            raise _refusal(exc) from None
    click.echo(f"privacy keys {info['key_id']} created (ledger entry {info['ledger_seq']})")


@privacy.command("rotate")
@click.pass_context
def rotate(ctx: click.Context) -> None:
    """A new current key id; encrypted columns keep working under theirs until re-encrypted."""
    with node_from(ctx) as node:
        try:
            info = node.privacy.rotate(actor="custodian:cli")
        except _errors() as exc:
            raise _refusal(exc) from None
    click.echo(
        f"privacy keys rotated: {info['previous']} -> {info['key_id']} (ledger entry {info['ledger_seq']})"
    )


@privacy.command("keys")
@click.pass_context
def keys(ctx: click.Context) -> None:
    """The key ids and their public parameters."""
    with node_from(ctx) as node:
        try:
            echo_json(node.privacy.key_info())
        except _errors() as exc:
            raise _refusal(exc) from None


@privacy.command("encrypt")
@click.option("--table", default="customers", show_default=True)
@click.option("--column", required=True, help="a plain int, number or bool field of the table")
@click.option("--scheme", type=click.Choice(["ckks", "bfv", "paillier"]), default="ckks", show_default=True)
@click.option("--flag", is_flag=True, help="a 0/1 column usable in WHERE (bool fields)")
@click.option("--buckets", help="histogram bucket edges, comma-separated: 0,500,1000,5000")
@click.option(
    "--bound", type=float, help="public bound on |value| (default: the next power of two above the data)"
)
@click.option("--segment-by", help="visible attributes, comma-separated (default privacy.segment_by)")
@click.pass_context
def encrypt(
    ctx: click.Context,
    table: str,
    column: str,
    scheme: str,
    flag: bool,
    buckets: str | None,
    bound: float | None,
    segment_by: str | None,
) -> None:
    """Encrypt a column of the store into ciphertext segments (again: append the new rows)."""
    edges = None
    if buckets:
        try:
            edges = [float(b) for b in buckets.split(",")]
        except ValueError:
            raise CliError(
                f"--buckets {buckets!r}: give numbers separated by commas, e.g. 0,500,1000"
            ) from None
    segments = [s.strip() for s in segment_by.split(",") if s.strip()] if segment_by else None
    with node_from(ctx) as node:
        try:
            out = node.privacy.encrypt(
                table,
                column,
                scheme=scheme,
                kind="flag" if flag else "value",
                buckets=edges,
                bound=bound,
                segment_by=segments,
                actor=CLI_ACTOR,
                progress=lambda msg: click.echo(msg, err=True),
            )
        except _errors() as exc:
            raise _refusal(exc) from None
    what = "appended" if out["appended"] is not None else "encrypted"
    click.echo(
        f"{what} {table}.{column}: {out['rows']:,} rows in {out['ciphertexts']:,} ciphertexts "
        f"({out['bytes'] / 1e6:.1f} MB, {out['scheme']}, key {out['key_id']}, segmented by "
        f"{', '.join(out['visible_attributes']) or 'nothing'}); ledger entry {out['ledger_seq']}"
    )


@privacy.command("columns")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def columns(ctx: click.Context, as_json: bool) -> None:
    """Encrypted columns (no values)."""
    with node_from(ctx) as node:
        try:
            cols = [c.as_dict() for c in node.privacy.columns()]
        except _errors() as exc:
            raise _refusal(exc) from None
    if as_json:
        echo_json(cols)
        return
    for c in cols:
        click.echo(
            f"{c['table']}.{c['column']}  {c['scheme']}/{c['kind']}  {c['rows']:,} rows  "
            f"{c['ciphertexts']:,} ciphertexts  key {c['key_id']}  by {','.join(c['visible_attributes'])}"
        )


@privacy.command("budget")
@click.argument("analyst")
@click.option("--grant", "grant_eps", type=float, help="set the analyst's total ε to this")
@click.option("--delta", type=float, default=None, help="with --grant: the total δ (default: unchanged)")
@click.pass_context
def budget(ctx: click.Context, analyst: str, grant_eps: float | None, delta: float | None) -> None:
    """An analyst's privacy budget (actor of their key, e.g. key:ab12cd34); --grant sets it."""
    with node_from(ctx) as node:
        try:
            if grant_eps is not None:
                if grant_eps <= 0:
                    raise CliError("--grant must be a positive ε, e.g. 5")
                d = delta if delta is not None else node.privacy.budget.limit(analyst)[1]
                out = node.privacy.grant(analyst, grant_eps, d, actor=CLI_ACTOR)
            else:
                out = node.privacy.budget_of(analyst)
        except _errors() as exc:
            raise _refusal(exc) from None
    echo_json(out)


@privacy.command("weights")
@click.argument("name", required=False)
@click.argument("csv_file", type=click.Path(dir_okay=False, exists=True), required=False)
@click.pass_context
def weights(ctx: click.Context, name: str | None, csv_file: str | None) -> None:
    """Store a weight vector for DOT (CSV with columns id,weight), or list the stored ones."""
    if (name is None) != (csv_file is None):
        raise CliError("give both NAME and CSV_FILE to store a vector, or neither to list them")
    with node_from(ctx) as node:
        try:
            if name is None:
                echo_json(node.privacy.weight_vectors())
                return
            import pandas as pd

            try:
                frame = pd.read_csv(csv_file, usecols=["id", "weight"])
            except ValueError as exc:
                raise CliError(f"{csv_file}: {exc}; it needs the columns id and weight") from None
            if not pd.api.types.is_integer_dtype(frame["id"]) or not pd.api.types.is_numeric_dtype(
                frame["weight"]
            ):
                raise CliError(f"{csv_file}: id must hold integers and weight numbers, every row")
            out = node.privacy.set_weights(
                name, frame["id"].to_numpy(), frame["weight"].to_numpy(dtype=float), actor=CLI_ACTOR
            )
        except _errors() as exc:
            raise _refusal(exc) from None
    click.echo(
        f"stored weights {out['name']}: {out['rows']:,} rows (sha256 {out['sha256'][:16]}...), "
        f"ledger entry {out['ledger_seq']}"
    )


@click.command("query")
@click.argument("sql", required=False)
@click.option("--json-file", type=click.File("r"), help="the JSON form of the query instead of SQL")
@click.option("--as", "actor", default="analyst:cli", show_default=True, help="the analyst recorded")
@click.option("--approve", is_flag=True, help="also release it as the custodian when it needs approval")
@click.option("--json", "as_json", is_flag=True, help="print the whole query record as JSON")
@click.pass_context
def query(
    ctx: click.Context, sql: str | None, json_file: Any, actor: str, approve: bool, as_json: bool
) -> None:
    """Run a privacy query over the encrypted columns: appliance query "SELECT SUM(balance) FROM ..."."""
    if (sql is None) == (json_file is None):
        raise CliError('give the query as SQL ("SELECT ...") or with --json-file, not both or neither')
    body = None
    if json_file is not None:
        try:
            body = json.load(json_file)
        except ValueError as exc:
            raise CliError(f"--json-file is not JSON: {exc}") from None
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with node_from(ctx) as node:
        t0 = time.perf_counter()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),  # stdout carries the answer (and --json) only
        ) as bar:
            task = bar.add_task("computing over ciphertexts...", total=None)
            try:
                row = node.privacy.submit(actor=actor, sql=sql, query=body)
                if row.status == "awaiting_approval" and approve:
                    bar.update(task, description="custodian: decrypting and checking the guards...")
                    row = node.privacy.approve(row.id, actor="custodian:cli")
            except _errors() as exc:
                raise _refusal(exc) from None
        seconds = time.perf_counter() - t0
    if as_json:
        echo_json(row.as_dict())
        return
    click.echo(
        f"query {row.id}: {row.status} in {seconds:.2f} s (result sha256 {str(row.result_digest)[:16]}...)"
    )
    if row.status == "awaiting_approval":
        click.echo(
            f"the custodian releases it with POST /v1/queries/{row.id}/approve (or rerun with --approve)"
        )
        return
    released = row.released or {}
    for group, values in (released.get("groups") or {}).items():
        shown = ", ".join(f"{k} = {v}" for k, v in values.items())
        click.echo(f"  {group}: {shown}")
    for s in released.get("suppressed") or []:
        click.echo(f"  {s['group']}: suppressed ({s['reason']})")
    if released.get("mechanism"):
        click.echo(f"  noise: {released['mechanism']}, ε {released['epsilon']}, δ {released['delta']}")
    if "records" in released:
        echo_json(released)
