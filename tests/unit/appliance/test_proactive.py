"""The proactive service end to end on a real node: store, playbooks, gates, ledger, webhooks, HTTP.

Customers and events come from the synthetic generator (planted tire-pressure searches and churners)
and enter through the store's validating write path; the webhook receiver is a real HTTP server on
127.0.0.1 that verifies signatures and dedupes by idempotency key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support.webhook_receiver import WebhookReceiver

from appliance.node import Node
from appliance.server import create_app
from appliance.settings import load_settings
from appliance.store.proactive import OutcomeConflict
from ledger import Record
from predictors.synthetic import generate

NOW = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai, 01:30 in New York


def _load(node: Node, customers: pd.DataFrame, events: pd.DataFrame) -> dict[int, int]:
    """Synthetic frames into the store through its validating API; returns synthetic id -> store id."""
    rows = []
    for cid, c in customers.iterrows():
        row: dict[str, Any] = {
            "external_id": f"S-{cid}",
            "region": c["region"],
            "created": c["created"].floor("us").to_pydatetime(),
            "full_name": f"Customer {cid}",
            "mobile": f"138{int(cid):08d}",
            "email": f"c{cid}@example.com",
        }
        for f in ("segment", "plan", "preferred_language", "time_zone"):
            if isinstance(c[f], str):
                row[f] = c[f]
        rows.append(row)
    ids = node.store.add_customers(rows)
    mapping = dict(zip(customers.index.tolist(), ids, strict=True))
    store_events = []
    for e in events.itertuples(index=False):
        ev: dict[str, Any] = {
            "customer_id": mapping[int(e.customer_id)],
            "ts": e.ts.floor("us").to_pydatetime(),
            "kind": e.kind,
        }
        if isinstance(e.channel, str):
            ev["channel"] = e.channel
        if not pd.isna(e.amount):
            ev["amount"] = float(e.amount)
        if isinstance(e.text, str):
            ev["text"] = e.text
        store_events.append(ev)
    for i in range(0, len(store_events), 5000):
        node.store.add_events(store_events[i : i + 5000])
    # Four in five customers opted in to SMS; a few of them opted out again later.
    consents = [
        {
            "customer_id": sid,
            "channel": "sms",
            "status": "opt_in",
            "ts": NOW - timedelta(days=200),
            "source": "t",
        }
        for sid in ids
        if sid % 5
    ]
    consents += [
        {
            "customer_id": sid,
            "channel": "sms",
            "status": "opt_out",
            "ts": NOW - timedelta(days=1),
            "source": "t",
        }
        for sid in ids
        if sid % 17 == 0
    ]
    node.store.proactive.add_consents(consents, channels=("sms", "email", "phone", "app_push", "wechat"))
    return mapping


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    # The secret is the node's: the receiver learns it after the node exists (set below).
    with WebhookReceiver(require_signature=False, fail_rate=0.2, fail_mode="after", seed=3) as r:
        yield r


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver) -> Iterator[Node]:
    path: Path = tmp_path_factory.mktemp("proactive")
    settings = load_settings(
        node={"data_dir": path / "node"},
        proactive={"webhook_url": receiver.url, "webhook_backoff_seconds": 0, "webhook_max_attempts": 20},
    )
    tokens = dict(Node.init(settings).api_keys)
    node = Node.open(settings)
    node.tokens = tokens  # type: ignore[attr-defined]
    receiver.secrets = (node.webhook_secret,)
    receiver.require_signature = True
    customers, events = generate(1500, 60_000, 7, NOW)
    _load(node, customers, events)
    yield node
    node.close()


def _actions(node: Node, start: int) -> list[str]:
    node.ledger.refresh()
    return [node.ledger.entry(i).action for i in range(start, node.ledger.size)]


def test_rules_playbook_raises_gated_triggers_and_records_each(node: Node) -> None:
    start = node.ledger.size
    summary = node.proactive.run_playbook("tire_pressure_service", now=NOW, trigger="manual")
    assert summary["selected"] > 10, summary
    assert summary["raised"] > 0 and summary["suppressed"] > 0
    rows = node.store.proactive.list_triggers(run_id=summary["run_id"], limit=10_000)
    assert len(rows) == summary["selected"]
    statuses = {r.status for r in rows}
    assert statuses <= {"pending", "holdout", "suppressed", "deferred"}
    # every selected customer really searched tire pressure >= 3 times in the week before NOW
    features = rows[0].reasons
    assert [g["gate"] for g in features["gates"]][:2] == ["suppression_list", "consent"]
    no_consent = [r for r in rows if r.suppressed_by == "consent"]
    assert no_consent and all(r.customer_id % 5 == 0 or r.customer_id % 17 == 0 for r in no_consent)
    # one ledger entry per trigger, then the run summary
    actions = _actions(node, start)
    assert actions[-1] == "playbook.run"
    assert len(actions) == len(rows) + 1
    assert actions.count("trigger.raised") == summary["raised"]
    assert actions.count("trigger.suppressed") == summary["suppressed"]
    entry = node.ledger.entry(start)
    assert entry.subject[0].startswith("cust:")  # a pseudonym, never the id or a name
    # only pending triggers are queued for the webhook
    assert node.store.proactive.outbox_counts() == {"pending": summary["raised"]}


def test_capped_customers_are_suppressed_on_the_next_run(node: Node) -> None:
    summary = node.proactive.run_playbook("tire_pressure_service", now=NOW + timedelta(hours=1))
    rows = node.store.proactive.list_triggers(run_id=summary["run_id"], limit=10_000)
    capped = [r for r in rows if r.suppressed_by == "frequency_cap"]
    assert summary["raised"] == 0 and len(capped) > 0


def test_delivery_is_exactly_once_while_the_receiver_fails(node: Node, receiver: WebhookReceiver) -> None:
    pending = {r.id for r in node.store.proactive.list_triggers(status="pending", limit=10_000)}
    start = node.ledger.size
    for _ in range(30):
        node.proactive.deliver_outbox(budget_seconds=5)
        if not node.store.proactive.outbox_counts().get("pending"):
            break
    assert node.store.proactive.outbox_counts() == {"delivered": len(pending)}
    assert set(receiver.effects) == {str(i) for i in pending}
    assert all(n == 1 for n in receiver.applied.values())
    assert receiver.duplicates > 0  # some 500s came after the effect: retried, deduped
    assert _actions(node, start).count("trigger.delivered") == len(pending)
    body = json.loads(receiver.effects[str(min(pending))])
    assert body["trigger_id"] == min(pending) and body["customer"]["ref"].startswith("cust:")
    assert (
        "138" in body["customer"]["contact"].get("mobile", "138")
        and "*" in body["customer"]["contact"]["mobile"]
    )
    assert body["offer"]["text"]


def test_ops_pull_sees_masked_contact_and_records_outcomes(node: Node) -> None:
    client = create_app(node=node).test_client()
    ops = {"Authorization": f"Bearer {node.tokens['ops']}"}  # type: ignore[attr-defined]
    resp = client.get("/v1/triggers?status=delivered&limit=5", headers=ops)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data = resp.get_json()
    assert data["ledger_seq"] is not None and len(data["triggers"]) == 5
    first = data["triggers"][0]
    mobile = first["customer"]["contact"]["mobile"]
    assert "*" in mobile and len(mobile.replace("*", "")) <= 7
    assert "@example.com" not in json.dumps(data) or "*" in first["customer"]["contact"].get("email", "*")
    tid = first["id"]
    assert (
        client.post(f"/v1/triggers/{tid}/outcome", json={"outcome": "contacted"}, headers=ops).status_code
        == 200
    )
    done = client.post(f"/v1/triggers/{tid}/outcome", json={"outcome": "converted"}, headers=ops)
    assert done.get_json()["trigger"]["status"] == "closed"
    again = client.post(f"/v1/triggers/{tid}/outcome", json={"outcome": "declined"}, headers=ops)
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    bad = client.post(f"/v1/triggers/{tid}/outcome", json={"outcome": "maybe"}, headers=ops)
    assert bad.status_code == 422
    assert (
        client.post("/v1/triggers/999999/outcome", json={"outcome": "contacted"}, headers=ops).status_code
        == 404
    )
    agent = {"Authorization": f"Bearer {node.tokens['agent']}"}  # type: ignore[attr-defined]
    assert client.get("/v1/triggers", headers=agent).status_code == 403


def test_holdout_customers_cannot_be_contacted_but_count_in_the_lift(node: Node) -> None:
    holdout = node.store.proactive.list_triggers(status="holdout", limit=10)
    assert holdout
    with pytest.raises(OutcomeConflict, match="holdout"):
        node.proactive.record_outcome(holdout[0].id, "contacted", actor="ops:test")
    node.proactive.record_outcome(holdout[0].id, "converted", actor="ops:test")
    report = {r["playbook"]: r for r in node.proactive.lift(basis="outcomes")}
    row = report["tire_pressure_service"]
    assert row["treated_n"] > 0 and row["holdout_n"] > 0
    assert row["treated_conversions"] >= 1 and row["holdout_conversions"] >= 1
    assert row["basis"] == "outcomes"


def test_lift_on_events_sees_the_control_group_through_the_target(node: Node) -> None:
    """Ops never hear of held-out customers; their store purchases still show whether the offer worked."""
    triggers = node.store.proactive.list_triggers(playbook="tire_pressure_service", limit=1000)
    first = min(t.created for t in triggers if t.status in ("holdout", "pending", "delivered", "closed"))
    held = [t for t in triggers if t.status == "holdout" and t.created == first]
    raised = ("pending", "delivered", "failed", "closed")
    treated = [t for t in triggers if t.treated and t.status in raised and t.created == first]
    assert held and treated
    bought = first + timedelta(days=3)
    node.store.add_events(
        [
            {
                "customer_id": t.customer_id,
                "ts": bought,
                "kind": "purchase",
                "channel": "store",
                "amount": 30.0,
            }
            for t in (held[0], treated[0])
        ]
    )
    # Still inside the 14-day horizon: nothing is counted yet, the triggers are open.
    early = {r["playbook"]: r for r in node.proactive.lift(basis="events", now=first + timedelta(days=5))}
    assert early["tire_pressure_service"]["open"] > 0
    assert early["tire_pressure_service"]["treated_n"] == 0
    late = {r["playbook"]: r for r in node.proactive.lift(basis="events", now=first + timedelta(days=15))}
    row = late["tire_pressure_service"]
    assert row["basis"] == "events" and row["goal"] == "increase"
    assert row["holdout_conversions"] >= 1 and row["treated_conversions"] >= 1
    client = create_app(node=node).test_client()
    auditor = {"Authorization": f"Bearer {node.tokens['auditor']}"}  # type: ignore[attr-defined]
    body = client.get("/v1/triggers/report?basis=outcomes", headers=auditor).get_json()
    assert {r["basis"] for r in body["playbooks"]} == {"outcomes"}
    bad = client.get("/v1/triggers/report?basis=vibes", headers=auditor)
    assert bad.status_code in (400, 422) and bad.content_type.startswith("application/problem+json")


def test_model_playbook_trains_publishes_and_scores_with_reasons(node: Node) -> None:
    trained, rows = node.proactive.train_playbook("churn_retention", now=NOW, cutoffs=3)
    assert rows > 300 and 0.5 < trained.metrics["auc"] <= 1.0
    tmp = Path(node.settings.data_dir) / "tmp-model"
    trained.save(tmp)
    start = node.ledger.size
    version, seq = node.proactive.publish_model("churn_retention", tmp, actor="admin:test")
    assert node.ledger.entry(seq).action == "model.published"
    assert node.ledger.entry(seq).details["digest"] == version.digest
    summary = node.proactive.run_playbook("churn_retention", now=NOW)
    assert summary["model_version"] == version.version and summary["selected"] > 0
    row = node.store.proactive.list_triggers(run_id=summary["run_id"], limit=1)[0]
    assert row.reasons["model"] and {"feature", "contribution"} <= row.reasons["model"][0].keys()
    assert "playbook.run" in _actions(node, start)


def test_a_run_whose_ledger_append_fails_leaves_no_triggers(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sum(node.store.proactive.trigger_counts().values())

    def refuse(records: list[Record]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(node.ledger, "append_many", refuse)
    with pytest.raises(OSError):
        node.proactive.run_playbook("tire_pressure_service", now=NOW + timedelta(days=30))
    assert sum(node.store.proactive.trigger_counts().values()) == before


def test_bad_events_are_refused_whole_and_masked_text_is_stored(node: Node) -> None:
    client = create_app(node=node).test_client()
    admin = {"Authorization": f"Bearer {node.tokens['admin']}"}  # type: ignore[attr-defined]
    before = node.store.count_events()
    good = {"customer_id": 1, "ts": "2026-11-19T10:00:00Z", "kind": "search", "text": "胎压异常 13812345678"}
    bad = {"customer_id": 1, "ts": "yesterday", "kind": "search"}
    resp = client.post("/v1/events", json={"events": [good, bad]}, headers=admin)
    assert resp.status_code == 422 and node.store.count_events() == before
    resp = client.post("/v1/events", json={"events": [good]}, headers=admin)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    stored = node.store.events_for(1)[-1]
    assert stored.text is not None and "13812345678" not in stored.text and "胎压异常" in stored.text
    frame = node.store.proactive.events_frame(NOW - timedelta(days=400), NOW)
    assert np.issubdtype(frame["customer_id"].dtype, np.integer) and str(frame["ts"].dt.tz) == "UTC"


def test_a_page_of_triggers_for_more_than_64_customers_is_recorded_not_refused(node: Node) -> None:
    """Regression (found by the no-secrets demo flow): ``GET /v1/triggers?limit=200`` answered 422,
    because the whole page went into one ledger entry and an entry names at most 64 subjects."""
    run_id = "f" * 16
    now = datetime.now(UTC)
    node.store.proactive.insert_triggers(
        [
            {
                "run_id": run_id,
                "playbook": "tire_pressure_service",
                "customer_id": cid,
                "score": 1.0,
                "rank": i + 1,
                "treated": 1,
                "status": "pending",
                "suppressed_by": None,
                "reasons": {"gates": [], "model": []},
                "model_version": None,
                "channel": "sms",
                "created": now,
                "not_before": None,
            }
            for i, cid in enumerate(range(1, 151))
        ]
    )
    client = create_app(node=node).test_client()
    ops = {"Authorization": f"Bearer {node.tokens['ops']}"}  # type: ignore[attr-defined]
    start = node.ledger.size
    resp = client.get(f"/v1/triggers?run_id={run_id}&limit=500", headers=ops)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    ids = sorted(t["id"] for t in body["triggers"])
    assert len(ids) == 150
    node.ledger.refresh()
    entries = [node.ledger.entry(i) for i in range(start, node.ledger.size)]
    assert [e.action for e in entries] == ["trigger.listed"] * 3 and entries[0].seq == body["ledger_seq"]
    assert all(len(e.subject) <= 64 for e in entries)
    assert sorted(t for e in entries for t in e.details["triggers"]) == ids
    assert len({s for e in entries for s in e.subject}) == 150
