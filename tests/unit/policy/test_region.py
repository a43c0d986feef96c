from __future__ import annotations

import pytest

from policy.errors import UnknownRegion
from policy.region import GLOBAL, Region, RegionGroups

GROUPS = RegionGroups({"EU": ["DE", "FR", "IT"], "EEA": ["EU", "NO"]})


def test_parse_country_and_subdivision() -> None:
    assert Region.parse("CN") == Region("CN", "CN", None)
    assert Region.parse(" us-ca ") == Region("US-CA", "US", "CA")


@pytest.mark.parametrize("code", ["XX", "C", "CHN", "US-", "US-CALI", "U1", "", "中国", "US_CA"])
def test_unknown_or_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(UnknownRegion) as info:
        Region.parse(code)
    assert "ISO 3166" in str(info.value)


def test_non_string_is_refused() -> None:
    with pytest.raises(UnknownRegion, match="must be a string"):
        Region.parse(42)  # type: ignore[arg-type]


def test_subdivision_inherits_country_then_groups_then_global() -> None:
    assert Region.parse("FR-75").chain(GROUPS) == ("FR-75", "FR", "EEA", "EU", GLOBAL)
    assert Region.parse("CN-GD").chain(GROUPS) == ("CN-GD", "CN", GLOBAL)
    assert Region.parse("US").chain() == ("US", GLOBAL)


def test_nested_groups_expand() -> None:
    assert GROUPS.members("EEA") == frozenset({"DE", "FR", "IT", "NO"})
    assert GROUPS.containing(["NO"]) == ("EEA",)


def test_group_cycle_is_refused() -> None:
    with pytest.raises(UnknownRegion, match="cycle"):
        RegionGroups({"GROUP_A": ["GROUP_B"], "GROUP_B": ["GROUP_A"]})


def test_group_named_like_a_country_is_refused() -> None:
    with pytest.raises(UnknownRegion, match="must not be a country code"):
        RegionGroups({"DE": ["FR"]})


def test_group_with_unknown_member_is_refused() -> None:
    with pytest.raises(UnknownRegion):
        RegionGroups({"EU": ["DE", "ZZ"]})


def test_scope_codes() -> None:
    assert GROUPS.is_scope_code("*")
    assert GROUPS.is_scope_code("EU")
    assert GROUPS.is_scope_code("GB-ENG")
    assert not GROUPS.is_scope_code("ZZ")
    assert not GROUPS.is_scope_code("gb")
