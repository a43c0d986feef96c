"""The proactive service in the node: playbook runs, delivery, outcomes and the lift report.

``predictors`` decides (features, scores, selection, gates, signatures); this module reads the
store, asks the policy engine about the offer's wording, writes triggers and their outbox rows,
and appends what happened to the ledger: one entry per trigger raised, held out, deferred or
suppressed (naming the customer by pseudonym and the gate that stopped it), one per delivery and
one per outcome. A run writes its triggers in one transaction, then appends their entries; if the
append fails the run's triggers are deleted again before anything was delivered, so no trigger
acts unrecorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from appliance._details import plain as _plain
from appliance.store.proactive import TriggerRow
from ledger import Record
from predictors.delivery import Delivery, Endpoint, WebhookSender
from predictors.errors import PredictorError, RegistryError
from predictors.features import build_features, training_frame
from predictors.gates import ContentVerdict, evaluate_gates
from predictors.lift import event_conversions, lift_report
from predictors.model import Model
from predictors.playbook import Playbook, load_playbooks
from predictors.registry import ModelRegistry, ModelVersion
from predictors.selection import select
from predictors.training import TrainedModel, train

if TYPE_CHECKING:
    from appliance.node import Node

__all__ = ["DEFAULT_PLAYBOOKS", "ProactiveService", "RunSummary", "UnknownPlaybook"]

log = logging.getLogger("appliance.proactive")

DEFAULT_PLAYBOOKS = Path(__file__).resolve().parent.parent / "config" / "playbooks"
#: Plain customer columns a run may read (sealed fields are never loaded in bulk).
_ATTRIBUTES = ("segment", "plan", "preferred_language", "time_zone")
#: Sealed fields an ops reader may see masked, by offer channel.
_CONTACT_FIELDS = {
    "sms": ("mobile", "phone"),
    "phone": ("mobile", "landline", "phone"),
    "email": ("email",),
    "app_push": (),
    "wechat": (),
}
#: Offer channels as the policy library names them (its rules speak of voice and social, not phone/WeChat).
_POLICY_CHANNEL = {"sms": "sms", "email": "email", "phone": "voice", "wechat": "social", "app_push": "social"}
_STATUS_ACTION = {
    "pending": "trigger.raised",
    "holdout": "trigger.held_out",
    "deferred": "trigger.deferred",
    "suppressed": "trigger.suppressed",
}


class UnknownPlaybook(PredictorError):
    """No playbook of that name in the node's playbook directory."""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    playbook: str
    customers: int
    events: int
    selected: int
    raised: int
    holdout: int
    deferred: int
    suppressed: int
    model_version: str | None
    seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "playbook": self.playbook,
            "customers": self.customers,
            "events": self.events,
            "selected": self.selected,
            "raised": self.raised,
            "holdout": self.holdout,
            "deferred": self.deferred,
            "suppressed": self.suppressed,
            "model_version": self.model_version,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def _iso(ts: Any) -> str | None:
    if ts is None or (isinstance(ts, float) and math.isnan(ts)) or ts is pd.NaT:
        return None
    return pd.Timestamp(ts).tz_convert("UTC").isoformat().replace("+00:00", "Z")


