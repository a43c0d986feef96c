"""Every error the HTTP layer returns, as RFC 9457 problem+json.

Domain packages raise their own errors with no HTTP status; :data:`ERRORS` is
the one table that gives them one. Clients key on the stable ``type`` URL,
so a slug, once published, never changes meaning. Messages of errors caused
by the caller (an entry the ledger refused, a proof beyond the log) are
returned as ``detail`` because they say what to fix; messages of server-side
failures may name files and internals, so they go to the log only and the
body carries the request id to quote to an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, request
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException, InternalServerError

from appliance.errors import (
    ApiKeyStateError,
    ApplianceError,
    BackupError,
    BackupExists,
    BackupInvalid,
    ErasurePending,
    ErasureRefused,
    LedgerQueryInvalid,
    NothingSelected,
    UnknownApiKey,
    UnknownWitness,
    WitnessConfigError,
)
from appliance.jobs import JobBusy, JobError, UnknownJob
from appliance.masking import (
    MaskingError,
    NotPermitted,
    ProfileError,
    TokenError,
    UnknownEntityType,
    UnknownProfile,
)
from appliance.masking.service import UnknownRegion
from appliance.policy_registry import PolicyVersionError
from appliance.privacy.errors import (
    BudgetExhausted,
    CiphertextInvalid,
    DisclosureRefused,
    KeyUnavailable,
    PrivacyError,
    QueryInvalid,
    QueryUnsupported,
    ResultUnsafe,
)
from appliance.proactive import UnknownPlaybook
from appliance.server.context import request_id
from appliance.store.errors import RecordInvalid, StoreError, UnknownCustomer
from appliance.store.privacy import UnknownQuery
from appliance.store.proactive import OutcomeConflict, UnknownTrigger
from appliance.store.subjects import ErasureConflict
from ledger.anchors import AnchorError, AnchorMismatch, AnchorRejected, AnchorUnavailable
from ledger.errors import (
    ChainBroken,
    CheckpointInvalid,
    ConsistencyUnproven,
    EntryInvalid,
    LedgerClosed,
    LedgerCorrupt,
    LedgerError,
    LogSignatureInvalid,
    ProofUnavailable,
    UnknownLog,
    WitnessConflict,
    WitnessRequestInvalid,
)
from policy import (
    LibraryInvalid,
    PolicyError,
    TextRejected,
    UnknownChannel,
    UnknownIndustry,
)
from policy import UnknownRegion as UnknownPolicyRegion
from predictors.errors import DataError, PlaybookError, PredictorError, RegistryError, SchemaMismatch

__all__ = [
    "ERRORS",
    "PROBLEM_BASE",
    "PROBLEM_MEDIA_TYPE",
    "HTTPProblem",
    "Kind",
    "Problem",
    "ProblemItem",
    "problem_response",
    "register_error_handlers",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://appliance.local/problems/"

log = logging.getLogger("appliance.server")


@dataclass(frozen=True)
class Kind:
    """How one class of error looks on the wire; ``expose`` lets the exception's message be the detail."""

    status: int
    slug: str
    title: str
    expose: bool = False
    headers: tuple[tuple[str, str], ...] = ()


_UNAVAILABLE = Kind(503, "ledger-unavailable", "Ledger unavailable")

