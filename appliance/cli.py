"""The ``appliance`` command: install, run and inspect a node.

Exit codes: 0 success, 1 a check found a problem (``ledger verify``), 2 the
input or the node's state is unusable (the message says what to fix). A
traceback is never the answer to bad input.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from appliance.cli_base import CLI_ACTOR as _CLI_ACTOR
from appliance.cli_base import CliError
from appliance.cli_base import echo_json as _echo_json
from appliance.cli_base import node_from as _node
from appliance.cli_base import settings_from as _settings
from appliance.errors import ApplianceError
from appliance.keys import ROLES
from appliance.logs import configure_logging
from appliance.node import Node, NodeError
from ledger import LedgerError
from ledger.checkpoint import NoteVerifier, load_verifier
from ledger.errors import CheckpointInvalid

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    envvar="APPLIANCE_CONFIG",
    help="Settings file (YAML) over the defaults; env APPLIANCE_CONFIG.",
)
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Node data directory (overrides node.data_dir)."
)
@click.version_option("0.1.0", prog_name="appliance")
@click.pass_context
def cli(ctx: click.Context, config: str | None, data_dir: str | None) -> None:
    """The appliance: privacy-first, provable, proactive customer service.

    \b
    First steps:
      appliance init --demo      create a node with demo API keys
      appliance serve            serve the HTTP API (and the scheduler)
      appliance ledger verify    check the whole audit ledger offline

    Settings come from config/appliance.yaml, then --config FILE, then
    APPLIANCE_<SECTION>__<KEY> environment variables.
    """
    ctx.ensure_object(dict).update(config=config, data_dir=data_dir)


# -- init / serve / scheduler --------------------------------------------------------------
@cli.command()
@click.option("--demo", is_flag=True, help="Also keep the API keys in demo-api-keys.json (0600) for `serve`.")
@click.option("--if-missing", is_flag=True, help="Do nothing (exit 0) when the node already exists.")
@click.pass_context
def init(ctx: click.Context, demo: bool, if_missing: bool) -> None:
    """Create a node: data dir, Ed25519 signing key, pseudonym key, one API key per role.

    The API keys are printed once; only their hashes are stored.
    """
    settings = _settings(ctx)
    if if_missing and Node.exists(settings):
        click.echo(f"node already initialised in {settings.data_dir}")
        return
    try:
        result = Node.init(settings, demo=demo)
    except (NodeError, LedgerError, OSError) as exc:
        raise CliError(f"init failed: {exc}") from None
    click.echo(f"initialised node {result.origin} in {result.data_dir}")
    click.echo(f"ledger public key: {result.vkey}")
    click.echo("API keys (shown once; store them now):")
    for role, token in result.api_keys.items():
        click.echo(f"  {role:<10} {token}")


@cli.command()
@click.option("--host", help="Bind address (default from settings: 127.0.0.1).")
@click.option("--port", type=int, help="Port (default from settings: 8080).")
@click.option("--workers", type=int, help="Gunicorn worker processes.")
@click.option("--no-scheduler", is_flag=True, help="Do not start the scheduler process.")
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, workers: int | None, no_scheduler: bool
) -> None:
    """Serve the HTTP API with gunicorn (and run the scheduler beside it)."""
    from appliance.serve import serve as run_server

    settings = _settings(ctx)
    server = settings.server.model_copy(
        update={k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    )
    settings = settings.model_copy(update={"server": server})
    if not Node.exists(settings):
        raise CliError(f"no node in {settings.data_dir}; run `appliance init` first")
    try:
        run_server(settings, ctx.obj.get("config"), scheduler=not no_scheduler)
    except ApplianceError as exc:  # TLS files missing, unreadable or readable by others
        raise CliError(str(exc)) from None


@cli.command()
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Run the periodic jobs (checkpoint signing) in the foreground."""
    from appliance.scheduler import run_scheduler

    configure_logging(_settings(ctx).logging.level)
    with _node(ctx) as node:
        run_scheduler(node)


