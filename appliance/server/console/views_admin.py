"""Admin pages: API keys and roles (create, rotate, revoke), the scheduler's jobs and their
history (pause, resume, run now), and the node's health (``appliance doctor --quick``).

A new or rotated secret is shown once, on the page that answers the post, and never again: the
node keeps only its hash. Key changes go through :class:`~appliance.key_service.ApiKeyService`, as
the CLI's and the JSON API's do, so they append the same ``apikey.*`` entries before the key file
changes. Revoking or
rotating a key also ends its console sessions.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Response, request, url_for

from appliance.doctor import run_checks
from appliance.errors import ApiKeyError
from appliance.jobs import JOB_ID_PATTERN, JobError, UnknownJob, job_history, known_job, run_job_now
from appliance.key_service import ApiKeyService
from appliance.keys import ROLES, ApiKey
from appliance.scheduler import list_jobs, pause_job, resume_job
from appliance.server.auth import current_key
from appliance.server.console.blueprint import bp, console_state, current_session, notify, render, see_other
from appliance.server.console.errors import BadFormValue
from appliance.server.console.pages import ADMIN, JOB_READERS, page
from appliance.server.context import current_node, request_id

__all__: list[str] = []

_KEY_ID = re.compile(r"[0-9a-f]{8,32}")
_LABEL = re.compile(r"[^\x00-\x1f\x7f]{0,64}")
_JOB_ID = re.compile(JOB_ID_PATTERN)
#: Rotation grace periods offered: the old secret keeps working this long (seconds).
GRACE = (0, 3600, 86_400, 7 * 86_400)


def _key_id(value: str) -> str:
    if not _KEY_ID.fullmatch(value):
        raise BadFormValue(f"{value[:40]!r} is not an API key id")
    return value


def _key_state(key: ApiKey) -> str:
    return str(getattr(key, "state", "revoked" if key.revoked else "active"))


# -- keys -------------------------------------------------------------------------------------------------
@bp.get("/admin/keys")
@page(*ADMIN, nav="nav.keys")
def keys() -> tuple[str, int]:
    rows = sorted(current_node().keys.list(), key=lambda k: (k.revoked, k.role, k.created))
    return render(
        "console/keys.html",
        keys=[{**vars(k), "state": _key_state(k)} for k in rows],
        roles=ROLES,
        grace=GRACE,
        own=current_key().key_id,
    )


def _expiry(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadFormValue(f"expires: {text[:40]!r} is not a date (2027-01-31)") from None
    moment = datetime.combine(day, time.max, UTC)
    if moment <= datetime.now(UTC):
        raise BadFormValue("expires: give a date in the future")
    return moment


def _secret_page(key: ApiKey, token: str, verb: str) -> tuple[str, int]:
    return render(
        "console/key_secret.html", status=201 if verb == "created" else 200, key=key, token=token, verb=verb
    )


def _keys_service() -> ApiKeyService:
    return ApiKeyService(current_node())


@bp.post("/admin/keys")
@page(*ADMIN)
def create_key() -> Response | tuple[str, int]:
    role = request.form.get("role", "")
    if role not in ROLES:
        raise BadFormValue(f"role: give one of {', '.join(ROLES)}")
    label = (request.form.get("label") or "").strip()
    if not _LABEL.fullmatch(label):
        raise BadFormValue("label: at most 64 printable characters")
    expires = _expiry(request.form.get("expires") or "")
    expires_in = expires - datetime.now(UTC) if expires is not None else None
    try:
        change = _keys_service().create(
            role, actor=current_key().actor, label=label, expires_in=expires_in, request_id=request_id()
        )
    except ApiKeyError as exc:
        notify(str(exc), "error")
        return see_other(url_for("console.keys"))
    assert change.token is not None
    return _secret_page(change.key, change.token, "created")


@bp.post("/admin/keys/<key_id>/rotate")
@page(*ADMIN)
def rotate_key(key_id: str) -> Response | tuple[str, int]:
    key_id = _key_id(key_id)
    grace = request.form.get("grace", "0")
    if not grace.isdigit() or int(grace) not in GRACE:
        raise BadFormValue(f"grace: give one of {', '.join(map(str, GRACE))} seconds")
    try:
        change = _keys_service().rotate(
            key_id, actor=current_key().actor, grace=timedelta(seconds=int(grace)), request_id=request_id()
        )
    except ApiKeyError as exc:
        notify(str(exc), "error")
        return see_other(url_for("console.keys"))
    assert change.token is not None
    _end_sessions(key_id, keep_own=True)
    return _secret_page(change.key, change.token, "rotated")


@bp.post("/admin/keys/<key_id>/revoke")
@page(*ADMIN)
def revoke_key(key_id: str) -> Response:
    key_id = _key_id(key_id)
    try:
        change = _keys_service().revoke(key_id, actor=current_key().actor, request_id=request_id())
    except ApiKeyError as exc:
        notify(str(exc), "error")
        return see_other(url_for("console.keys"))
    ended = _end_sessions(key_id, keep_own=False)
    notify(f"key {change.key.key_id} ({change.key.role}) revoked; {ended} console session(s) ended")
    return see_other(url_for("console.keys"))


def _end_sessions(key_id: str, *, keep_own: bool) -> int:
    """End a key's console sessions; the admin's own stays when they rotated their own key."""
    session = current_session()
    keep = session if keep_own and session is not None and session.key_id == key_id else None
    return console_state().sessions.end_sessions_of(key_id, keep=keep)


# -- jobs ---------------------------------------------------------------------------------------------------
def _job_id(value: str) -> str:
    if not _JOB_ID.fullmatch(value) or len(value) > 96:
        raise BadFormValue(f"{value[:96]!r} is not a job id (ledger.checkpoint, playbook.<name>, ...)")
    return value


@bp.get("/admin/jobs")
@page(*JOB_READERS, nav="nav.jobs")
def jobs() -> tuple[str, int]:
    node = current_node()
    return render("console/jobs.html", jobs=list_jobs(node), recent=job_history(node, None, 20))


@bp.get("/admin/jobs/<job_id>")
@page(*JOB_READERS)
def job_runs(job_id: str) -> tuple[str, int]:
    node = current_node()
    job_id = _job_id(job_id)
    runs = job_history(node, job_id, 100)
    if not runs and not known_job(node, job_id):
        raise UnknownJob(f"no job {job_id!r} and no runs recorded under that id")
    return render("console/job_runs.html", job_id=job_id, runs=runs)


@bp.post("/admin/jobs/<job_id>/<action>")
@page(*ADMIN)
def job_action(job_id: str, action: str) -> Response:
    node = current_node()
    job_id = _job_id(job_id)
    actor = current_key().actor
    try:
        if action == "run":
            run: dict[str, Any] = run_job_now(node, job_id, trigger="console")
            notify(f"{job_id}: {run['status']}" + (f" ({run['error']})" if run.get("error") else ""))
        elif action in ("pause", "resume"):
            fn = pause_job if action == "pause" else resume_job
            state = fn(node, job_id, actor=actor, request_id=request_id())
            notify(f"{job_id}: {'paused' if state['paused'] else 'running'}")
        else:
            raise BadFormValue(f"{action[:20]!r} is not a job action; use run, pause or resume")
    except JobError as exc:
        notify(str(exc), "error")
    return see_other(url_for("console.jobs"))


# -- health -------------------------------------------------------------------------------------------------
@bp.get("/admin/health")
@page(*ADMIN, nav="nav.health")
def health() -> tuple[str, int]:
    """The doctor's quick checks (no full ledger verification: that is ``appliance ledger verify``)."""
    checks = [c.as_dict() for c in run_checks(current_node().settings, verify_ledger=False)]
    return render("console/health.html", checks=checks)
