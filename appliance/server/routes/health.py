"""Liveness for load balancers and gunicorn: is the ledger readable in this worker?"""

from __future__ import annotations

import logging

from flask import Blueprint
from pydantic import BaseModel

from appliance.server.context import current_node
from appliance.server.errors import HTTPProblem
from appliance.server.openapi import PUBLIC, operation
from ledger.errors import LedgerError

__all__ = ["bp"]

bp = Blueprint("health", __name__)
log = logging.getLogger("appliance.server")


class Health(BaseModel):
    status: str
    ledger_size: int
    origin: str


@bp.get("/healthz")
@operation(summary="Liveness: the ledger is open and readable", roles=PUBLIC, response=Health)
def healthz() -> Health:
    """Answer 503 (not 500) when the ledger cannot be read, so a balancer takes the worker out."""
    node = current_node()
    try:
        size = node.ledger.refresh()
    except (LedgerError, OSError) as exc:
        log.warning("health check failed: the ledger cannot be read", exc_info=exc)
        raise HTTPProblem(
            503,
            "ledger-unavailable",
            "Ledger unavailable",
            "the ledger cannot be read in this worker; see the node's log",
        ) from None
    return Health(status="ok", ledger_size=size, origin=node.origin)