# -- keys ---------------------------------------------------------------------------------
@cli.group()
def keys() -> None:
    """API keys and their roles (stored as argon2id hashes; tokens are shown once)."""


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from appliance.key_service import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List API keys: id, role, state, created, expiry, label (secrets are never stored)."""
    with _node(ctx, readonly=True) as node:
        rows = node.keys.list()
    if as_json:
        _echo_json([{**k.__dict__, "state": k.state} for k in rows])
        return
    for k in rows:
        expires = f"expires {k.expires}" if k.expires else "no expiry"
        grace = f"  old secret until {k.grace_until}" if k.grace_until and not k.revoked else ""
        click.echo(f"{k.key_id}  {k.role:<10} {k.state:<8} {k.created}  {expires}  {k.label}{grace}")


@keys.command("create")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--label", default="", help="What the key is for.")
@click.option(
    "--expires",
    callback=_duration,
    metavar="DURATION",
    help="Stop working after e.g. 90d, 12h (default: never).",
)
@click.pass_context
def keys_create(ctx: click.Context, role: str, label: str, expires: Any) -> None:
    """Issue an API key for ROLE and print it once."""
    from appliance.key_service import ApiKeyService

    with _node(ctx) as node:
        try:
            change = ApiKeyService(node).create(role, actor=_CLI_ACTOR, label=label, expires_in=expires)
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
    click.echo(change.token)


@keys.command("rotate")
@click.argument("key_id")
@click.option(
    "--grace",
    callback=_duration,
    default="0",
    metavar="SECONDS",
    help="The old secret keeps working this long (seconds, or 15m, 12h, 7d); default 0.",
)
@click.pass_context
def keys_rotate(ctx: click.Context, key_id: str, grace: Any) -> None:
    """Give KEY_ID a new secret (same id and role) and print the new token once."""
    from appliance.key_service import ApiKeyService

    with _node(ctx) as node:
        try:
            change = ApiKeyService(node).rotate(key_id, actor=_CLI_ACTOR, grace=grace)
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
    click.echo(change.token)


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke an API key by id; every server worker refuses it from its next request."""
    from appliance.key_service import ApiKeyService

    with _node(ctx) as node:
        try:
            ApiKeyService(node).revoke(key_id, actor=_CLI_ACTOR, keep_an_admin=False)
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"revoked {key_id}")


# -- ledger -------------------------------------------------------------------------------
@cli.group()
def ledger() -> None:
    """The audit ledger: head, proofs, evidence bundles, full verification."""


@ledger.command("head")
@click.option("--sign", is_flag=True, help="Sign a fresh checkpoint first.")
@click.pass_context
def ledger_head(ctx: click.Context, sign: bool) -> None:
    """Show the latest signed checkpoint (tree head) with its witness cosignatures, and the current size."""
    with _node(ctx) as node:
        signed = node.ledger.sign_checkpoint() if sign else node.ledger.latest_checkpoint()
        try:
            checkpoint = node.witnesses.view(signed) if signed else None
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
        out = {
            "size": node.ledger.size,
            "root_hash": node.ledger.root().hex(),
            "checkpoint": checkpoint,
        }
    _echo_json(out)


@ledger.command("append")
@click.option("--action", required=True, help="Dotted verb, e.g. test.note")
@click.option("--subject", multiple=True, help="Pseudonym kind:hex (repeatable).")
@click.option("--details", default="{}", help="JSON object.")
@click.pass_context
def ledger_append(ctx: click.Context, action: str, subject: tuple[str, ...], details: str) -> None:
    """Append an entry as the admin (for testing and drills)."""
    try:
        parsed = json.loads(details)
    except ValueError as exc:
        raise CliError(
            f'--details is not JSON ({exc}); give an object such as \'{{"note": "drill"}}\''
        ) from None
    with _node(ctx) as node:
        r = node.record(_CLI_ACTOR, action, list(subject), parsed)
    _echo_json({"seq": r.seq, "leaf_hash": r.leaf_hash.hex(), "time": r.time})