class ProactiveService:
    """One node's playbooks, model registry and delivery, composed over its store and ledger."""

    def __init__(self, node: Node, playbooks: Mapping[str, Playbook], registry: ModelRegistry) -> None:
        self._node = node
        self.playbooks = dict(playbooks)
        self.registry = registry
        self._sender: WebhookSender | None = None

    @classmethod
    def build(cls, node: Node, playbooks_dir: Path | None, models_dir: Path) -> ProactiveService:
        directory = playbooks_dir or DEFAULT_PLAYBOOKS
        playbooks = load_playbooks(directory) if directory.is_dir() else {}
        return cls(node, playbooks, ModelRegistry(models_dir))

    # -- playbooks ------------------------------------------------------------------------------------
    def playbook(self, name: str) -> Playbook:
        try:
            return self.playbooks[name]
        except KeyError:
            known = ", ".join(sorted(self.playbooks)) or "(none)"
            raise UnknownPlaybook(f"no playbook {name!r}; known playbooks: {known}") from None

    def _window_days(self, pb: Playbook) -> int:
        return int(pb.max_window_days)

    def load_frames(self, pb: Playbook, now: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        since = now - timedelta(days=self._window_days(pb))
        return self._node.store.proactive.run_frames(since, now, _ATTRIBUTES)

    def model_for(self, pb: Playbook) -> tuple[Model, ModelVersion] | None:
        if pb.model is None:
            return None
        live = self.registry.live(pb.model)
        if live is None:
            raise RegistryError(
                f"playbook {pb.name} scores with model {pb.model!r}, which has no live version; train and "
                f"publish one: appliance model train --playbook {pb.name} --publish"
            )
        return self.registry.load_live(pb.model), live

    # -- a run ------------------------------------------------------------------------------------------
    def run_playbook(
        self,
        name: str,
        *,
        trigger: str = "manual",
        now: datetime | None = None,
        actor: str = "system:scheduler",
        frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    ) -> dict[str, Any]:
        """Features → scores → selection → gates → triggers and outbox → ledger. Returns a summary."""
        pb = self.playbook(name)
        now = now or datetime.now(UTC)
        run_id = secrets.token_hex(8)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        events, customers = frames if frames is not None else self.load_frames(pb, now)
        timings["load"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        features = build_features(events, customers, pb, now)
        timings["features"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        scored = self.model_for(pb)
        model_version = scored[1].version if scored else None
        scores = scored[0].score(features) if scored else pb.rule_scores(features)
        selection = select(
            features.index.to_numpy(dtype=np.int64),
            np.asarray(scores, dtype=float),
            pb.selection,
            # Keyed by the playbook, not the run: a customer stays in the control group from run to run.
            run_id="control-group",
            playbook=pb.name,
        )
        timings["score"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        candidates = pd.DataFrame(
            {"customer_id": selection.customer_ids, "score": selection.scores, "holdout": selection.holdout}
        )
        store = self._node.store.proactive
        # The candidates' consents and contact history (one read serves the caps and the region rules,
        # up to a year back); only theirs: a run selects a few percent of the customers.
        consents, history = store.gate_frames(
            selection.customer_ids, history_since=now - timedelta(days=400), holdout_of=pb.name
        )
        gated = evaluate_gates(
            candidates,
            customers,
            playbook=pb,
            now=now,
            consent=consents,
            history=history,
            suppressions=store.suppressions(),
            content_check=self._content_check,
        )
        gated = self._policy_contact(pb, gated, customers, history, now)
        timings["gates"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        reasons = self._model_reasons(scored[0] if scored else None, features, gated)
        rows = self._trigger_rows(pb, run_id, now, model_version, selection, gated, reasons)
        bodies = None
        if self.webhook_enabled:
            bodies = self._body_builder(pb, [r["customer_id"] for r in rows if r["status"] == "pending"])
        ids = store.insert_triggers(rows, bodies)
        try:
            self._record_run(
                pb, run_id, actor, rows, ids, model_version, trigger, len(customers), len(events)
            )
        except BaseException:
            self._node.store.proactive.delete_run(run_id)
            raise
        timings["write"] = time.perf_counter() - t0
        counts = pd.Series([r["status"] for r in rows], dtype=object).value_counts().to_dict()
        summary = RunSummary(
            run_id,
            pb.name,
            len(customers),
            len(events),
            len(rows),
            int(counts.get("pending", 0)),
            int(counts.get("holdout", 0)),
            int(counts.get("deferred", 0)),
            int(counts.get("suppressed", 0)),
            model_version,
            timings,
        )
        log.info("playbook %s run %s: %s", pb.name, run_id, summary.as_dict())
        return summary.as_dict()

    def _policy_contact(
        self,
        pb: Playbook,
        gated: pd.DataFrame,
        customers: pd.DataFrame,
        history: pd.DataFrame,
        now: datetime,
    ) -> pd.DataFrame:
        """The region's contact rules from the live policy library (channels, legal quiet hours, caps).

        Asked once per customer that passed the playbook's own gates, with that customer's contact
        history, so a region's stricter rule (say, at most 2 marketing calls a month) binds even when
        the playbook allows more. Fails closed: no library, or a region it cannot place, suppresses.
        """
        passing = np.flatnonzero(gated["status"].isin(["raised", "holdout"]).to_numpy())
        if passing.size == 0:
            return gated
        from appliance.policy_registry import PolicyVersionError
        from policy.contact import ContactRules
        from policy.errors import PolicyError

        gated = gated.copy()
        try:
            rules: ContactRules | None = ContactRules(self._node.policy.evaluator().library)
            failure = ""
        except PolicyVersionError as exc:
            rules, failure = None, f"no live policy library: {exc}"
        ids = gated["customer_id"].to_numpy(dtype=np.int64)[passing]
        # Real contacts only: the holdout rows in ``history`` stand in for this playbook's caps.
        history = history[history["treated"] & history["customer_id"].isin(ids)]
        stamps = {
            int(cid): grp["ts"].to_numpy(dtype="datetime64[ns]")
            for cid, grp in history.groupby("customer_id", sort=False)
        }
        now64 = np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "ns")
        channel = _POLICY_CHANNEL.get(pb.offer.channel, pb.offer.channel)
        zones = customers["time_zone"] if "time_zone" in customers else None
        status = gated["status"].to_numpy(dtype=object).copy()
        by = gated["suppressed_by"].to_numpy(dtype=object).copy()
        reasons = gated["reasons"].tolist()
        for i, cid in zip(passing.tolist(), ids.tolist(), strict=True):
            seen = stamps.get(cid, np.empty(0, dtype="datetime64[ns]"))

            def counter(period: timedelta, seen: np.ndarray = seen) -> int:
                return int((seen >= now64 - np.timedelta64(int(period.total_seconds()), "s")).sum())

            if rules is None:
                allowed, detail = False, failure
            else:
                zone = zones.get(cid) if zones is not None else None
                try:
                    decision = rules.check_contact(
                        str(customers.at[cid, "region"]),
                        channel,
                        now,
                        contacts_in_window=counter,
                        industry=pb.offer.industry,
                        timezone=zone if isinstance(zone, str) and zone else None,
                    )
                    allowed = decision.allowed
                    detail = decision.reason + (f" (rule {decision.rule})" if decision.rule else "")
                except PolicyError as exc:
                    allowed, detail = False, f"region contact rules cannot be applied: {exc}"
            reasons[i] = [*reasons[i], {"gate": "policy_contact", "passed": allowed, "detail": detail}]
            if not allowed:
                status[i] = "suppressed"
                by[i] = "policy_contact"
        gated["status"] = status
        gated["suppressed_by"] = by
        gated["reasons"] = reasons
        return gated

    def _content_check(
        self, region: str, language: str, channel: str, industry: str, text: str
    ) -> ContentVerdict:
        """The offer's wording through the policy engine's reply check (once per region/language/channel)."""
        try:
            evaluator = self._node.policy.evaluator()
        except Exception as exc:  # noqa: BLE001 - no live library: refuse to send rather than guess
            return ContentVerdict(False, "unavailable", [], f"no live policy library: {exc}")
        try:
            result = evaluator.check_reply(
                text, region=region, industry=industry, channel=_POLICY_CHANNEL.get(channel, channel)
            )
        except Exception as exc:  # noqa: BLE001 - an unknown region/industry: refuse, say why
            return ContentVerdict(False, "refused", [], f"the offer cannot be checked: {exc}")
        rules = sorted({f.rule for f in result.findings})
        allowed = result.decision in ("allow", "disclaimer", "rewrite")
        detail = f"policy {result.policy_version}: {result.decision}" + (
            f" ({', '.join(rules)})" if rules else ""
        )
        return ContentVerdict(allowed, result.decision, rules, detail)

    def _model_reasons(
        self, model: Model | None, features: pd.DataFrame, gated: pd.DataFrame
    ) -> dict[int, list[dict[str, Any]]]:
        if model is None or gated.empty:
            return {}
        ids = gated["customer_id"].to_numpy(dtype=np.int64)
        rows = features.loc[ids]
        out: dict[int, list[dict[str, Any]]] = {}
        for cid, top in zip(ids, model.reasons(rows, top=3), strict=True):
            out[int(cid)] = [{"feature": f, "contribution": round(float(c), 4)} for f, c in top]
        return out

    def _trigger_rows(
        self,
        pb: Playbook,
        run_id: str,
        now: datetime,
        model_version: str | None,
        selection: Any,
        gated: pd.DataFrame,
        reasons: Mapping[int, list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        ranks = dict(zip(selection.customer_ids.tolist(), selection.rank.tolist(), strict=True))
        rows = []
        not_before = gated["not_before"] if "not_before" in gated else pd.Series([None] * len(gated))
        for cid, score, holdout, status, by, gates, nb in zip(
            gated["customer_id"].tolist(),
            gated["score"].tolist(),
            gated["holdout"].tolist(),
            gated["status"].tolist(),
            gated["suppressed_by"].tolist(),
            gated["reasons"].tolist(),
            not_before.tolist(),
            strict=True,
        ):
            stored = {"raised": "pending"}.get(status, status)
            rows.append(
                {
                    "run_id": run_id,
                    "playbook": pb.name,
                    "customer_id": int(cid),
                    "score": float(score),
                    "rank": int(ranks[int(cid)]),
                    "treated": 0 if holdout else 1,
                    "status": stored,
                    "suppressed_by": by if isinstance(by, str) else None,
                    "reasons": {"gates": list(gates), "model": reasons.get(int(cid), [])},
                    "model_version": model_version,
                    "channel": pb.offer.channel,
                    "created": now,
                    "not_before": None if nb is None or pd.isna(nb) else pd.Timestamp(nb).to_pydatetime(),
                }
            )
        return rows

    def _record_run(
        self,
        pb: Playbook,
        run_id: str,
        actor: str,
        rows: Sequence[Mapping[str, Any]],
        ids: Sequence[int],
        model_version: str | None,
        trigger: str,
        customers: int,
        events: int,
    ) -> None:
        # The bulk form: one read of the subject keys for the whole run, not one per trigger.
        names = self._node.pseudonyms.pseudonyms("cust", [str(r["customer_id"]) for r in rows])
        records = [
            Record(
                actor,
                _STATUS_ACTION[r["status"]],
                [name],
                {
                    "trigger": tid,
                    "playbook": pb.name,
                    "run": run_id,
                    "group": "treated" if r["treated"] else "holdout",
                    "score": f"{r['score']:.6f}",
                    "gate": r["suppressed_by"],
                },
            )
            for tid, r, name in zip(ids, rows, names, strict=True)
        ]
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        records.append(
            Record(
                actor,
                "playbook.run",
                (),
                {
                    "playbook": pb.name,
                    "run": run_id,
                    "trigger": trigger,
                    "model_version": model_version,
                    "customers": customers,
                    "events": events,
                    "selected": len(rows),
                    "statuses": counts,
                },
            )
        )
        for i in range(0, len(records), 10_000):
            self._node.ledger.append_many(records[i : i + 10_000])

    # -- webhook bodies and delivery --------------------------------------------------------------------
    @property
    def webhook_enabled(self) -> bool:
        return self._node.settings.proactive.webhook_url is not None

    def _body_builder(
        self, pb: Playbook, customer_ids: Sequence[int]
    ) -> Callable[[int, Mapping[str, Any]], str]:
        """Webhook bodies for one playbook's triggers; the customers' contact data is read in one go."""
        views = self.customer_views(customer_ids, pb.offer.channel)

        def body(trigger_id: int, row: Mapping[str, Any]) -> str:
            cid = int(row["customer_id"])
            view = views.get(cid) or self.customer_view(cid, pb.offer.channel)
            language = view.get("language") or "en"
            text = pb.offer.text.get(language) or pb.offer.text.get("en", "")
            reasons = row["reasons"] if isinstance(row["reasons"], Mapping) else json.loads(row["reasons"])
            return json.dumps(
                {
                    "type": "trigger.raised",
                    "trigger_id": trigger_id,
                    "playbook": row["playbook"],
                    "run_id": row["run_id"],
                    "score": round(float(row["score"]), 6),
                    "offer": {
                        "channel": pb.offer.channel,
                        "category": pb.offer.category,
                        "language": language,
                        "text": text,
                    },
                    "customer": view,
                    "reasons": reasons.get("model", []),
                    "created": _iso(row["created"]),
                    "outcome_url": f"/v1/triggers/{trigger_id}/outcome",
                },
                ensure_ascii=False,
                sort_keys=True,
            )

        return body

    def customer_views(self, customer_ids: Sequence[int], channel: str) -> dict[int, dict[str, Any]]:
        """What ops may know of customers for one offer: pseudonym, region, language, masked contact."""
        node = self._node
        contact = _CONTACT_FIELDS.get(channel, ())
        records = node.store.get_customers(customer_ids, fields=(*contact, "preferred_language"))
        fields_map = node.masking_fields()
        refs = dict(zip(records, node.pseudonyms.pseudonyms("cust", [str(c) for c in records]), strict=True))
        out: dict[int, dict[str, Any]] = {}
        for cid, record in records.items():
            subject = refs[cid]
            fields = {k: record[k] for k in contact if record.get(k)}
            masked = (
                node.masking.mask_record(
                    fields, fields_map, role="ops", region=record.get("region"), subject=subject
                ).record
                if fields
                else {}
            )
            out[cid] = {
                "ref": subject,
                "region": record.get("region"),
                "language": record.get("preferred_language"),
                "contact": masked,
            }
        return out

    def customer_view(self, customer_id: int, channel: str) -> dict[str, Any]:
        view = self.customer_views([customer_id], channel).get(customer_id)
        if view is None:
            from appliance.store.errors import UnknownCustomer

            raise UnknownCustomer(customer_id)
        return view

    def _endpoint(self) -> Endpoint:
        s = self._node.settings.proactive
        assert s.webhook_url is not None
        return Endpoint(
            url=s.webhook_url,
            secrets=(self._node.webhook_secret,),
            timeout_seconds=s.webhook_timeout_seconds,
            max_attempts=s.webhook_max_attempts,
            backoff_base=s.webhook_backoff_seconds,
            backoff_cap=s.webhook_backoff_cap_seconds,
        )

    def deliver_outbox(self, *, now: datetime | None = None, budget_seconds: float = 50.0) -> dict[str, Any]:
        """Send due outbox rows until none is due or the time budget is spent; ledger first, then state."""
        if not self.webhook_enabled:
            return {"delivered": 0, "retry": 0, "failed": 0, "note": "no webhook_url: triggers are pulled"}
        if self._sender is None:
            self._sender = WebhookSender(
                self._endpoint(), concurrency=self._node.settings.proactive.webhook_concurrency
            )
        store = self._node.store.proactive
        start = time.monotonic()
        totals = {"delivered": 0, "retry": 0, "failed": 0, "rounds": 0}
        batch = self._node.settings.proactive.delivery_batch
        while time.monotonic() - start < budget_seconds:
            moment = now or datetime.now(UTC)
            due = store.due_outbox(moment, batch)
            if not due:
                break
            results = self._sender.send_batch(
                [Delivery(str(tid), body.encode(), attempts) for tid, attempts, body in due]
            )
            attempts_of = {tid: attempts for tid, attempts, _ in due}
            delivered, retries, failed, records = [], [], [], []
            for res in results:
                tid = int(res.key)
                tries = attempts_of[tid] + 1
                if res.outcome == "delivered":
                    delivered.append(tid)
                    records.append(
                        Record(
                            "system:delivery",
                            "trigger.delivered",
                            (),
                            {"trigger": tid, "attempts": tries, "status": res.status},
                        )
                    )
                elif res.outcome == "retry":
                    nxt = moment + timedelta(seconds=res.next_attempt_after or 0.0)
                    retries.append((tid, tries, nxt, res.error or ""))
                else:
                    failed.append((tid, tries, res.error or ""))
                    records.append(
                        Record(
                            "system:delivery",
                            "trigger.delivery_failed",
                            (),
                            {"trigger": tid, "attempts": tries, "error": (res.error or "")[:200]},
                        )
                    )
            if records:
                self._node.ledger.append_many(records)
            store.outbox_results(delivered, retries, failed, moment)
            totals["delivered"] += len(delivered)
            totals["retry"] += len(retries)
            totals["failed"] += len(failed)
            totals["rounds"] += 1
            if now is not None:
                break
        return totals

    def release_deferred(self, *, now: datetime | None = None) -> dict[str, Any]:
        """Deferred triggers whose quiet hours ended become pending (and are queued for delivery)."""
        now = now or datetime.now(UTC)
        store = self._node.store.proactive
        bodies = None
        if self.webhook_enabled:
            builders: dict[str, Callable[[int, Mapping[str, Any]], str]] = {}

            def bodies(tid: int, row: Mapping[str, Any]) -> str:
                name = row["playbook"]
                if name not in builders:
                    builders[name] = self._body_builder(self.playbook(name), [])
                return builders[name](tid, row)

        ids = store.release_deferred(now, bodies)
        if ids:
            self._node.ledger.append_many(
                [Record("system:scheduler", "trigger.released", (), {"trigger": tid}) for tid in ids]
            )
        return {"released": len(ids)}

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    # -- consent and suppression -------------------------------------------------------------------------
    def record_consent(
        self,
        customer_id: int,
        channel: str,
        status: str,
        *,
        actor: str,
        source: str,
        ts: datetime | None = None,
        request_id: str | None = None,
    ) -> int:
        """Store one consent change and record it (``consent.recorded``); returns the ledger seq."""
        self._node.store.proactive.add_consents(
            [
                {
                    "customer_id": customer_id,
                    "channel": channel,
                    "status": status,
                    "ts": ts or datetime.now(UTC),
                    "source": source,
                }
            ]
        )
        return self._node.record(
            actor,
            "consent.recorded",
            [self._node.pseudonyms.pseudonym("cust", str(customer_id))],
            {"channel": channel, "status": status, "source": source},
            request_id=request_id,
        ).seq

    def set_suppressed(
        self,
        customer_id: int,
        suppressed: bool,
        *,
        actor: str,
        reason: str = "",
        request_id: str | None = None,
    ) -> tuple[bool, int]:
        """Add to or remove from the do-not-contact list, and record it; (changed, ledger seq)."""
        store = self._node.store.proactive
        if suppressed:
            changed = store.suppress(customer_id, reason, actor)
            details: dict[str, Any] = {
                "changed": changed,
                "reason": hashlib.sha256(reason.encode()).hexdigest()[:16],
            }
        else:
            changed = store.unsuppress(customer_id)
            details = {"changed": changed}
        receipt = self._node.record(
            actor,
            "suppression.added" if suppressed else "suppression.removed",
            [self._node.pseudonyms.pseudonym("cust", str(customer_id))],
            details,
            request_id=request_id,
        )
        return changed, receipt.seq

    # -- outcomes, lists, report -----------------------------------------------------------------------
    def record_outcome(
        self, trigger_id: int, outcome: str, *, actor: str, request_id: str | None = None
    ) -> tuple[TriggerRow, int]:
        row = self._node.store.proactive.set_outcome(trigger_id, outcome, datetime.now(UTC))
        receipt = self._node.record(
            actor,
            "trigger.outcome",
            [self._node.pseudonyms.pseudonym("cust", str(row.customer_id))],
            {"trigger": trigger_id, "outcome": outcome, "playbook": row.playbook},
            request_id=request_id,
        )
        return row, receipt.seq

    # -- models ---------------------------------------------------------------------------------------------
    def train_playbook(
        self,
        name: str,
        *,
        cutoffs: int = 4,
        step_days: int = 7,
        now: datetime | None = None,
        seed: int = 0,
        threads: int = 0,
    ) -> tuple[TrainedModel, int]:
        """Train a playbook's model on the node's own history, validated forward in time.

        Cutoffs go back from the latest one whose label horizon is complete, ``step_days`` apart;
        each row is a customer's features at a cutoff and whether the target happened within the
        horizon after it. Time-aware folds keep the validation period after the training period.
        """
        pb = self.playbook(name)
        if cutoffs < 3:
            raise PredictorError("training over time needs at least 3 cutoffs (2 folds, forward in time)")
        if pb.target is None:
            raise PredictorError(f"playbook {name} has no target: it runs on rules and needs no model")
        now = now or datetime.now(UTC)
        horizon = timedelta(days=pb.target.horizon_days)
        last = now - horizon
        points = [last - timedelta(days=step_days * i) for i in range(cutoffs)]
        since = min(points) - timedelta(days=self._window_days(pb))
        events, customers = self._node.store.proactive.run_frames(since, now, _ATTRIBUTES)
        frame = training_frame(events, customers, pb, points, data_end=now)
        table = frame.reset_index(drop=True)
        trained = train(
            table,
            "label",
            validation="time",
            time_column="cutoff",
            # Expanding windows need one more distinct cutoff than folds.
            folds=max(2, min(5, cutoffs - 1)),
            seed=seed,
            threads=threads,
            # A scheduled run scores every customer: a faster rate and at most 300 trees keep scoring
            # a million rows within seconds (at 0.03 a large history grows 2,500 trees, 11k rows/s).
            params={"learning_rate": 0.1},
            max_rounds=300,
        )
        return trained, len(table)

    def train_and_publish(
        self, name: str, *, actor: str, out: Path | None = None, **train: Any
    ) -> tuple[TrainedModel, int, ModelVersion, int]:
        """Train a playbook's model on the node's history and make it live: (trained, training rows,
        version, ledger seq). ``out`` keeps a copy of the artefact there as well."""
        trained, rows = self.train_playbook(name, **train)
        with tempfile.TemporaryDirectory() as tmp:
            artefact = trained.save(Path(tmp) / "model") if out is None else trained.save(out)
            version, seq = self.publish_model(self.playbook(name).model or name, Path(artefact), actor=actor)
        return trained, rows, version, seq

    def model_listing(self) -> list[dict[str, Any]]:
        out = []
        for name in self.registry.names():
            live = self.registry.live(name)
            out.append(
                {
                    "name": name,
                    "live": live.version if live else None,
                    "versions": [v.as_dict() for v in self.registry.versions(name)],
                }
            )
        return out

    def publish_model(
        self, name: str, model_dir: Path, *, actor: str, request_id: str | None = None
    ) -> tuple[ModelVersion, int]:
        """Copy a trained artefact into the registry, make it live, record its digest and metrics."""
        previous = self.registry.live(name)
        version = self.registry.publish(name, model_dir)
        receipt = self._node.record(
            actor,
            "model.published",
            (),
            _plain({**version.as_dict(), "previous": previous.version if previous else None}),
            request_id=request_id,
        )
        return version, receipt.seq

    def rollback_model(
        self, name: str, version_id: str, *, actor: str, request_id: str | None = None
    ) -> tuple[ModelVersion, int]:
        previous = self.registry.live(name)
        version = self.registry.rollback(name, version_id)
        receipt = self._node.record(
            actor,
            "model.rolled_back",
            (),
            _plain({**version.as_dict(), "previous": previous.version if previous else None}),
            request_id=request_id,
        )
        return version, receipt.seq

    def lift(
        self, playbook: str | None = None, *, basis: str = "events", now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Treated vs holdout per playbook; ``basis`` events (the playbook's target, seen for both
        groups alike) or outcomes (what ops reported). A playbook without a target (or no longer
        loaded) is reported on outcomes, with a note saying so."""
        if basis not in ("events", "outcomes"):
            raise PredictorError(f"lift basis {basis!r} is unknown; use events or outcomes")
        store = self._node.store.proactive
        frame = store.outcomes_frame(playbook)
        now = now or datetime.now(UTC)
        goals = {n: p.target.goal for n, p in self.playbooks.items() if p.target is not None}
        rows: list[dict[str, Any]] = []
        for name, part in frame.groupby("playbook", sort=True):
            pb = self.playbooks.get(str(name))
            if basis == "outcomes" or pb is None or pb.target is None:
                note = None
                if basis == "events":
                    note = (
                        f"playbook {name} has no target (or is no longer loaded): measured on ops' outcomes"
                    )
                for row in lift_report(part, goals=goals):
                    out = row.as_dict()
                    if note:
                        out["note"] = f"{note}; {out['note']}" if out["note"] else note
                    rows.append(out)
                continue
            target = pb.target
            events = store.target_events(
                part["customer_id"].to_numpy(),
                target.events,
                channel=target.channel,
                since=part["created"].min().to_pydatetime(),
            )
            part = part.assign(converted=event_conversions(part, events, target.horizon_days, now))
            rows.extend(r.as_dict() for r in lift_report(part, basis="events", goals=goals))
        return rows