#: Domain error → problem; looked up along the exception's MRO, so a subclass not listed maps as its root.
ERRORS: Mapping[type[BaseException], Kind] = {
    EntryInvalid: Kind(422, "invalid-entry", "Entry refused by the ledger", expose=True),
    ProofUnavailable: Kind(404, "not-in-log", "Not in the log", expose=True),
    # A witness (c2sp.org/tlog-witness): the statuses are the protocol's (409 is answered by its route).
    WitnessRequestInvalid: Kind(400, "bad-witness-request", "Malformed add-checkpoint request", expose=True),
    UnknownLog: Kind(404, "unknown-log", "Log not followed by this witness", expose=True),
    LogSignatureInvalid: Kind(403, "log-signature-invalid", "Checkpoint not signed by the log", expose=True),
    ConsistencyUnproven: Kind(422, "consistency-unproven", "Consistency proof does not verify", expose=True),
    WitnessConflict: Kind(409, "witness-conflict", "Checkpoint conflicts with the witness's", expose=True),
    # Anchoring: the chain is down or busy (retry), refused the transaction, or holds another root.
    AnchorUnavailable: Kind(
        503, "anchor-unavailable", "Anchor chain unavailable", expose=True, headers=(("Retry-After", "30"),)
    ),
    AnchorRejected: Kind(409, "anchor-rejected", "Anchoring refused by the chain", expose=True),
    AnchorMismatch: Kind(409, "anchor-mismatch", "Chain holds another root", expose=True),
    AnchorError: Kind(409, "anchoring-refused", "Anchoring not possible", expose=True),
    ChainBroken: _UNAVAILABLE,
    CheckpointInvalid: _UNAVAILABLE,
    LedgerCorrupt: _UNAVAILABLE,
    LedgerClosed: _UNAVAILABLE,
    LedgerError: _UNAVAILABLE,
    UnknownEntityType: Kind(422, "unknown-entity-type", "Unknown entity type", expose=True),
    UnknownProfile: Kind(422, "unknown-profile", "No masking profile", expose=True),
    UnknownRegion: Kind(422, "unknown-region", "Unknown region", expose=True),
    NotPermitted: Kind(403, "forbidden", "Forbidden", expose=True),
    # One opaque answer for every failure that involves a secret (wrong key, tampered, foreign token).
    TokenError: Kind(422, "invalid-token", "Invalid token", expose=True),
    ProfileError: Kind(503, "node-unavailable", "Node unavailable"),
    MaskingError: Kind(422, "masking-refused", "Masking refused", expose=True),
    UnknownCustomer: Kind(404, "unknown-customer", "Unknown customer", expose=True),
    UnknownPolicyRegion: Kind(422, "unknown-region", "Unknown region", expose=True),
    UnknownIndustry: Kind(422, "unknown-industry", "Unknown industry", expose=True),
    UnknownChannel: Kind(422, "unknown-channel", "Unknown channel", expose=True),
    TextRejected: Kind(422, "text-rejected", "Text refused", expose=True),
    LibraryInvalid: Kind(503, "policy-unavailable", "Policy library unavailable"),
    PolicyError: Kind(422, "policy-refused", "Policy check refused", expose=True),
    PolicyVersionError: Kind(503, "policy-unavailable", "Policy library unavailable"),
    RecordInvalid: Kind(422, "invalid-record", "Invalid record", expose=True),
    UnknownTrigger: Kind(404, "unknown-trigger", "Unknown trigger", expose=True),
    UnknownPlaybook: Kind(404, "unknown-playbook", "Unknown playbook", expose=True),
    OutcomeConflict: Kind(409, "outcome-conflict", "Outcome does not fit the trigger", expose=True),
    SchemaMismatch: Kind(422, "schema-mismatch", "Data does not match the model", expose=True),
    DataError: Kind(422, "invalid-data", "Invalid data", expose=True),
    RegistryError: Kind(409, "model-unavailable", "Model unavailable", expose=True),
    PlaybookError: Kind(503, "playbook-unavailable", "Playbook unavailable"),
    PredictorError: Kind(422, "proactive-refused", "Request refused", expose=True),
    UnknownJob: Kind(404, "unknown-job", "Unknown job", expose=True),
    JobBusy: Kind(409, "job-running", "Job already running", expose=True),
    JobError: Kind(422, "job-refused", "Job request refused", expose=True),
    UnknownQuery: Kind(404, "unknown-query", "Unknown query", expose=True),
    QueryInvalid: Kind(422, "invalid-query", "Invalid query", expose=True),
    QueryUnsupported: Kind(422, "unsupported-query", "Query not supported", expose=True),
    ResultUnsafe: Kind(422, "result-unsafe", "Result would be wrong", expose=True),
    BudgetExhausted: Kind(403, "budget-exhausted", "Privacy budget exhausted", expose=True),
    DisclosureRefused: Kind(403, "disclosure-refused", "Disclosure refused", expose=True),
    CiphertextInvalid: Kind(409, "ciphertext-invalid", "Ciphertext fails its integrity check", expose=True),
    KeyUnavailable: Kind(409, "keys-unavailable", "Privacy keys unavailable", expose=True),
    PrivacyError: Kind(422, "privacy-refused", "Privacy query refused", expose=True),
    ErasureConflict: Kind(409, "erasure-conflict", "Erasure already under way", expose=True),
    ErasureRefused: Kind(422, "erasure-refused", "Erasure refused", expose=True),
    # The subject.erased entry is durable; the store part is finished by recovery (the message says so).
    ErasurePending: Kind(503, "erasure-pending", "Erasure recorded, not finished", expose=True),
    StoreError: Kind(503, "store-unavailable", "Store unavailable"),
    BackupExists: Kind(409, "backup-exists", "Backup exists", expose=True),
    BackupInvalid: Kind(422, "invalid-backup", "Invalid backup request", expose=True),
    # pg_dump failing, the disk filling up: the operator's job (the log has the reason, not the body).
    BackupError: Kind(503, "backup-unavailable", "Backup failed"),
    UnknownApiKey: Kind(404, "unknown-api-key", "Unknown API key", expose=True),
    NothingSelected: Kind(404, "nothing-selected", "No entry matches", expose=True),
    LedgerQueryInvalid: Kind(422, "invalid-ledger-query", "Ledger search refused", expose=True),
    UnknownWitness: Kind(404, "unknown-witness", "Unknown witness", expose=True),
    WitnessConfigError: Kind(422, "witness-refused", "Witness configuration refused", expose=True),
    ApiKeyStateError: Kind(409, "api-key-conflict", "API key state does not allow this", expose=True),
    # The node's own state (keys, settings) went bad under a running server: an operator's job.
    ApplianceError: Kind(503, "node-unavailable", "Node unavailable"),
    # Storage failures (including reads on a ledger whose files were closed) are transient to a client.
    OSError: Kind(503, "storage-unavailable", "Storage unavailable"),
}