@ledger.command("prove")
@click.option("--seq", type=click.IntRange(min=0), help="Entry to prove included.")
@click.option("--from", "first", type=click.IntRange(min=0), help="Old tree size to prove consistent.")
@click.option("--size", type=click.IntRange(min=0), help="Tree size (default: latest checkpoint).")
@click.pass_context
def ledger_prove(ctx: click.Context, seq: int | None, first: int | None, size: int | None) -> None:
    """Print an inclusion proof (--seq) or a consistency proof (--from) as JSON."""
    if (seq is None) == (first is None):
        raise CliError("give exactly one of --seq N (inclusion) or --from M (consistency)")
    with _node(ctx) as node:
        led = node.ledger
        if size is None:
            latest = led.latest_checkpoint()
            size = latest.checkpoint.tree_size if latest else led.size
        if seq is not None:
            _echo_json(led.inclusion_evidence(seq, size))
        else:
            assert first is not None
            _echo_json(led.consistency_evidence(first, size))


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """ISO 8601 date or date and time (``2026-01-31``, ``2026-01-31T09:00:00+08:00``); UTC unless zoned."""
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T09:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@ledger.command("export")
@click.option("--subject", help="Entries about this pseudonym (kind:hex; `appliance subject show ID`).")
@click.option("--action", help="Entries of this action, or a prefix such as 'record.*'.")
@click.option("--from", "since", callback=_moment, help="Entries at or after this time (ISO 8601; UTC).")
@click.option("--to", "until", callback=_moment, help="Entries before this time.")
@click.option("--seq", "seqs", type=click.IntRange(min=0), multiple=True, help="Also this entry (repeatable)")
@click.option(
    "--max-entries",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    show_default=True,
    help="Refuse (rather than cut) a larger selection.",
)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True, help="Bundle file.")
@click.pass_context
def ledger_export(
    ctx: click.Context,
    subject: str | None,
    action: str | None,
    since: Any,
    until: Any,
    seqs: tuple[int, ...],
    max_entries: int,
    out: str,
) -> None:
    """Write an evidence bundle (format 2) that `appliance-verify bundle` checks offline.

    Filters combine (an entry must match all given); --seq entries are added. The bundle holds the
    entries with inclusion proofs, the checkpoint with its witness cosignatures, every anchored
    checkpoint with a consistency proof and the anchor references.
    """
    from appliance.evidence import Selection, export_bundle

    if not (subject or action or since or until or seqs):
        raise CliError("select entries with --subject, --action, --from/--to or --seq")
    selection = Selection(subject, action, since, until, tuple(seqs))
    with _node(ctx) as node:
        try:
            bundle = export_bundle(node, selection, actor=_CLI_ACTOR, max_entries=max_entries)
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
        vkey = node.vkey
    target = Path(out)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    n = len(bundle["entries"])
    cosigs = max(0, bundle["checkpoint"].count("\n\u2014 ") - 1)
    click.echo(
        f"wrote {out} ({n} entr{'y' if n == 1 else 'ies'}, checkpoint with {cosigs} cosignature(s), "
        f"{len(bundle['anchors'])} anchor(s)); verify with:"
    )
    click.echo(f"  appliance-verify bundle {out} --pubkey <file holding: {vkey}>")


@ledger.command("pubkey")
@click.pass_context
def ledger_pubkey(ctx: click.Context) -> None:
    """Print the node's checkpoint verifier key (C2SP vkey) for auditors."""
    with _node(ctx, readonly=True) as node:
        click.echo(node.vkey)


