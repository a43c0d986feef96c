"""``appliance anchor``: deploy the anchor contract, anchor now, show and verify the anchorings.

The scheduler's ``ledger.anchor`` job anchors on its own once ``anchor.chain`` is set; these
commands are for setting up, for operators who do not want to wait, and for audits. Exit codes:
0 done, 1 ``verify`` found an anchoring the chain does not back, 2 unusable input or state (the chain
unreachable, a refused transaction, a setting missing), with a message saying what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from appliance.cli_base import CLI_ACTOR, echo_json, echo_table, node_from

__all__ = ["anchor"]


@click.group()
def anchor() -> None:
    """Anchor signed checkpoints to Ethereum or Hyperledger Fabric (docs/anchoring.md)."""


@anchor.command("deploy")
@click.option("--chain", type=click.Choice(["ethereum"]), default="ethereum", show_default=True)
@click.option("--rpc", "rpc_url", required=True, help="JSON-RPC endpoint, http(s)://host:port/...")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="file (mode 0600) holding the account's private key in hex; the account pays for gas",
)
@click.option(
    "--chain-id", type=click.IntRange(min=1), help="refuse to deploy unless the RPC serves this chain"
)
@click.option("--replace", is_flag=True, help="deploy a new contract although this node has one")
@click.pass_context
def deploy(
    ctx: click.Context, chain: str, rpc_url: str, key_file: Path, chain_id: int | None, replace: bool
) -> None:
    """Deploy the anchor contract from the account in --key; the node anchors there from then on.

    The key is copied into the node's data dir (keys/anchor-ethereum.key, 0600); the contract address
    goes to anchor.json and a ledger.anchor_deployed entry.
    """
    with node_from(ctx) as node:
        out = node.anchoring.deploy(
            chain=chain,
            rpc_url=rpc_url,
            key_file=key_file,
            chain_id=chain_id,
            replace_existing=replace,
            actor=CLI_ACTOR,
        )
        active = node.settings.anchor.chain == "ethereum"
    click.echo(
        f"deployed anchor contract {out['contract']} on chain {out['network']} "
        f"(transaction {out['tx']}, block {out['block']}; ledger entry {out['ledger_seq']})"
    )
    click.echo(f"owner account {out['owner']}; its key is kept in {out['key_file']} (0600)")
    if active:
        click.echo("anchor.chain is ethereum: the scheduler's ledger.anchor job anchors from now on")
    else:
        click.echo(
            "to anchor, set `anchor: {chain: ethereum}` in your settings (or "
            "APPLIANCE_ANCHOR__CHAIN=ethereum) and restart the scheduler; "
            "then `appliance anchor run` anchors at once"
        )


def _record_line(rec: dict[str, Any]) -> str:
    block = rec.get("block")
    return (
        f"size {rec['tree_size']} root {rec['root'][:16]}.. on {rec['chain']} {rec['network']} "
        f"tx {rec['tx']} block {block if block is not None else '-'} ({rec['status']})"
    )


@anchor.command("run")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def run(ctx: click.Context, as_json: bool) -> None:
    """Follow pending anchorings, then anchor the latest checkpoint now (signing one if the log grew)."""
    with node_from(ctx) as node:
        service = node.anchoring
        refreshed = service.refresh(actor=CLI_ACTOR)
        out = service.anchor_now(actor=CLI_ACTOR)
    if as_json:
        echo_json({"refresh": refreshed, **out})
        return
    for size in refreshed["dropped"]:
        click.echo(f"anchor of size {size} was dropped by a chain reorganisation")
    for rec in refreshed["reanchored"]:
        click.echo("anchored again: " + _record_line(rec))
    if out["anchored"] is None:
        click.echo(f"nothing to anchor: {out['reason']}")
    else:
        click.echo(f"anchored {_record_line(out['anchored'])}; ledger entry {out['anchored']['ledger_seq']}")


@anchor.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="list every anchoring, not only the last ten")
@click.pass_context
def status(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """Where anchoring goes, the last anchoring and its age, pending/dropped counts, failures."""
    with node_from(ctx, readonly=True) as node:
        service = node.anchoring
        st = service.status()
        records = [r.as_dict() for r in service.records()]
    if as_json:
        echo_json({"status": st, "anchors": records})
        return
    if not st["configured"]:
        click.echo("anchoring is not configured (anchor.chain: none); see docs/anchoring.md")
    else:
        where = f"{st['chain']} {st['network'] or '?'} contract {st['contract'] or '?'}"
        click.echo(f"anchoring to {where}" + (f" via {st['rpc']}" if st["rpc"] else ""))
    age = st["last_anchor_age_seconds"]
    click.echo(
        f"log size {st['log_size']}, anchored size {st['anchored_size']}, "
        f"{st['unanchored_entries']} entries not anchored yet"
        + (f"; last anchoring {age:.0f} s ago" if age is not None else "")
    )
    c = st["counts"]
    click.echo(f"{c['confirmed']} confirmed, {c['pending']} pending, {c['dropped']} dropped")
    if st["failures"]:
        click.echo(
            f"{st['failures']} failed attempt(s) in a row; next try after {st['next_attempt']}: "
            f"{st['last_error']}"
        )
    shown = records if show_all else records[-10:]
    if shown:
        echo_table(
            "anchorings",
            ["size", "root", "chain", "network", "tx", "block", "status", "time"],
            [
                [
                    r["tree_size"],
                    r["root"][:16] + "..",
                    r["chain"],
                    r["network"],
                    r["tx"],
                    r["block"],
                    r["status"],
                    r["time"],
                ]
                for r in reversed(shown)
            ],
        )


@anchor.command("verify")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Read every anchored size back from the chain and compare it with this ledger; exit 1 on a mismatch."""
    with node_from(ctx, readonly=True) as node:
        rows = node.anchoring.verify()
    bad = [r for r in rows if not r["ok"]]
    if as_json:
        echo_json({"ok": not bad, "anchors": rows})
    else:
        if not rows:
            click.echo("no anchorings to verify")
        for r in rows:
            mark = "ok  " if r["ok"] else "FAIL"
            tail = "" if r["ok"] else f": {r['problem']}"
            click.echo(f"{mark} size {r['tree_size']} tx {r['tx'] or '-'} block {r['block']}{tail}")
        if rows:
            click.echo(f"{len(rows) - len(bad)} of {len(rows)} anchorings verified on chain")
    if bad:
        ctx.exit(1)
