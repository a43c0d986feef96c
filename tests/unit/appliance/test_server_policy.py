"""The policy engine through the node: decisions over HTTP, versions published, rolled back and hot-reloaded.

Real node, real shipped library (config/policies), real ledger: each decision must leave one entry that
names the rules and the version, and never the reply's text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from appliance.node import DEFAULT_POLICIES
from appliance.policy_registry import PolicyVersionError

if TYPE_CHECKING:
    from conftest import ServerEnv

FIN_CN = {"text": "本产品保本保息，欢迎咨询", "region": "CN-GD", "industry": "finance"}


def _last_entry(env: ServerEnv) -> dict:
    env.node.ledger.refresh()
    return env.node.ledger.entry(env.node.ledger.size - 1).as_dict()


def _bumped(tmp_path: Path, version: str, edit=None) -> Path:
    """A copy of the shipped library with another version (and optionally a changed rule)."""
    lib = tmp_path / f"lib-{version}"
    shutil.copytree(DEFAULT_POLICIES, lib)
    manifest = lib / "library.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert "\nversion: 1.0.0\n" in text
    manifest.write_text(text.replace("\nversion: 1.0.0\n", f"\nversion: {version}\n"), encoding="utf-8")
    if edit is not None:
        edit(lib)
    return lib


def test_blocked_reply_is_recorded_without_its_text(env: ServerEnv) -> None:
    resp = env.client.post("/v1/policy/check-reply", json=FIN_CN, headers=env.auth("agent"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["decision"] == "block"
    (finding,) = [f for f in body["findings"] if f["action"] == "block"]
    assert FIN_CN["text"][finding["start"] : finding["end"]] == "保本保息"
    assert "广告法" in finding["source"]
    entry = _last_entry(env)
    assert entry["action"] == "reply.checked" and entry["seq"] == body["ledger_seq"]
    assert entry["details"]["decision"] == "block"
    assert finding["rule"] in entry["details"]["rules"]
    assert entry["details"]["policy_version"] == body["policy_version"] == env.node.policy.live_id()
    assert "保本" not in json.dumps(entry, ensure_ascii=False)


@pytest.mark.parametrize(
    ("text", "region", "industry", "decision"),
    [
        ("最近我们更新了服务条款", "CN", "retail", "allow"),
        ("我们是国家级品牌", "CN", "retail", "block"),
        ("保 本 保 息，放心买", "CN", "finance", "block"),
        ("This fund offers a guaranteed 10% return", "US-CA", "finance", "block"),
        ("Guaranteed delivery by Friday", "US", "retail", "allow"),
    ],
)
def test_decisions_follow_region_and_industry(
    env: ServerEnv, text: str, region: str, industry: str, decision: str
) -> None:
    body = {"text": text, "region": region, "industry": industry}
    resp = env.client.post("/v1/policy/check-reply", json=body, headers=env.auth("agent"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["decision"] == decision, resp.get_json()


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"text": "x", "region": "ZZ", "industry": "finance"}, 422, "unknown-region"),
        ({"text": "x", "region": "CN", "industry": "mining"}, 422, "unknown-industry"),
        ({"text": "x", "region": "CN", "industry": "finance", "channel": "fax"}, 422, "unknown-channel"),
        ({"text": "x" * 100_001, "region": "CN", "industry": "finance"}, 422, "text-rejected"),
        ({"text": "\ud800", "region": "CN", "industry": "finance"}, 422, "invalid-body"),
        ({"text": "x", "region": "CN"}, 422, "invalid-body"),
    ],
)
def test_bad_checks_are_4xx_and_record_nothing(env: ServerEnv, body: dict, status: int, slug: str) -> None:
    size = env.node.ledger.size
    resp = env.client.post("/v1/policy/check-reply", json=body, headers=env.auth("agent"))
    env.problem(resp, status, slug)
    assert env.node.ledger.size == size


def test_one_megabyte_and_invalid_utf8_are_refused(env: ServerEnv) -> None:
    size = env.node.ledger.size
    headers = {**env.auth("agent"), "Content-Type": "application/json"}
    big = json.dumps({"text": "最" * 400_000, "region": "CN", "industry": "retail"}).encode()
    env.problem(env.client.post("/v1/policy/check-reply", data=big, headers=headers), 413, "body-too-large")
    bad = b'{"text": "\xff", "region": "CN", "industry": "retail"}'
    env.problem(env.client.post("/v1/policy/check-reply", data=bad, headers=headers), 400, "invalid-json")
    assert env.node.ledger.size == size


def test_recommendations_are_filtered_with_reasons(env: ServerEnv) -> None:
    body = {
        "customer": {"age": 30},
        "items": [
            {"id": "cola", "category": "drink", "sugar_g_per_100g": 30},
            {"id": "water", "category": "drink", "sugar_g_per_100g": 0},
        ],
        "region": "GB-ENG",
        "industry": "food",
    }
    resp = env.client.post("/v1/policy/filter-recommendations", json=body, headers=env.auth("ops"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert [i["id"] for i in out["allowed"]] == ["water"]
    assert out["blocked"][0]["item"]["id"] == "cola"
    assert out["blocked"][0]["reasons"][0]["rule"] == "GB-ENG-HFSS-SUGAR"
    entry = _last_entry(env)
    assert entry["action"] == "recommendations.filtered" and entry["details"]["blocked"] == 1


def test_publish_makes_a_new_version_live_and_rollback_restores(env: ServerEnv, tmp_path: Path) -> None:
    first = env.node.policy.live_id()
    assert first is not None and first.startswith("1.0.0+")

    def allow_guaranteed_return(lib: Path) -> None:
        path = lib / "rules" / "us-finance.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace("action: block", "action: review"), "utf-8")

    v2 = env.node.publish_policy(_bumped(tmp_path, "1.1.0", allow_guaranteed_return), actor="admin:test")
    assert env.node.policy.live_id() == v2.id != first
    assert _last_entry(env)["action"] == "policy.published"
    # The running app notices on its next request and swaps once the new version is compiled.
    body = {"text": "a guaranteed 10% return", "region": "US", "industry": "finance"}
    env.client.post("/v1/policy/check-reply", json=body, headers=env.auth("agent"))
    env.node.policy.wait_reloaded()
    resp = env.client.post("/v1/policy/check-reply", json=body, headers=env.auth("agent")).get_json()
    assert resp["policy_version"] == v2.id and resp["decision"] == "review"
    env.node.rollback_policy(first, actor="admin:test")
    assert _last_entry(env)["details"]["previous"] == v2.id
    env.client.post("/v1/policy/check-reply", json=body, headers=env.auth("agent"))
    env.node.policy.wait_reloaded()
    resp = env.client.post("/v1/policy/check-reply", json=body, headers=env.auth("agent")).get_json()
    assert resp["policy_version"] == first and resp["decision"] == "block"
    versions = env.client.get("/v1/policy/versions", headers=env.auth("auditor")).get_json()
    assert [v["id"] for v in versions["versions"]] == [first, v2.id] and versions["live"] == first


def test_a_taken_version_number_with_other_content_is_refused(env: ServerEnv, tmp_path: Path) -> None:
    def change(lib: Path) -> None:
        path = lib / "rules" / "us-finance.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace("action: block", "action: review"), "utf-8")

    live = env.node.policy.live_id()
    size = env.node.ledger.size
    with pytest.raises(PolicyVersionError, match="bump"):
        env.node.publish_policy(_bumped(tmp_path, "1.0.0", change), actor="admin:test")
    assert env.node.policy.live_id() == live and env.node.ledger.size == size


def test_an_invalid_library_changes_nothing(env: ServerEnv, tmp_path: Path) -> None:
    def break_regex(lib: Path) -> None:
        (lib / "rules" / "zz-bad.yaml").write_text(
            "rules:\n  - id: ZZ-BAD\n    source: test clause 1\n    kind: pattern\n    action: block\n"
            "    scope: {regions: ['*']}\n    pattern: '(a+)+'\n",
            "utf-8",
        )

    live = env.node.policy.live_id()
    before = sorted(p.name for p in (env.node.policy.root / "versions").iterdir())
    with pytest.raises(Exception, match="catastrophic"):
        env.node.publish_policy(_bumped(tmp_path, "2.0.0", break_regex), actor="admin:test")
    assert env.node.policy.live_id() == live
    assert sorted(p.name for p in (env.node.policy.root / "versions").iterdir()) == before


def test_a_tampered_version_is_not_trusted(env: ServerEnv) -> None:
    live = env.node.policy.live_id()
    assert live is not None
    manifest = env.node.policy.root / "versions" / live / "manifest.json"
    data = json.loads(manifest.read_text())
    data["rules"] += 1
    manifest.write_text(json.dumps(data))
    with pytest.raises(PolicyVersionError, match="signature"):
        env.node.policy.rollback(live)