@ledger.command("verify")
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False),
    help="Verifier key file (default: the node's ledger.pub).",
)
@click.option(
    "--path",
    "ledger_path",
    type=click.Path(exists=True, file_okay=False),
    help="A ledger directory to check instead of the node's.",
)
@click.pass_context
def ledger_verify(ctx: click.Context, pubkey: str | None, ledger_path: str | None) -> None:
    """Re-derive the chain, the tree and every checkpoint signature; name the first bad item."""
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    from ledger.verify import verify_ledger

    if ledger_path is None:
        data_dir = _settings(ctx).data_dir
        ledger_path = str(Node.paths(data_dir)["ledger"])
        pubkey = pubkey or str(Node.paths(data_dir)["vkey"])
    verifier = _load_verifier(pubkey)
    if not os.path.exists(os.path.join(ledger_path, "LEDGER")):
        raise CliError(f"{ledger_path} holds no ledger; give --path or initialise a node")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
        console=None,
    ) as bar:
        task = bar.add_task("verifying", total=1.0)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done / total)

        report = verify_ledger(ledger_path, verifier, progress)
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    if report.ok:
        click.echo(
            f"OK: {report.entries} entries, {report.checkpoints} checkpoints, root {report.root_hash.hex()}"
        )
        return
    for p in report.problems:
        click.echo(f"INVALID: {p}")
    ctx.exit(1)


