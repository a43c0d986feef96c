"""``appliance playbooks|triggers|consent|suppress``: the proactive service from the command line.

Everything goes through the node (the same calls the HTTP API makes), so every run, outcome,
consent and suppression lands in the ledger whichever door it came in by.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from appliance.cli_base import CLI_ACTOR, CliError, echo_json, echo_table, node_from
from appliance.store.errors import StoreError
from appliance.store.proactive import CONTACT_CHANNELS
from predictors.errors import PredictorError

__all__ = ["consent", "playbooks", "suppress", "triggers"]

CHANNELS = CONTACT_CHANNELS


def _table(title: str, columns: list[str], rows: list[list[object]]) -> None:
    echo_table(title, columns, rows, width=140)


# -- playbooks -------------------------------------------------------------------------------------------
@click.group()
def playbooks() -> None:
    """Playbooks: what to look for, whom to select, what to offer (config/playbooks/)."""


@playbooks.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def playbooks_list(ctx: click.Context, as_json: bool) -> None:
    """Playbooks with their schedule, model and channel."""
    with node_from(ctx) as node:
        try:
            service = node.proactive
        except PredictorError as exc:
            raise CliError(str(exc)) from None
        rows = []
        for pb in service.playbooks.values():
            live = service.registry.live(pb.model) if pb.model else None
            rows.append(
                {
                    "name": pb.name,
                    "schedule": pb.schedule,
                    "enabled": pb.enabled,
                    "model": pb.model,
                    "model_version": live.version if live else None,
                    "channel": pb.offer.channel,
                    "description": pb.description,
                }
            )
    if as_json:
        echo_json(rows)
        return
    _table(
        "playbooks",
        ["name", "schedule", "enabled", "model", "live version", "channel"],
        [
            [
                r["name"],
                r["schedule"],
                r["enabled"],
                r["model"] or "(rules)",
                r["model_version"],
                r["channel"],
            ]
            for r in rows
        ],
    )


@playbooks.command("run")
@click.argument("name")
@click.pass_context
def playbooks_run(ctx: click.Context, name: str) -> None:
    """Run a playbook now: features, scores, selection, gates, triggers (prints the summary)."""
    with node_from(ctx) as node:
        try:
            summary = node.proactive.run_playbook(name, trigger="manual", actor=CLI_ACTOR)
        except (PredictorError, StoreError) as exc:
            raise CliError(str(exc)) from None
    echo_json(summary)


# -- triggers ---------------------------------------------------------------------------------------------
@click.group()
def triggers() -> None:
    """Triggers raised for marketing ops: list, outcomes, delivery, lift report."""


@triggers.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed", "suppressed", "holdout", "deferred", "closed"]),
)
@click.option("--playbook")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def triggers_list(
    ctx: click.Context, status: str | None, playbook: str | None, limit: int, as_json: bool
) -> None:
    """Triggers (newest ids last) with the gate that stopped them; no contact data (see the API)."""
    with node_from(ctx) as node:
        rows = node.store.proactive.list_triggers(status=status, playbook=playbook, limit=limit)
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    _table(
        "triggers",
        ["id", "playbook", "group", "status", "gate", "score", "outcome", "created"],
        [
            [
                r.id,
                r.playbook,
                "treated" if r.treated else "holdout",
                r.status,
                r.suppressed_by,
                f"{r.score:.4f}",
                r.outcome,
                r.created.strftime("%Y-%m-%d %H:%M"),
            ]
            for r in rows
        ],
    )


@triggers.command("outcome")
@click.argument("trigger_id", type=click.IntRange(min=1))
@click.argument("outcome", type=click.Choice(["contacted", "converted", "declined"]))
@click.pass_context
def triggers_outcome(ctx: click.Context, trigger_id: int, outcome: str) -> None:
    """Record what came of a trigger (converted/declined are final)."""
    with node_from(ctx) as node:
        try:
            row, seq = node.proactive.record_outcome(trigger_id, outcome, actor=CLI_ACTOR)
        except StoreError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"trigger {row.id}: {row.outcome} (status {row.status}), ledger entry {seq}")


@triggers.command("report")
@click.option("--playbook")
@click.option(
    "--basis",
    type=click.Choice(["events", "outcomes"]),
    default="events",
    show_default=True,
    help="events: the playbook's target event within its horizon, for both groups alike; "
    "outcomes: what ops reported",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def triggers_report(ctx: click.Context, playbook: str | None, basis: str, as_json: bool) -> None:
    """Lift per playbook: conversion of treated vs holdout with 95% confidence intervals."""
    with node_from(ctx) as node:
        rows = node.proactive.lift(playbook, basis=basis)
    if as_json:
        echo_json(rows)
        return

    def pct(v: object) -> str:
        return "-" if v is None else f"{float(v) * 100:.2f}%"  # type: ignore[arg-type]

    def ci(r: dict[str, object]) -> str:
        lo, hi = r.get("ci_low"), r.get("ci_high")
        return "-" if lo is None or hi is None else f"[{pct(lo)}, {pct(hi)}]"

    _table(
        "lift (treated vs holdout)",
        ["playbook", "basis", "goal", "treated", "conv.", "holdout", "conv.", "lift", "95% CI", "p", "open"],
        [
            [
                r["playbook"],
                r.get("basis"),
                r.get("goal"),
                r.get("treated_n"),
                pct(r.get("treated_rate")),
                r.get("holdout_n"),
                pct(r.get("holdout_rate")),
                pct(r.get("lift")),
                ci(r),
                "-" if r.get("p_value") is None else f"{float(r['p_value']):.3g}",
                r.get("open", 0),
            ]
            for r in rows
        ],
    )


@triggers.command("deliver")
@click.pass_context
def triggers_deliver(ctx: click.Context) -> None:
    """Send due outbox rows to proactive.webhook_url now (the scheduler does this every few seconds)."""
    with node_from(ctx) as node:
        echo_json(node.proactive.deliver_outbox())


@triggers.command("requeue")
@click.pass_context
def triggers_requeue(ctx: click.Context) -> None:
    """Queue failed deliveries again (after the receiver was fixed)."""
    with node_from(ctx) as node:
        n = node.store.proactive.requeue_failed(datetime.now(UTC))
        node.record(CLI_ACTOR, "outbox.requeued", (), {"count": n})
    click.echo(f"{n} deliveries queued again")


@triggers.command("secret")
@click.pass_context
def triggers_secret(ctx: click.Context) -> None:
    """Print the webhook signing secret (hex) for the receiver's configuration; recorded in the ledger."""
    with node_from(ctx) as node:
        secret = node.webhook_secret
        node.record(CLI_ACTOR, "webhook.secret_shown", (), {})
    click.echo(secret.hex())


