"""Auditor pages: the latest checkpoint (its witness cosignatures and anchors), entry search, one
entry with its inclusion proof checked in the browser, and evidence bundles to download.

Search is :func:`appliance.ledger_query.find_entries`; downloads are format 2 bundles from
:func:`appliance.evidence.export_bundle` (cosigned checkpoint, anchors), recorded as
``ledger.exported`` with the auditor's key, as the JSON API's ``GET /v1/ledger/bundles`` does.

The proof the entry page's script checks is the evidence bundle itself (what ``bundle-N.json``
holds), plus the node's verifier key: ``static/js/proof.js`` hashes the entry bytes, walks the
inclusion path to a root and compares it with the root in the signed checkpoint note, whose
Ed25519 signature it checks too, all with WebCrypto and none of it taken from the server's own
verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Response, current_app, request, url_for

from appliance.errors import LedgerQueryInvalid
from appliance.ledger_query import find_entries
from appliance.server.auth import current_key
from appliance.server.console.blueprint import bp, render
from appliance.server.console.errors import BadDownloadName, BadFormValue
from appliance.server.console.pages import AUDITOR, page
from appliance.server.context import current_node, request_id
from ledger import Ledger
from ledger.checkpoint import SignedCheckpoint
from ledger.entry import Entry

__all__: list[str] = []

#: ``bundle-12.json`` or ``bundle-3-7-12.json`` (up to 100 entries): the only names handed out.
_BUNDLE_NAME = re.compile(r"bundle-(\d{1,19}(?:-\d{1,19}){0,99})\.json")
_MAX_BUNDLE = 100
_MAX_LIMIT = 500


def _ledger() -> Ledger:
    ledger = current_node().ledger
    ledger.refresh()
    return ledger


def _latest(ledger: Ledger) -> SignedCheckpoint:
    return ledger.latest_checkpoint() or ledger.sign_checkpoint()


def _signatures(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Every signature line of the checkpoint as auditors get it: the log's own, cosignatures that
    verify with a configured witness key (with their time), and any other line (not verified)."""
    from ledger.checkpoint import parse_checkpoint

    own = current_node().vkey.split("+")
    verified = {(c["name"], c["key_id"]): c for c in view["cosignatures"]}
    out = []
    for sig in parse_checkpoint(view["note"]).signatures:
        key_id = sig.key_hash.hex()
        kind = "own" if (sig.name, key_id) == (own[0], own[1]) else "witness"
        cosign = verified.get((sig.name, key_id))
        if kind == "witness" and cosign is None:
            kind = "unverified"
        when = (
            datetime.fromtimestamp(cosign["time"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if cosign else None
        )
        out.append({"name": sig.name, "key_id": key_id, "kind": kind, "time": when})
    return out


def _anchors(tree_size: int) -> tuple[bool, list[dict[str, Any]]]:
    """(anchoring configured?, the newest anchorings up to this size, newest first)."""
    service = current_node().anchoring
    records = [r.as_dict() for r in service.records() if r.tree_size <= tree_size]
    return service.configured, list(reversed(records[-10:]))


def _parse_time(name: str, text: str, *, end: bool) -> datetime | None:
    """A date (``2026-11-24``, the whole day) or a date and time, in UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time.min, UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadFormValue(
            f"{name}: {text!r} is not a date (2026-11-24) or date and time (2026-11-24T09:30)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Search:
    action: str | None
    subject: str | None
    since: datetime | None
    until: datetime | None
    limit: int


def _search_form() -> tuple[_Search | None, dict[str, str]]:
    args = request.args
    form = {k: (args.get(k) or "").strip() for k in ("action", "subject", "since", "until", "limit")}
    if not any(form[k] for k in ("action", "subject", "since", "until")) and "search" not in args:
        return None, form
    limit = 50
    if form["limit"]:
        if not form["limit"].isdigit() or not 1 <= int(form["limit"]) <= _MAX_LIMIT:
            raise BadFormValue(f"limit: give a number from 1 to {_MAX_LIMIT}")
        limit = int(form["limit"])
    since = _parse_time("since", form["since"], end=False)
    until = _parse_time("until", form["until"], end=True)
    return _Search(form["action"] or None, form["subject"] or None, since, until, limit), form


def _search(ledger: Ledger, q: _Search) -> list[Entry]:
    try:
        found = find_entries(
            ledger,
            subject=q.subject,
            action=q.action,
            since=q.since,
            until=q.until,
            limit=q.limit,
            newest_first=True,
        )
    except LedgerQueryInvalid as exc:
        raise BadFormValue(str(exc)) from None
    return [entry for _seq, entry in found]


@bp.get("/audit")
@page(*AUDITOR, nav="nav.audit")
def audit() -> tuple[str, int]:
    node = current_node()
    ledger = _ledger()
    signed = _latest(ledger)
    view = node.witnesses.view(signed)  # the note with every cosignature collected for it
    cp = signed.checkpoint
    configured, anchors = _anchors(cp.tree_size)
    query, form = _search_form()
    found = _search(ledger, query) if query is not None else None
    bundle_all = None
    if found:
        seqs = sorted(e.seq for e in found)[:_MAX_BUNDLE]
        bundle_all = url_for("console.bundle", name="bundle-" + "-".join(map(str, seqs)) + ".json")
    witnessed = view.get("witnessed")
    return render(
        "console/audit.html",
        checkpoint={
            "origin": cp.origin,
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(),
            "time": _when(cp.timestamp_ms),
            "note": view["note"],
        },
        witnessed={**witnessed, "time": _when(witnessed["timestamp_ms"])} if witnessed else None,
        witnesses=len(node.witnesses.witnesses()) if node.witnesses.configured else 0,
        ledger_size=ledger.size,
        signatures=_signatures(view),
        anchoring=configured,
        anchors=anchors,
        vkey=node.vkey,
        form=form,
        found=found,
        limit=query.limit if query is not None else None,
        bundle_all=bundle_all,
    )


def _when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seq(value: int, ledger: Ledger) -> int:
    if not 0 <= value < ledger.size:
        from ledger.errors import ProofUnavailable

        raise ProofUnavailable(f"entry {value} does not exist; the ledger holds entries 0..{ledger.size - 1}")
    return value


@bp.get("/audit/entries/<int:seq>")
@page(*AUDITOR)
def entry(seq: int) -> tuple[str, int]:
    ledger = _ledger()
    e = ledger.entry(_seq(seq, ledger))
    return render(
        "console/entry.html",
        entry=e.as_dict(),
        raw=e.raw.decode("utf-8"),
        proof_url=url_for("console.proof", seq=seq),
        bundle_url=url_for("console.bundle", name=f"bundle-{seq}.json"),
        vkey=current_node().vkey,
    )


@bp.get("/audit/entries/<int:seq>/proof.json")
@page(*AUDITOR)
def proof(seq: int) -> Response:
    """The entry's evidence bundle and the node's verifier key, for the browser to check."""
    ledger = _ledger()
    bundle = ledger.evidence_bundle([_seq(seq, ledger)])
    body = current_app.json.dumps({"bundle": bundle, "vkey": current_node().vkey})
    return Response(body, 200, mimetype="application/json")


@bp.get("/audit/bundles/<path:name>")
@page(*AUDITOR)
def bundle(name: str) -> Response:
    """A bundle as a file download; the name says which entries, and nothing but such names is served."""
    m = _BUNDLE_NAME.fullmatch(name)
    if m is None:
        raise BadDownloadName(
            f"{name[:80]!r} is not a bundle name; bundles are named bundle-<seq>.json "
            "or bundle-<seq>-<seq>-....json"
        )
    from appliance.evidence import Selection, export_bundle

    ledger = _ledger()
    seqs = tuple(sorted({_seq(int(s), ledger) for s in m[1].split("-")}))
    data = export_bundle(
        current_node(), Selection(seqs=seqs), actor=current_key().actor, request_id=request_id()
    )
    response = Response(current_app.json.dumps(data), 200, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
