"""``appliance backup`` and ``appliance restore``: a whole node in one file, and back.

Exit codes as everywhere: 0 done, 2 refused (a damaged backup names its member; a non-empty target
needs ``--force``), with nothing changed.
"""

from __future__ import annotations

from pathlib import Path

import click

from appliance.cli_base import CLI_ACTOR, CliError, echo_json, node_from, settings_from

__all__ = ["backup", "restore"]


@click.command("backup")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The backup file to create (never overwritten); .tar.zst, or .tar.gz without zstandard.",
)
@click.option(
    "--include-secrets/--no-secrets",
    default=True,
    show_default=True,
    help="Include keys (signing, pseudonym, masking, field, API key hashes, HE secret keys). With them the "
    "file is as sensitive as the data dir; without them a restore needs the keys put back by hand.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def backup(ctx: click.Context, out: Path, include_secrets: bool, as_json: bool) -> None:
    """Back up the node (store, files, ledger up to a freshly signed checkpoint) while it may be serving.

    The backup is recorded in the ledger as `node.backup` with its size, root and manifest digest.
    """
    from appliance.backup import create_backup
    from appliance.errors import BackupError

    with node_from(ctx) as node:
        try:
            result = create_backup(node, out, include_secrets=include_secrets, actor=CLI_ACTOR)
        except (BackupError, OSError) as exc:
            raise CliError(f"backup failed, nothing was kept: {exc}") from None
    if as_json:
        echo_json(result.as_dict())
        return
    click.echo(
        f"wrote {result.path} ({result.bytes:,} bytes, {result.compression}, {result.members} members)"
    )
    click.echo(f"ledger: {result.ledger_size} entries, root {result.root_hash} (signed checkpoint included)")
    click.echo(f"store: {result.store_backend}; secrets: {'included' if result.secrets else 'NOT included'}")
    click.echo(f"file sha256 {result.sha256}; manifest sha256 {result.manifest_sha256}")
    click.echo(f"recorded as ledger entry {result.ledger_seq} (node.backup)")
    if result.secrets:
        click.echo("this file holds the node's keys: keep it as safe as the data directory itself")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to restore into (default: node.data_dir); must be empty unless --force.",
)
@click.option("--force", is_flag=True, help="Replace a non-empty data dir (and a non-empty store database).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def restore(ctx: click.Context, file: Path, data_dir: Path | None, force: bool, as_json: bool) -> None:
    """Restore a node from FILE: every member's digest, the full ledger and its signed root are checked
    before anything is put in place; a damaged backup is refused and the target is left untouched."""
    from appliance.backup import restore_backup
    from appliance.errors import BackupError

    settings = settings_from(ctx)
    if data_dir is not None:
        settings = settings.model_copy(
            update={"node": settings.node.model_copy(update={"data_dir": data_dir})}
        )
    try:
        result = restore_backup(file, settings, force=force)
    except (BackupError, OSError) as exc:
        raise CliError(f"restore refused, nothing was changed: {exc}") from None
    if as_json:
        echo_json(result.as_dict())
        return
    click.echo(
        f"restored {result.origin} into {result.data_dir} ({result.members} members, digests verified)"
    )
    click.echo(
        f"ledger verified: {result.ledger_size} entries, root {result.root_hash} = the signed checkpoint"
    )
    click.echo(f"store: {result.store_backend}; manifest sha256 {result.manifest_sha256}")
    if result.restored_seq is not None:
        click.echo(f"recorded as ledger entry {result.restored_seq} (node.restored)")
    else:
        click.echo(
            "the backup holds no keys: put keys/ (and privacy secret keys) back from your key escrow, "
            "then run `appliance doctor`"
        )