# -- consent and suppression -------------------------------------------------------------------------------
@click.command()
@click.argument("customer_id", type=click.IntRange(min=1))
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("status", type=click.Choice(["opt_in", "opt_out"]))
@click.option("--source", default="cli", show_default=True, help="Where the customer said so.")
@click.pass_context
def consent(ctx: click.Context, customer_id: int, channel: str, status: str, source: str) -> None:
    """Record a customer's opt-in or opt-out for one channel (the latest record decides)."""
    with node_from(ctx) as node:
        try:
            seq = node.proactive.record_consent(customer_id, channel, status, actor=CLI_ACTOR, source=source)
        except StoreError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"customer {customer_id}: {channel} {status} (ledger entry {seq})")


@click.group()
def suppress() -> None:
    """The do-not-contact list: suppressed customers get no proactive outreach."""


@suppress.command("add")
@click.argument("customer_id", type=click.IntRange(min=1))
@click.option("--reason", required=True)
@click.pass_context
def suppress_add(ctx: click.Context, customer_id: int, reason: str) -> None:
    with node_from(ctx) as node:
        try:
            changed, _ = node.proactive.set_suppressed(customer_id, True, actor=CLI_ACTOR, reason=reason)
        except StoreError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"customer {customer_id} suppressed" + ("" if changed else " (already)"))


@suppress.command("remove")
@click.argument("customer_id", type=click.IntRange(min=1))
@click.pass_context
def suppress_remove(ctx: click.Context, customer_id: int) -> None:
    with node_from(ctx) as node:
        changed, _ = node.proactive.set_suppressed(customer_id, False, actor=CLI_ACTOR)
    click.echo(f"customer {customer_id} " + ("removed from the list" if changed else "was not on the list"))


@suppress.command("list")
@click.pass_context
def suppress_list(ctx: click.Context) -> None:
    with node_from(ctx) as node:
        frame = node.store.proactive.suppressions()
    for cid, reason in zip(frame["customer_id"].tolist(), frame["reason"].tolist(), strict=True):
        click.echo(f"{cid}\t{reason}")