def _load_verifier(path: str | None) -> NoteVerifier | None:
    if path is None or not os.path.exists(path):
        return None
    try:
        return load_verifier(Path(path).read_text(encoding="utf-8").strip())
    except (CheckpointInvalid, OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: not a verifier key ({exc})") from None


# -- store --------------------------------------------------------------------------------
@cli.group("store")
def store_group() -> None:
    """The customer data store: imports, field key rotation, counts, demo data."""


@contextmanager
def _store_progress() -> Iterator[Any]:
    """A rich progress bar on stderr (stdout stays parseable); silent when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


@store_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", type=click.Choice(["customers", "events"]), default="customers", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), help="Default: from the extension."
)
@click.option(
    "--dry-run", is_flag=True, help="Check every row against the schema and the store; write nothing."
)
@click.pass_context
def store_import(ctx: click.Context, file: str, kind: str, fmt: str | None, dry_run: bool) -> None:
    """Import customers or events from FILE (CSV, JSONL or Parquet).

    Every row is checked before the first write, so a bad row stops the import with
    its line number and nothing is written; rows then go in batches of
    store.import_batch_rows, one transaction each.
    """
    from appliance.store import ImportRejected, StoreError, import_file

    with _node(ctx) as node:
        try:
            with _store_progress() as progress:
                report = import_file(
                    node.store,
                    file,
                    kind=kind,  # type: ignore[arg-type]
                    fmt=fmt,
                    batch_rows=node.settings.store.import_batch_rows,
                    dry_run=dry_run,
                    progress=progress,
                    source=file,
                )
        except ImportRejected as exc:
            if exc.written:  # the database failed mid-import: what did get in is a state change
                node.record(
                    _CLI_ACTOR,
                    "store.imported",
                    details={"kind": kind, "rows": exc.written, "complete": False},
                )
            raise CliError(str(exc)) from None
        except StoreError as exc:
            raise CliError(str(exc)) from None
        if not dry_run:
            node.record(
                _CLI_ACTOR,
                "store.imported",
                details={
                    "kind": kind,
                    "format": report.format,
                    "rows": report.written,
                    "batches": report.batches,
                    "sha256": report.sha256,
                    "complete": True,
                },
            )
    if dry_run:
        click.echo(f"{file}: {report.rows} {kind} rows checked, no problems found (dry run: nothing written)")
    else:
        click.echo(
            f"imported {report.written} {kind} from {file} in {report.batches} batches "
            f"(sha256 {report.sha256})"
        )


@store_group.command("rotate-keys")
@click.option("--batch-rows", type=click.IntRange(1, 100_000), default=500, show_default=True)
@click.pass_context
def store_rotate_keys(ctx: click.Context, batch_rows: int) -> None:
    """Re-encrypt every sensitive value under a new field key, then destroy the old keys.

    Safe to interrupt: old keys keep working until every value has moved; run it again to finish.
    """
    from appliance.store import StoreError

    with _node(ctx) as node:
        try:
            with _store_progress() as progress:
                report = node.store.rotate_keys(
                    batch_rows=batch_rows, progress=lambda done, total: progress("re-encrypting", done, total)
                )
        except StoreError as exc:
            raise CliError(str(exc)) from None
        node.record(_CLI_ACTOR, "store.keys_rotated", details=report.as_dict())
    retired = ", ".join(report.retired) or "none"
    click.echo(
        f"new field key {report.new_key_id}; re-encrypted {report.reencrypted} values, re-wrapped "
        f"{report.rewrapped} subject keys; retired: {retired}"
    )


@store_group.command("stats")
@click.pass_context
def store_stats(ctx: click.Context) -> None:
    """Counts of customers, events, transcripts and the field keys' states (no values) as JSON."""
    from appliance.store import StoreError

    with _node(ctx, readonly=True) as node:
        try:
            stats = node.store.stats()
        except StoreError as exc:
            raise CliError(str(exc)) from None
    _echo_json(stats)


@store_group.command("demo")
@click.option("--customers", "n", type=click.IntRange(1, 1_000_000), default=3000, show_default=True)
@click.option("--seed", type=int, help="Same seed, same data (default: a random seed).")
@click.pass_context
def store_demo(ctx: click.Context, n: int, seed: int | None) -> None:
    """Load generated bilingual demo customers, events and chat transcripts."""
    import secrets

    from appliance.store import StoreError, load_demo

    seed = secrets.randbelow(10**9) if seed is None else seed
    with _node(ctx) as node:
        try:
            with _store_progress() as progress:
                report = load_demo(
                    node.store, n, seed=seed, progress=lambda done, total: progress("customers", done, total)
                )
        except StoreError as exc:
            raise CliError(
                f"{exc} (demo data of seed {seed} may be loaded already; give another --seed)"
            ) from None
        node.record(_CLI_ACTOR, "store.demo_loaded", details=report.as_dict())
    click.echo(
        f"loaded demo data (seed {seed}): {report.customers} customers, {report.events} events, "
        f"{report.transcripts} transcripts ({report.messages} messages)"
    )


@cli.command()
@click.option(
    "--role", default="agent", show_default=True, help="Whose view: agent, bot, supervisor, auditor, ops."
)
@click.option(
    "--region", help="Profile region (CN, US, EU, a country code ...); default: masking.default_region."
)
@click.option(
    "--spans", is_flag=True, help="Add `entities: [{type, start, end, score}]` (offsets into the input)."
)
@click.option(
    "--entities", "entity_list", help="Detect only these types (comma-separated, e.g. CN_MOBILE,EMAIL)."
)
@click.option("--csv", "csv_mode", is_flag=True, help="Input is a CSV file; mask the --columns.")
@click.option(
    "--columns",
    help="CSV columns to mask, comma-separated; `col` is scanned as free text, `col=TYPE` masked as TYPE.",
)
@click.option(
    "--input",
    "-i",
    "input_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Default: standard input.",
)
@click.option(
    "--output", "-o", "output_path", type=click.Path(dir_okay=False), help="Default: standard output."
)
@click.pass_context
def mask(
    ctx: click.Context,
    role: str,
    region: str | None,
    spans: bool,
    entity_list: str | None,
    csv_mode: bool,
    columns: str | None,
    input_path: str | None,
    output_path: str | None,
) -> None:
    """Mask JSON lines (`{"text": ...}` per line) or CSV columns as ROLE may see them.

    Everything is checked and masked before anything is written: a bad line stops the
    run with its line number (exit 2) and the output stays untouched. One ledger entry
    records the run (counts per entity type, the profile version), never the text.
    """
    from appliance.masking import MaskingError
    from appliance.masking.files import MaskInputError, mask_csv, mask_jsonl

    entities = [e.strip() for e in entity_list.split(",") if e.strip()] if entity_list else None
    if csv_mode and not columns:
        raise CliError("--csv needs --columns (e.g. --columns notes,mobile=CN_MOBILE)")
    if columns and not csv_mode:
        raise CliError("--columns applies to --csv input only")
    source = open(input_path, "rb") if input_path else sys.stdin.buffer
    try:
        with _node(ctx) as node:
            try:
                node.masking.profile(role, region)  # unknown role/region: refuse before reading input
                node.masking.check_entities(entities)
                with _store_progress() as progress:
                    if csv_mode:
                        assert columns is not None
                        result = mask_csv(
                            node.masking, source, columns, role=role, region=region, progress=progress
                        )
                    else:
                        result = mask_jsonl(
                            node.masking,
                            source,
                            role=role,
                            region=region,
                            entities=entities,
                            spans=spans,
                            progress=progress,
                        )
            except (MaskInputError, MaskingError) as exc:
                raise CliError(f"{input_path or '<stdin>'}: {exc}; nothing was written") from None
            with result:
                node.record(_CLI_ACTOR, "text.masked", details=result.summary())
                result.write_to(output_path)
    finally:
        if input_path:
            source.close()


@cli.group()
def profiles() -> None:
    """Masking profiles: check a file before it goes live, show what a role sees."""


def _profiles(ctx: click.Context, path: str | None) -> Any:
    from appliance.masking import MaskingError
    from appliance.masking.service import load_profiles

    source = Path(path) if path else _settings(ctx).masking.profiles
    try:
        return load_profiles(source)
    except MaskingError as exc:
        raise CliError(str(exc)) from None


@profiles.command("check")
@click.argument("path", required=False, type=click.Path(exists=True))
@click.pass_context
def profiles_check(ctx: click.Context, path: str | None) -> None:
    """Validate PATH (a file or a directory; default: the node's profiles) and print its version.

    The version is what ledger entries name; a node records a new one when it first runs it.
    """
    loaded = _profiles(ctx, path)
    click.echo(f"OK: profile set {loaded.version}")
    for p in loaded.profiles:
        click.echo(f"  {p.key}: default {p.default.name}, {len(p.operators)} entity types listed")
    if loaded.aliases:
        click.echo("  aliases: " + ", ".join(f"{a} → {r}" for a, r in sorted(loaded.aliases.items())))
    click.echo("  may de-tokenise: " + ", ".join(sorted(loaded.detokenize_roles)))


@profiles.command("show")
@click.argument("role")
@click.option("--region", help="Region code (CN, DE, EU, ...); default: the role's default profile.")
@click.option(
    "--path", type=click.Path(exists=True), help="Profiles file or directory (default: the node's)."
)
@click.pass_context
def profiles_show(ctx: click.Context, role: str, region: str | None, path: str | None) -> None:
    """Print the operator ROLE gets for every entity type in REGION, after regional merging."""
    from appliance.masking import ENTITY_TYPES, MaskingError

    loaded = _profiles(ctx, path)
    try:
        profile = loaded.resolve(role, region)
    except MaskingError as exc:
        raise CliError(str(exc)) from None
    view = {t: profile.operator_for(t).describe() for t in sorted(ENTITY_TYPES)}
    _echo_json({"profile": profile.key, "version": loaded.version, "entities": view})


@cli.group("policy")
def policy_group() -> None:
    """The policy library: publish, roll back, check replies, test, lint, diff."""


#: `policy check` exit codes: what a script sending the reply needs to know.
_DECISION_EXIT = {"allow": 0, "rewrite": 3, "review": 3, "block": 4}


def _library(ctx: click.Context, ref: str) -> Any:
    """A library from a directory, or a published version id of the node."""
    from appliance.policy_registry import PolicyVersionError
    from policy import PolicyError, PolicyLibrary

    try:
        if os.path.isdir(ref):
            return PolicyLibrary.from_dir(ref)
        with _node(ctx, readonly=True) as node:
            return node.policy.library(ref)
    except (PolicyError, PolicyVersionError) as exc:
        raise CliError(str(exc)) from None


@policy_group.command("publish")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.pass_context
def policy_publish(ctx: click.Context, directory: str) -> None:
    """Validate DIRECTORY, sign it as a new version and make it live; running workers switch to it.

    Nothing changes when the library is invalid: the live version stays in force.
    """
    from appliance.policy_registry import PolicyVersionError
    from policy import PolicyError

    with _node(ctx) as node:
        try:
            version = node.publish_policy(Path(directory), actor=_CLI_ACTOR)
        except (PolicyError, PolicyVersionError) as exc:
            raise CliError(str(exc)) from None
    click.echo(f"published {version.id} ({version.rules} rules); it is live")


@policy_group.command("rollback")
@click.argument("version")
@click.pass_context
def policy_rollback(ctx: click.Context, version: str) -> None:
    """Make an earlier published VERSION (an id from `policy versions`) live again."""
    from appliance.policy_registry import PolicyVersionError
    from policy import PolicyError

    with _node(ctx) as node:
        try:
            done = node.rollback_policy(version, actor=_CLI_ACTOR)
        except (PolicyError, PolicyVersionError) as exc:
            raise CliError(str(exc)) from None
    click.echo(f"{done.id} is live again")


@policy_group.command("versions")
@click.pass_context
def policy_versions(ctx: click.Context) -> None:
    """Published versions, oldest first; the live one is marked with *."""
    from appliance.policy_registry import PolicyVersionError

    with _node(ctx, readonly=True) as node:
        try:
            live = node.policy.live_id()
            for v in node.policy.versions():
                mark = "*" if v.id == live else " "
                click.echo(f"{mark} {v.id}  {v.published}  {v.rules} rules  sha256 {v.content_hash}")
        except PolicyVersionError as exc:
            raise CliError(str(exc)) from None


@policy_group.command("check")
@click.option("--region", required=True, help="ISO 3166-1/3166-2 code: CN, CN-GD, US-CA, DE.")
@click.option(
    "--industry", required=True, help="finance, insurance, healthcare, retail, food, telecom, government."
)
@click.option("--channel", default="chat", show_default=True, help="chat, voice, email, sms, social.")
@click.argument("text")
@click.pass_context
def policy_check(ctx: click.Context, region: str, industry: str, channel: str, text: str) -> None:
    """Check TEXT (or - for standard input) as an outgoing reply; print the decision as JSON.

    Exit 0 allow, 3 rewrite or review, 4 block, 2 unusable input. The decision is recorded.
    """
    from appliance.policy_registry import PolicyVersionError
    from policy import PolicyError

    if text == "-":
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CliError(f"standard input is not valid UTF-8 (byte {exc.start + 1})") from None
    with _node(ctx) as node:
        try:
            result = node.policy.evaluator().check_reply(
                text, region=region, industry=industry, channel=channel
            )
        except (PolicyError, PolicyVersionError) as exc:
            raise CliError(str(exc)) from None
        node.record_reply_check(_CLI_ACTOR, text, result, region=region, industry=industry, channel=channel)
    _echo_json(
        {
            "decision": result.decision,
            "text": result.text,
            "findings": [
                {
                    "rule": f.rule,
                    "action": f.action,
                    "start": f.start,
                    "end": f.end,
                    "matched": f.matched,
                    "source": f.source,
                }
                for f in result.findings
            ],
            "policy_version": result.policy_version,
        }
    )
    ctx.exit(_DECISION_EXIT.get(result.decision, 0))


@policy_group.command("diff")
@click.argument("old")
@click.argument("new")
@click.pass_context
def policy_diff(ctx: click.Context, old: str, new: str) -> None:
    """Rules added, removed and changed from OLD to NEW (each a version id or a library directory)."""
    from policy import diff

    _echo_json(diff(_library(ctx, old), _library(ctx, new)).as_dict())


@policy_group.command("test")
@click.argument("cases", type=click.Path(exists=True, file_okay=False))
@click.option("--library", "library_ref", help="Library directory or version id (default: the live version).")
@click.option(
    "--min-coverage", type=click.FloatRange(0, 1), default=0.0, help="Fail below this rule coverage."
)
@click.pass_context
def policy_test(ctx: click.Context, cases: str, library_ref: str | None, min_coverage: float) -> None:
    """Run the YAML test cases in CASES (input + expected decision) against a library; report coverage.

    Exit 0 when every case passes (and coverage is reached), 1 otherwise.
    """
    from policy import PolicyError, run_tests

    if library_ref is None:
        with _node(ctx, readonly=True) as node:
            library_ref = node.policy.live_id()
        if library_ref is None:
            raise CliError("no policy version is live; give --library DIR")
    library = _library(ctx, library_ref)
    try:
        report = run_tests(library, cases)
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    for case in report.cases:
        click.echo(f"{'PASS' if case.passed else 'FAIL'} {case.file}: {case.name}")
        for problem in case.problems:
            click.echo(f"     {problem}")
    click.echo(
        f"{len(report.cases) - len(report.failures)}/{len(report.cases)} cases passed; "
        f"rule coverage {report.coverage:.0%} ({len(report.covered)} of "
        f"{len(report.covered) + len(report.uncovered)})"
    )
    if report.uncovered:
        click.echo("not exercised: " + ", ".join(report.uncovered))
    if not report.passed or report.coverage < min_coverage:
        ctx.exit(1)


@policy_group.command("lint")
@click.argument("library_ref", required=False)
@click.pass_context
def policy_lint(ctx: click.Context, library_ref: str | None) -> None:
    """Report rules that never fire, shadowed phrases, missing sources, expired rules (exit 1 on errors)."""
    from policy import lint

    if library_ref is None:
        with _node(ctx, readonly=True) as node:
            library_ref = node.policy.live_id()
        if library_ref is None:
            raise CliError("no policy version is live; give a library directory")
    issues = lint(_library(ctx, library_ref))
    for issue in issues:
        click.echo(str(issue))
    errors = sum(1 for i in issues if i.severity == "error")
    click.echo(f"{errors} errors, {len(issues) - errors} warnings")
    if errors:
        ctx.exit(1)


# -- the proactive service (command groups in their own modules) ----------------------------------------
@cli.command("doctor")
@click.option("--quick", is_flag=True, help="skip the full ledger verification")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def doctor(ctx: click.Context, quick: bool, as_json: bool) -> None:
    """Check keys, permissions, disk, store, ledger, policy, scheduler, privacy keys; exit 1 on a failure."""
    from appliance.doctor import exit_code, run_checks

    checks = list(run_checks(_settings(ctx), verify_ledger=not quick))
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2, ensure_ascii=False))
    else:
        for c in checks:
            click.echo(f"{c.status.upper():<5} {c.name:<10} {c.detail}")
    ctx.exit(exit_code(checks))


def _register_groups() -> None:
    from appliance.cli_jobs import jobs
    from appliance.cli_model import model
    from appliance.cli_privacy import privacy, query
    from appliance.cli_proactive import consent, playbooks, suppress, triggers

    for command in (jobs, model, playbooks, triggers, consent, suppress, privacy, query):
        cli.add_command(command)

    from appliance.cli_backup import backup, restore

    cli.add_command(backup)
    cli.add_command(restore)

    from appliance.cli_anchor import anchor

    cli.add_command(anchor)

    from appliance.cli_subject import subject

    cli.add_command(subject)

    from appliance.cli_witness import witness

    cli.add_command(witness)

    from appliance.cli_metrics import metrics_group

    cli.add_command(metrics_group)


_register_groups()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI, map uncaught domain errors to exit code 2."""
    try:
        cli.main(args=argv, prog_name="appliance", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
