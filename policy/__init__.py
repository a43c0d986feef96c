"""Region- and industry-aware policy engine: a YAML rule library, versioned by content, that checks
outgoing replies, filters recommendations and gates proactive contact.

Pure domain code: no HTTP, no environment, no other domain package. The node loads a library
(:meth:`PolicyLibrary.from_dir`), builds one :class:`Evaluator` per version and records each decision.
"""

from __future__ import annotations

from policy.contact import ContactDecision, ContactRules
from policy.errors import (
    LibraryInvalid,
    PolicyError,
    RuleInvalid,
    TextRejected,
    UnknownChannel,
    UnknownIndustry,
    UnknownRegion,
)
from policy.evaluator import PRECEDENCE, Evaluator, Finding, ReplyDecision
from policy.harness import CaseResult, LintIssue, TestReport, lint, run_tests
from policy.library import LibraryDiff, PolicyLibrary, RuleChange, check_regex, diff
from policy.recommend import RecommendationDecision, filter_recommendations
from policy.region import Region, RegionGroups
from policy.rule import Rule

__all__ = [
    "PRECEDENCE",
    "CaseResult",
    "ContactDecision",
    "ContactRules",
    "Evaluator",
    "Finding",
    "LibraryDiff",
    "LibraryInvalid",
    "LintIssue",
    "PolicyError",
    "PolicyLibrary",
    "RecommendationDecision",
    "Region",
    "RegionGroups",
    "ReplyDecision",
    "Rule",
    "RuleChange",
    "RuleInvalid",
    "TestReport",
    "TextRejected",
    "UnknownChannel",
    "UnknownIndustry",
    "UnknownRegion",
    "check_regex",
    "diff",
    "filter_recommendations",
    "lint",
    "run_tests",
]
