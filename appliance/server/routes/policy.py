"""The policy engine over HTTP: check an outgoing reply, filter recommendations, list versions.

Each decision takes the live evaluator once, so the whole decision uses one library version even if
an admin publishes another meanwhile, and appends one ledger entry before it answers: the decision,
the rule ids, the policy version and a keyed digest of the text, never the text itself (a reply can
quote a customer's details).
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import Text
from appliance.server.openapi import operation
from policy.recommend import filter_recommendations

__all__ = ["bp"]

bp = Blueprint("policy", __name__, url_prefix="/v1/policy")

REPLY_ROLES = ("agent", "supervisor", "ops", "admin")
VERSION_ROLES = ("admin", "auditor")


Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_*-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CheckReplyIn(_Body):
    text: Text = Field(description="the reply about to be sent")
    region: Code = Field(description="the customer's region: ISO 3166-1/3166-2 code (CN, CN-GD, US-CA, DE)")
    industry: Code = Field(description="finance, insurance, healthcare, retail, food, telecom, government")
    channel: Code = Field("chat", description="chat, voice, email, sms, social")


class FindingOut(BaseModel):
    rule: str
    action: str
    start: int = Field(description="offset into the text sent, in code points")
    end: int
    matched: str
    source: str = Field(description="the clause the rule enforces")
    message: str = ""


class CheckReplyOut(BaseModel):
    decision: str = Field(description="allow | rewrite | review | block")
    text: str = Field(
        description="the text to send: rewritten and with disclaimers when the decision says so"
    )
    findings: list[FindingOut]
    policy_version: str
    ledger_seq: int


class RecommendIn(_Body):
    customer: dict[str, Any] = Field(description="customer attributes the rules read (age, consent, ...)")
    items: list[dict[str, Any]] = Field(max_length=1000, description="candidate items with their attributes")
    region: Code
    industry: Code
    channel: Code | None = None


class RecommendOut(BaseModel):
    allowed: list[dict[str, Any]]
    blocked: list[dict[str, Any]] = Field(description="[{item, reasons: [{rule, message, source}]}]")
    policy_version: str
    ledger_seq: int


class VersionOut(BaseModel):
    id: str
    version: str
    content_hash: str
    published: str
    rules: int
    signature: str
    live: bool


class VersionsOut(BaseModel):
    live: str | None
    versions: list[VersionOut]


@bp.post("/check-reply")
@operation(
    summary="Check an outgoing reply against the region's and industry's rules",
    roles=REPLY_ROLES,
    body=CheckReplyIn,
    response=CheckReplyOut,
)
def check_reply(body: CheckReplyIn) -> CheckReplyOut:
    """Send the answer's ``text``, not the one you sent: it may be rewritten or carry a disclaimer."""
    node = current_node()
    key = current_key()
    evaluator = node.policy.evaluator()
    result = evaluator.check_reply(
        body.text, region=body.region, industry=body.industry, channel=body.channel
    )
    receipt = node.record_reply_check(
        key.actor,
        body.text,
        result,
        region=body.region,
        industry=body.industry,
        channel=body.channel,
        request_id=request_id(),
    )
    return CheckReplyOut(
        decision=result.decision,
        text=result.text,
        findings=[
            FindingOut(
                rule=f.rule,
                action=f.action,
                start=f.start,
                end=f.end,
                matched=f.matched,
                source=f.source,
                message=f.message,
            )
            for f in result.findings
        ],
        policy_version=result.policy_version,
        ledger_seq=receipt.seq,
    )


@bp.post("/filter-recommendations")
@operation(
    summary="Split candidate recommendations into allowed and blocked, with reasons",
    roles=REPLY_ROLES,
    body=RecommendIn,
    response=RecommendOut,
)
def filter_items(body: RecommendIn) -> RecommendOut:
    node = current_node()
    key = current_key()
    evaluator = node.policy.evaluator()
    result = filter_recommendations(
        evaluator.library,
        body.customer,
        body.items,
        region=body.region,
        industry=body.industry,
        channel=body.channel,
    )
    blocked = [dict(b) for b in result.blocked]
    receipt = node.record(
        key.actor,
        "recommendations.filtered",
        details={
            "allowed": len(result.allowed),
            "blocked": len(blocked),
            "rules": sorted({r["rule"] for b in blocked for r in b["reasons"]}),
            "policy_version": result.policy_version,
            "region": body.region,
            "industry": body.industry,
        },
        request_id=request_id(),
    )
    return RecommendOut(
        allowed=[dict(i) for i in result.allowed],
        blocked=blocked,
        policy_version=result.policy_version,
        ledger_seq=receipt.seq,
    )


@bp.get("/versions")
@operation(summary="Published policy versions and the live one", roles=VERSION_ROLES, response=VersionsOut)
def versions() -> VersionsOut:
    registry = current_node().policy
    live = registry.live_id()
    return VersionsOut(
        live=live,
        versions=[VersionOut(**v.as_dict(), live=v.id == live) for v in registry.versions()],
    )
