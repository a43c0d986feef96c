"""``appliance subject``: a customer's pseudonym, and erasure by crypto-shredding (admin).

``erase`` asks for confirmation unless ``--yes``: it cannot be undone. Exit codes: 0 done, 1 the id
names no customer (it never existed or was already erased; nothing was written), 2 unusable input.
The actor recorded in the ledger is the CLI's admin (``admin:cli``).
"""

from __future__ import annotations

import click

from appliance.cli_base import CLI_ACTOR, CliError, echo_json, node_from
from appliance.subjects import MAX_REASON_CHARS, REASON_CODES

__all__ = ["subject"]


def _unknown(ctx: click.Context, exc: Exception) -> None:
    click.echo(f"Error: {exc}", err=True)
    ctx.exit(1)


@click.group()
def subject() -> None:
    """Data subjects: pseudonyms, and erasure by crypto-shredding."""


@subject.command("show")
@click.argument("customer_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, customer_id: int, as_json: bool) -> None:
    """The customer's pseudonym and whether their subject key exists (recorded as subject.shown)."""
    from appliance.store.errors import StoreError

    with node_from(ctx) as node:
        try:
            info = node.subjects.show(customer_id, actor=CLI_ACTOR)
        except StoreError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        echo_json(info.as_dict())
    elif not info.exists:
        click.echo(f"customer {customer_id}: none in the store (it never existed or was erased)")
    else:
        key = "yes" if info.has_key else "not yet (created on first use)"
        click.echo(f"customer {customer_id}: pseudonym {info.pseudonym or '-'}; subject key: {key}")
    if not info.exists:
        ctx.exit(1)


@subject.command("erase")
@click.argument("customer_id", type=click.IntRange(min=1))
@click.option(
    "--reason", required=True, help="Why (recorded only as a SHA-256 digest; may name the request)."
)
@click.option(
    "--code",
    type=click.Choice(REASON_CODES),
    default="data_subject_request",
    show_default=True,
    help="Reason code, recorded in clear.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def erase(ctx: click.Context, customer_id: int, reason: str, code: str, yes: bool, as_json: bool) -> None:
    """Erase a customer: their rows, subject key and tokens go; their ledger entries stay, unlinkable.

    Cannot be undone. Copies of the store and keyring in backups taken before now still hold the
    customer's wrapped key: rotate the field keys afterwards (`appliance store rotate-keys`) and
    expire older keyring backups (docs/erasure.md).
    """
    from appliance.errors import SubjectError
    from appliance.store.errors import StoreError, UnknownSubject

    if not reason.strip():
        raise CliError("--reason is empty; say why the customer is erased (e.g. the request's reference)")
    if len(reason) > MAX_REASON_CHARS:
        raise CliError(f"--reason has {len(reason)} characters; at most {MAX_REASON_CHARS}")
    with node_from(ctx) as node:
        try:
            if not node.store.get_customers([customer_id], fields=()):
                raise UnknownSubject(customer_id)
            if not yes:
                click.confirm(
                    f"Erase customer {customer_id} for good? Their data and key are destroyed; there is no "
                    "undo",
                    abort=True,
                )
            report = node.subjects.erase(customer_id, reason, actor=CLI_ACTOR, code=code)
        except UnknownSubject as exc:
            _unknown(ctx, exc)
            return
        except (SubjectError, StoreError) as exc:
            raise CliError(str(exc)) from None
    if as_json:
        echo_json(report.as_dict())
        return
    removed = ", ".join(f"{n} {table}" for table, n in sorted(report.removed.items()))
    click.echo(f"erased customer {customer_id}: now {report.subject} (ledger entry {report.ledger_seq})")
    click.echo(f"  removed: {removed}; tokens revoked: {report.tokens_revoked}")
    if report.columns_refreshed:
        click.echo(f"  re-encrypted: {', '.join(report.columns_refreshed)}")
    if report.columns_pending:
        click.echo(
            f"  privacy columns not refreshed yet (retried at the next start): {report.columns_pending}"
        )


@subject.command("recover")
@click.pass_context
def recover(ctx: click.Context) -> None:
    """Finish or undo erasures a crash interrupted (the node also does this when it starts)."""
    from appliance.store.errors import StoreError

    with node_from(ctx) as node:
        try:
            done = node.subjects.recover(min_age=0)
        except StoreError as exc:
            raise CliError(str(exc)) from None
    for line in done:
        click.echo(line)
    if not done:
        click.echo("no interrupted erasure")
