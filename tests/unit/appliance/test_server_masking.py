"""Masking over HTTP: masked views per role, a ledger entry per read, and bad input refused whole.

These run the real node (store, ledger, profiles, analyzer) through Flask's test client. Every refusal
test also checks the ledger did not grow: a refused request must leave no trace but its answer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ServerEnv

MOBILE = "13812345678"
CARD = "6222021234567890128"
RID = "11010519491231002X"


def _last_entry(env: ServerEnv) -> dict:
    env.node.ledger.refresh()
    return env.node.ledger.entry(env.node.ledger.size - 1).as_dict()


def test_mask_text_returns_spans_into_the_original_and_records_counts(env: ServerEnv) -> None:
    text = f"您好，我叫王芳，手机{MOBILE}，卡号{CARD}"
    resp = env.client.post("/v1/mask/text", json={"text": text}, headers=env.auth("agent"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert MOBILE not in body["text"] and CARD not in body["text"]
    assert "138****5678" in body["text"]
    found = {(e["type"], text[e["start"] : e["end"]]) for e in body["entities"]}
    assert ("CN_MOBILE", MOBILE) in found and ("BANK_CARD", CARD) in found
    entry = _last_entry(env)
    assert entry["seq"] == body["ledger_seq"]
    assert entry["action"] == "text.masked"
    assert entry["details"]["entities"]["CN_MOBILE"] == 1
    assert entry["details"]["profile"] == body["profile"]["version"] == env.node.masking.version
    assert entry["request_id"] == resp.headers["X-Request-Id"]
    assert MOBILE not in json.dumps(entry) and CARD not in json.dumps(entry)


def test_spans_can_be_left_out_and_entities_narrowed(env: ServerEnv) -> None:
    text = f"手机{MOBILE} 邮箱a.b@example.com"
    resp = env.client.post(
        "/v1/mask/text", json={"text": text, "entities": ["EMAIL"], "spans": False}, headers=env.auth("agent")
    )
    body = resp.get_json()
    assert body.get("entities") is None
    assert MOBILE in body["text"] and "a.b@example.com" not in body["text"]


def test_roles_see_different_views(env: ServerEnv) -> None:
    text = f"卡号{CARD}"
    views = {
        role: env.client.post("/v1/mask/text", json={"text": text}, headers=env.auth(role)).get_json()["text"]
        for role in ("agent", "supervisor", "auditor", "ops")
    }
    assert len(set(views.values())) == 4, views
    assert views["supervisor"].startswith("卡号tok_BANK_CARD_")
    assert all(CARD not in v for v in views.values())


def test_customer_read_is_masked_and_recorded_with_a_pseudonym(env: ServerEnv) -> None:
    before = env.node.ledger.size
    resp = env.client.get("/v1/customers/1", headers=env.auth("agent"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    customer = body["customer"]
    raw = json.dumps(customer, ensure_ascii=False)
    for secret in (MOBILE, CARD, RID, "张伟", "zhang.wei@example.com", "1949-12-31"):
        assert secret not in raw, secret
    assert customer["segment"] == "affluent" and customer["external_id"] == "C-0001"
    assert body["profile"]["region"] == "CN"  # the customer's own region picks the rules
    entry = _last_entry(env)
    assert entry["seq"] == before and entry["action"] == "record.read"
    assert entry["subject"] == [env.node.pseudonyms.pseudonym("cust", "1")]
    assert "mobile" in entry["details"]["fields"]
    assert "张伟" not in json.dumps(entry, ensure_ascii=False)


def test_lookup_by_external_id_answers_our_id_and_records_the_read(env: ServerEnv) -> None:
    resp = env.client.get("/v1/customers?external_id=C-0001", headers=env.auth("ops"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["customer"]["id"] == 1
    assert MOBILE not in json.dumps(resp.get_json())
    assert _last_entry(env)["subject"] == [env.node.pseudonyms.pseudonym("cust", "1")]
    size = env.node.ledger.size
    missing = env.client.get("/v1/customers?external_id=nobody", headers=env.auth("ops"))
    env.problem(missing, 404, "unknown-customer")
    env.problem(env.client.get("/v1/customers", headers=env.auth("ops")), 400, "invalid-parameter")
    assert env.node.ledger.size == size


def test_transcripts_are_masked_message_by_message(env: ServerEnv) -> None:
    resp = env.client.get("/v1/customers/1/transcripts", headers=env.auth("agent"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    texts = [m["text"] for t in body["transcripts"] for m in t["messages"]]
    assert len(texts) == 3
    assert all(CARD not in t and MOBILE not in t and RID not in t for t in texts)
    entry = _last_entry(env)
    assert entry["action"] == "transcript.read" and entry["details"]["messages"] == 3
    assert entry["details"]["entities"]["CN_MOBILE"] == 1


def test_detokenize_reveals_only_for_supervisors_and_records_first(env: ServerEnv) -> None:
    masked = env.client.post("/v1/mask/text", json={"text": f"卡号{CARD}"}, headers=env.auth("supervisor"))
    token = masked.get_json()["text"][2:]
    body = {"token": token, "reason": f"dispute, customer said card {CARD}"}
    resp = env.client.post("/v1/tokens/detokenize", json=body, headers=env.auth("supervisor"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["value"] == CARD and resp.get_json()["type"] == "BANK_CARD"
    entry = _last_entry(env)
    assert entry["action"] == "token.detokenized"
    assert entry["seq"] == resp.get_json()["ledger_seq"]
    assert CARD not in json.dumps(entry), "the reason is recorded masked"
    size = env.node.ledger.size
    env.problem(
        env.client.post("/v1/tokens/detokenize", json=body, headers=env.auth("agent")), 403, "forbidden"
    )
    assert env.node.ledger.size == size


@pytest.mark.parametrize(
    "token",
    ["tok_BANK_CARD_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "tok_NOPE_abc", "not-a-token", "tok__"],
)
def test_a_forged_token_gets_one_opaque_answer(env: ServerEnv, token: str) -> None:
    size = env.node.ledger.size
    resp = env.client.post(
        "/v1/tokens/detokenize", json={"token": token, "reason": "checking"}, headers=env.auth("supervisor")
    )
    body = env.problem(resp, 422, "invalid-token")
    assert "cannot be de-tokenised" in body["detail"]
    assert env.node.ledger.size == size


@pytest.mark.parametrize(
    ("payload", "status", "slug"),
    [
        ({"text": "x", "region": "XX"}, 422, "unknown-region"),
        ({"text": "x", "entities": ["NOT_A_TYPE"]}, 422, "invalid-body"),
        ({"text": "\ud800 lone surrogate"}, 422, "invalid-body"),
        ({"text": 5}, 422, "invalid-body"),
        ({"text": "x", "extra": 1}, 422, "invalid-body"),
        ({}, 422, "invalid-body"),
        ({"text": "y" * 100_001}, 422, "masking-refused"),
    ],
    ids=["unknown-region", "unknown-entity", "surrogate", "not-a-string", "extra-field", "empty", "too-long"],
)
def test_bad_mask_requests_are_4xx_and_record_nothing(
    env: ServerEnv, payload: dict, status: int, slug: str
) -> None:
    size = env.node.ledger.size
    resp = env.client.post("/v1/mask/text", json=payload, headers=env.auth("agent"))
    env.problem(resp, status, slug)
    assert env.node.ledger.size == size


def test_invalid_utf8_and_huge_bodies_are_refused(env: ServerEnv) -> None:
    size = env.node.ledger.size
    headers = {**env.auth("agent"), "Content-Type": "application/json"}
    env.problem(
        env.client.post("/v1/mask/text", data=b'{"text": "\xff\xfe"}', headers=headers), 400, "invalid-json"
    )
    huge = b'{"text": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    env.problem(env.client.post("/v1/mask/text", data=huge, headers=headers), 413, "body-too-large")
    assert env.node.ledger.size == size


def test_roles_without_a_profile_are_refused(env: ServerEnv) -> None:
    for role in ("analyst", "custodian", "admin"):
        resp = env.client.post("/v1/mask/text", json={"text": "x"}, headers=env.auth(role))
        env.problem(resp, 403, "forbidden")


def test_unknown_customer_is_404_and_ids_are_checked(env: ServerEnv) -> None:
    size = env.node.ledger.size
    env.problem(env.client.get("/v1/customers/999", headers=env.auth("agent")), 404, "unknown-customer")
    env.problem(env.client.get("/v1/customers/-1", headers=env.auth("agent")), 400, "invalid-parameter")
    env.problem(env.client.get("/v1/customers/1e3", headers=env.auth("agent")), 400, "invalid-parameter")
    assert env.node.ledger.size == size


def test_mask_records_uses_the_declared_schema_and_scans_the_rest(env: ServerEnv) -> None:
    record = {"mobile": MOBILE, "segment": "mass", "comment": f"call me on {MOBILE}", "count": 3}
    resp = env.client.post("/v1/mask/records", json={"records": [record]}, headers=env.auth("agent"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    (out,) = resp.get_json()["records"]
    assert out["mobile"] == "138****5678"
    assert out["segment"] == "mass"  # declared plain field passes
    assert MOBILE not in out["comment"]  # undeclared field is scanned as free text
    assert out["count"] == 3
    entry = _last_entry(env)
    assert entry["action"] == "records.masked" and entry["details"]["records"] == 1


def test_mask_records_refuses_too_many_or_none(env: ServerEnv) -> None:
    size = env.node.ledger.size
    for records in ([], [{"a": "b"}] * 1001):
        resp = env.client.post("/v1/mask/records", json={"records": records}, headers=env.auth("agent"))
        env.problem(resp, 422, "invalid-body")
    assert env.node.ledger.size == size


def test_profile_version_is_recorded_once_per_version(env: ServerEnv) -> None:
    env.node.ledger.refresh()
    loaded = [
        env.node.ledger.entry(i).as_dict()
        for i in range(env.node.ledger.size)
        if env.node.ledger.entry(i).as_dict()["action"] == "masking.profiles_loaded"
    ]
    assert [e["details"]["version"] for e in loaded] == [env.node.masking.version]
