"""The API's blueprints, one per resource; :func:`appliance.server.create_app` registers them in order."""

from __future__ import annotations

from flask import Blueprint

from appliance.server.routes import (
    admin_keys,
    anchors,
    backups,
    customers,
    health,
    jobs,
    ledger,
    masking,
    meta,
    metrics,
    policy,
    privacy,
    proactive,
    subjects,
    witnesses,
)

__all__ = ["BLUEPRINTS"]

BLUEPRINTS: tuple[Blueprint, ...] = (
    health.bp,
    meta.bp,
    ledger.bp,
    masking.bp,
    customers.bp,
    policy.bp,
    proactive.bp,
    jobs.bp,
    privacy.bp,
    anchors.bp,
    backups.bp,
    admin_keys.bp,
    subjects.bp,
    metrics.bp,
    witnesses.bp,
)