#: werkzeug's HTTP errors, by status; others get a slug made from their name.
_HTTP_SLUGS: Mapping[int, str] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "body-too-large",
    415: "unsupported-media-type",
}

_INTERNAL = Kind(500, "internal-error", "Internal server error")
_GENERIC_DETAIL = "the server could not complete the request; quote the request id to the node's operator"


class ProblemItem(BaseModel):
    """One validation failure: where (``["query", "seq"]``) and what; never the rejected value."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """The body :func:`problem_response` builds, as the OpenAPI document describes it."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[ProblemItem] | None = None


class HTTPProblem(Exception):
    """Raised by the HTTP layer itself (auth, validation) to answer with one specific problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = Kind(status, slug, title, expose=True)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})


def problem_response(
    kind: Kind,
    detail: str,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build the problem+json response; the single place its shape is defined."""
    rid = request_id()
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind.slug,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "instance": request.path,
        "request_id": rid,
    }
    if errors is not None:
        body["errors"] = list(errors)
    response = Response(current_app.json.dumps(body), kind.status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["X-Request-Id"] = rid
    return response


def _kind_of(exc: BaseException) -> Kind | None:
    for cls in type(exc).__mro__:
        kind = ERRORS.get(cls)
        if kind is not None:
            return kind
    return None


def _from_http(exc: HTTPException) -> Response:
    if isinstance(exc, InternalServerError) or exc.code is None:
        return _internal(getattr(exc, "original_exception", None) or exc)
    status = exc.code
    slug = _HTTP_SLUGS.get(status) or (exc.name or "error").lower().replace(" ", "-")
    kind = Kind(status, slug, exc.name or "Error")
    # Keep werkzeug's headers (Allow on 405, ...) but not its HTML content type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    detail = exc.description or kind.title
    if status == 404:
        detail = f"no resource at {request.path}; the API is described at /openapi.json"
    elif status == 413:
        detail = f"the body exceeds {current_app.config['MAX_CONTENT_LENGTH']} bytes (server.max_body_bytes)"
    log.info("problem %s %s request_id=%s", status, slug, request_id())
    return problem_response(kind, detail, headers=headers)


def _internal(exc: BaseException) -> Response:
    log.error("unexpected error, request_id=%s", request_id(), exc_info=exc)
    return problem_response(_INTERNAL, _GENERIC_DETAIL)


def handle_exception(exc: Exception) -> Response:
    """Turn any exception raised while serving a request into a problem response."""
    if isinstance(exc, HTTPProblem):
        log.info("problem %s %s request_id=%s", exc.kind.status, exc.kind.slug, request_id())
        return problem_response(exc.kind, exc.detail, errors=exc.errors, headers=exc.headers)
    if isinstance(exc, HTTPException):
        return _from_http(exc)
    kind = _kind_of(exc)
    if kind is None:
        return _internal(exc)
    if kind.expose:
        # Caller errors: the type is enough in the log (the message may echo what the caller sent).
        log.info("problem %s %s (%s) request_id=%s", kind.status, kind.slug, type(exc).__name__, request_id())
        return problem_response(kind, str(exc), headers=dict(kind.headers))
    log.error("%s request_id=%s", kind.slug, request_id(), exc_info=exc)
    return problem_response(
        kind, f"{kind.title.lower()}; quote the request id to the node's operator", headers=dict(kind.headers)
    )


def register_error_handlers(app: Flask) -> None:
    """One handler for everything, so no error path can fall back to HTML or a traceback."""
    app.register_error_handler(Exception, handle_exception)
    app.register_error_handler(InternalServerError, handle_exception)
