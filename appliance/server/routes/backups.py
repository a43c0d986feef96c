"""Node backups over HTTP: an admin takes one into ``<data_dir>/backups`` and lists what is there.

The backup runs in the request, like ``appliance backup``: store snapshot, files, then the ledger
up to a checkpoint signed for it; the ``node.backup`` ledger entry is appended before the answer.
A client names the file at most: the name is a plain file name, checked twice (by the body's
schema and by :func:`appliance.backup.backup_name`), so no name reaches outside the backups
directory. Restores are deliberately not offered here: they replace the node the server runs on.
"""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from appliance.backup import NAME_PATTERN, backup_name, backups_dir, create_backup, list_backups
from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.openapi import operation

__all__ = ["bp"]

bp = Blueprint("backups", __name__, url_prefix="/v1/admin/backups")

ADMIN = ("admin",)
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lower-case hex")]


class BackupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="file name in the backups directory (suffix added); default backup-<UTC time>-<node id>",
    )
    include_secrets: bool = Field(
        True, description="include the node's keys; the file is then as sensitive as the data directory"
    )


class BackupOut(BaseModel):
    name: str
    bytes: int
    sha256: Hex = Field(description="of the whole file, as recorded in the node.backup ledger entry")
    manifest_sha256: Hex
    compression: str = Field(description="zstd | gzip")
    ledger_size: int = Field(description="entries in the backup: the signed checkpoint's tree size")
    root_hash: Hex
    checkpoint: str = Field(description="the C2SP signed checkpoint the backup's ledger ends at")
    secrets: bool
    store_backend: str = Field(description="sqlite | postgresql")
    members: int
    created: str
    ledger_seq: int = Field(description="the node.backup entry recording this backup")


class BackupItem(BaseModel):
    name: str
    bytes: int
    manifest_sha256: Hex | None
    compression: str | None
    created: str | None
    origin: str | None
    ledger_size: int | None
    root_hash: Hex | None
    secrets: bool | None
    store_backend: str | None
    members: int | None
    error: str | None = Field(description="why the file cannot be read as a backup; null when it can")


class BackupsOut(BaseModel):
    backups: list[BackupItem]


@bp.post("")
@operation(
    summary="Back up the node into <data_dir>/backups (store, files, ledger up to a signed checkpoint)",
    roles=ADMIN,
    body=BackupIn,
    response=BackupOut,
    status=201,
    problems={409: "A backup of that name exists (backups are never overwritten)"},
)
def create(body: BackupIn) -> BackupOut:
    node = current_node()
    name = backup_name(body.name, str(node.info.get("node_id", "node")))
    result = create_backup(
        node,
        backups_dir(node.settings.data_dir) / name,
        include_secrets=body.include_secrets,
        actor=current_key().actor,
        request_id=request_id(),
    )
    out = result.as_dict()
    del out["path"]  # the server's file system layout is not the client's business
    return BackupOut.model_validate(out)


@bp.get("")
@operation(
    summary="Backups in <data_dir>/backups, described by their manifests", roles=ADMIN, response=BackupsOut
)
def list_all() -> BackupsOut:
    items = list_backups(backups_dir(current_node().settings.data_dir))
    return BackupsOut(backups=[BackupItem.model_validate(i, from_attributes=True) for i in items])
