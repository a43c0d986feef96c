"""``appliance witness``: run a witness for someone's log, or choose the witnesses of this node's log.

Running a witness needs no node: ``init`` makes its key in a state directory, ``serve`` answers
c2sp.org/tlog-witness requests for the logs whose keys it is given. Choosing witnesses works on the
node: ``add`` / ``remove`` change ``<data_dir>/witnesses.json`` (each recorded in the ledger), ``list``
shows what each witness last cosigned, ``push`` sends the latest checkpoint now (the scheduler's
``ledger.witness`` job does it on its own). Exit codes: 0 done, 2 unusable input or state.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from appliance.cli_base import CLI_ACTOR, CliError, echo_json, echo_table, node_from
from appliance.errors import ApplianceError, KeyFileError
from ledger.checkpoint import NoteVerifier, load_verifier
from ledger.errors import CheckpointInvalid, LedgerError
from ledger.witness import Witness, WitnessSigner

__all__ = ["witness"]

_KEY_FILE = "witness.key"
_VKEY_FILE = "witness.vkey"


@click.group()
def witness() -> None:
    """Witness cosigning (c2sp.org/tlog-witness): run a witness, or pick this node's witnesses."""


def _state_dir(path: str) -> Path:
    return Path(path).expanduser()


@witness.command("init")
@click.option(
    "--state-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Where the witness keeps its key and state.",
)
@click.option(
    "--name", required=True, help="The witness's key name, e.g. witness.example.com/w1 (no spaces or '+')."
)
def witness_init(state_dir: str, name: str) -> None:
    """Create a witness key (0600) in --state-dir and print its verifier key, for the logs it will serve."""
    from appliance.keys import write_secret

    d = _state_dir(state_dir)
    if (d / _KEY_FILE).exists():
        raise CliError(f"{d / _KEY_FILE} exists already; a witness keeps its key (use another --state-dir)")
    try:
        signer = WitnessSigner.generate(name)
    except CheckpointInvalid as exc:
        raise CliError(f"--name: {exc}") from None
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    write_secret(d / _KEY_FILE, (signer.skey() + "\n").encode("ascii"))
    (d / _VKEY_FILE).write_text(signer.vkey() + "\n", encoding="ascii")
    click.echo(signer.vkey())
    click.echo(
        f"key in {d / _KEY_FILE} (0600); give the line above to each log that adds this witness "
        "(`appliance witness add URL KEY`)",
        err=True,
    )


def _load_witness(state_dir: str, log_keys: tuple[str, ...]) -> Witness:
    from appliance.keys import read_secret

    d = _state_dir(state_dir)
    try:
        signer = WitnessSigner.from_skey(read_secret(d / _KEY_FILE).decode("ascii"))
    except KeyFileError as exc:
        raise CliError(f"{exc}; run `appliance witness init --state-dir {d} --name NAME` first") from None
    except (CheckpointInvalid, UnicodeDecodeError) as exc:
        raise CliError(f"{d / _KEY_FILE} is not a witness key ({exc})") from None
    verifiers: list[NoteVerifier] = []
    for path in log_keys:
        try:
            text = Path(path).read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--log-key {path}: cannot read it ({exc})") from None
        try:
            verifiers.append(load_verifier(text))
        except CheckpointInvalid as exc:
            raise CliError(
                f"--log-key {path}: {exc} (give the log's C2SP verifier key, `appliance ledger pubkey`)"
            ) from None
    return Witness(signer, d / "state.json", verifiers)


@witness.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--state-dir", required=True, type=click.Path(file_okay=False), help="From `witness init`.")
@click.option(
    "--log-key",
    "log_keys",
    multiple=True,
    required=True,
    help="File with the verifier key of a log to witness (repeatable; `appliance ledger pubkey` prints one).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
def witness_serve(host: str, port: int, state_dir: str, log_keys: tuple[str, ...], workers: int) -> None:
    """Serve POST /add-checkpoint for the logs of --log-key until stopped (SIGTERM, Ctrl-C)."""
    from appliance.server.witness import serve_witness

    w = _load_witness(state_dir, log_keys)
    click.echo(f"witness {w.vkey()} on http://{host}:{port}/ for {', '.join(w.origins)}", err=True)
    serve_witness(w, host=host, port=port, workers=workers)


@witness.command("add")
@click.argument("url")
@click.argument("key")
@click.pass_context
def witness_add(ctx: click.Context, url: str, key: str) -> None:
    """Have the witness at URL (its submission prefix) cosign this node's checkpoints.

    KEY is the witness's verifier key (`appliance witness init` printed it), or a file holding it.
    """
    if "+" not in key or Path(key).is_file():
        try:
            key = Path(key).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(
                f"KEY {key!r} is neither a witness key (<name>+<key id>+<base64>) nor a file ({exc})"
            ) from None
    with node_from(ctx) as node:
        try:
            out = node.witnesses.add(url, key, actor=CLI_ACTOR)
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
    click.echo(
        f"added witness {out['name']} (key id {out['key_id']}) at {out['url']}; "
        f"ledger entry {out['ledger_seq']}"
    )
    if out["job_scheduled"]:
        click.echo(
            "the scheduler's ledger.witness job pushes checkpoints to it; `appliance witness push` now"
        )
    else:
        click.echo("the ledger.witness job starts with the scheduler; `appliance witness push` pushes now")


@witness.command("remove")
@click.argument("name")
@click.pass_context
def witness_remove(ctx: click.Context, name: str) -> None:
    """Stop asking the witness NAME to cosign; its past cosignatures stay valid."""
    with node_from(ctx) as node:
        try:
            out = node.witnesses.remove(name, actor=CLI_ACTOR)
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"removed witness {out['name']} ({out['url']}); ledger entry {out['ledger_seq']}")


@witness.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON, with the verifier keys.")
@click.pass_context
def witness_list(ctx: click.Context, as_json: bool) -> None:
    """The configured witnesses and what each last cosigned."""
    with node_from(ctx, readonly=True) as node:
        try:
            rows = node.witnesses.status()
        except ApplianceError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no witnesses; add one with `appliance witness add URL KEY`")
        return
    echo_table(
        "witnesses",
        ["name", "url", "key id", "cosigned size", "last cosigned", "failures", "last error"],
        [
            [
                r["name"],
                r["url"],
                r["key_id"],
                r["cosigned_size"],
                r["last_cosigned"],
                r["failures"],
                r["last_error"],
            ]
            for r in rows
        ],
    )


@witness.command("push")
@click.pass_context
def witness_push(ctx: click.Context) -> None:
    """Push the latest checkpoint to every witness now (the ledger.witness job, run here)."""
    from appliance.jobs import JobError, run_job_now
    from appliance.witnesses import summary_line

    with node_from(ctx) as node:
        if not node.witnesses.configured:
            raise CliError("no witnesses configured; add one with `appliance witness add URL KEY`")
        try:
            run = run_job_now(node, "ledger.witness")
        except (JobError, LedgerError) as exc:
            raise CliError(str(exc)) from None
    if run["status"] != "succeeded":
        raise CliError(f"the ledger.witness job {run['status']}: {run.get('error')}")
    detail = run.get("detail") or {}
    click.echo(summary_line(detail))
    if detail.get("failed"):
        ctx.exit(1)
