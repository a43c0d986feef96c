"""Masking profiles: the shipped file, resolution by role/region, load-time errors, versions."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from appliance.masking.entities import ENTITY_TYPES
from appliance.masking.errors import ProfileError, UnknownEntityType, UnknownProfile
from appliance.masking.profiles import ProfileSet

SHIPPED = Path(__file__).resolve().parents[3] / "config" / "masking" / "profiles.yaml"

MINIMAL = """\
aliases:
  bot: agent
detokenize_roles: [supervisor, admin]
region_groups:
  EU: [DE, FR]
profiles:
  - role: agent
    region: default
    default: tag
    entities:
      CN_MOBILE: {operator: partial, params: {keep_first: 3, keep_last: 4}}
      PERSON: pseudonym
  - role: agent
    region: EU
    entities:
      PERSON: tag
  - role: supervisor
    default: {operator: partial, params: {keep_first: 1, keep_last: 1}}
    entities:
      CN_RESIDENT_ID: token
"""


def write(tmp_path: Path, text: str, name: str = "profiles.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def load(tmp_path: Path, text: str) -> ProfileSet:
    return ProfileSet.from_file(write(tmp_path, text))


# --- the shipped profiles -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> ProfileSet:
    return ProfileSet.from_file(SHIPPED)


def test_shipped_profiles_load(shipped: ProfileSet) -> None:
    assert shipped.roles == ("agent", "auditor", "ops", "supervisor")
    assert shipped.aliases == {"bot": "agent"}
    assert shipped.detokenize_roles == {"supervisor", "admin"}
    assert len(shipped.version) == 16 and int(shipped.version, 16) >= 0


@pytest.mark.parametrize(
    ("role", "region", "entity_type", "operator"),
    [
        ("agent", "default", "CN_MOBILE", "partial"),
        ("agent", "default", "BANK_CARD", "partial"),
        ("agent", "default", "EMAIL", "partial"),
        ("agent", "default", "US_SSN", "tag"),
        ("agent", "default", "IBAN", "tag"),
        ("agent", "default", "PASSPORT", "tag"),
        ("agent", "default", "PERSON", "pseudonym"),
        ("agent", "default", "IP_ADDRESS", "tag"),  # unlisted: the profile default
        ("agent", "CN", "PERSON", "partial"),
        ("agent", "CN", "CN_MOBILE", "partial"),  # inherited from agent/default
        ("bot", "US", "PERSON", "pseudonym"),  # alias; no US profile, so default
        ("supervisor", "default", "CN_RESIDENT_ID", "token"),
        ("supervisor", "default", "BANK_CARD", "token"),
        ("supervisor", "default", "ADDRESS", "partial"),
        ("supervisor", "DE", "DATE_OF_BIRTH", "generalize"),  # DE is in the EU group
        ("supervisor", "eu", "DATE_OF_BIRTH", "generalize"),
        ("supervisor", "US", "DATE_OF_BIRTH", "token"),
        ("ops", "default", "CN_RESIDENT_ID", "tag"),
        ("ops", "default", "PERSON", "pseudonym"),
        ("ops", "default", "CN_MOBILE", "partial"),
        ("ops", "FR", "EMAIL", "pseudonym"),
    ],
)
def test_shipped_operator_choices(
    shipped: ProfileSet, role: str, region: str, entity_type: str, operator: str
) -> None:
    assert shipped.resolve(role, region).operator_for(entity_type).name == operator


def test_auditor_sees_pseudonyms_everywhere(shipped: ProfileSet) -> None:
    for region in ("default", "CN", "EU", "US"):
        profile = shipped.resolve("auditor", region)
        assert {profile.operator_for(t).name for t in ENTITY_TYPES} == {"pseudonym"}


def test_shipped_norway_resolves_to_eu(shipped: ProfileSet) -> None:
    # Regression: a bare NO in YAML is the boolean false.
    assert shipped.resolve("supervisor", "NO").region == "EU"


@pytest.mark.parametrize("role", ["analyst", "custodian", "admin", "nobody"])
def test_unknown_role_lists_the_known_ones(shipped: ProfileSet, role: str) -> None:
    with pytest.raises(
        UnknownProfile, match=r"profiles exist for: agent, auditor, ops, supervisor.*bot → agent"
    ):
        shipped.resolve(role, "CN")


def test_detokenize_rights_do_not_follow_aliases(shipped: ProfileSet) -> None:
    assert shipped.may_detokenize("supervisor") and shipped.may_detokenize("admin")
    assert not shipped.may_detokenize("agent") and not shipped.may_detokenize("bot")


# --- resolution and merging -----------------------------------------------------------------------


def test_regional_profile_is_merged_over_the_default(tmp_path: Path) -> None:
    ps = load(tmp_path, MINIMAL)
    eu = ps.resolve("agent", "FR")
    assert eu.key == "agent/EU"
    assert eu.operator_for("PERSON").name == "tag"
    assert eu.operator_for("CN_MOBILE").name == "partial"
    assert eu.default.name == "tag"
    assert ps.resolve("agent", "CN").key == "agent/default"
    assert ps.resolve("agent").key == "agent/default"
    assert ps.resolve(" Agent ", None).key == "agent/default"
    assert ps.resolve("supervisor", "DE").key == "supervisor/default"
    assert not eu.needs_subject


# --- load-time errors -----------------------------------------------------------------------------


def test_unknown_entity_type_names_file_profile_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("      PERSON: tag", "      PERSN: tag"))
    with pytest.raises(UnknownEntityType) as info:
        ProfileSet.from_file(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "profile agent/EU" in msg and "entities.PERSN" in msg and "did you mean PERSON" in msg


def test_unknown_operator_names_file_profile_key_and_choices(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("PERSON: pseudonym", "PERSON: pseudonymize"))
    with pytest.raises(ProfileError) as info:
        ProfileSet.from_file(path)
    msg = str(info.value)
    assert str(path) in msg and "profile agent/default, entities.PERSON" in msg
    assert "unknown operator 'pseudonymize' (did you mean pseudonym?)" in msg and "redact" in msg


def test_unknown_parameter_names_file_profile_key_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("keep_first: 3,", "keep_frist: 3,"))
    with pytest.raises(ProfileError) as info:
        ProfileSet.from_file(path)
    msg = str(info.value)
    assert str(path) in msg and "profile agent/default, entities.CN_MOBILE" in msg
    assert "unknown parameter 'keep_frist'" in msg and "keep_first" in msg


def test_bad_parameter_value_in_default_operator(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("keep_first: 1, keep_last: 1", "keep_first: -1, keep_last: 1"))
    with pytest.raises(ProfileError, match=r"profile supervisor/default, default: .*'keep_first'"):
        ProfileSet.from_file(path)


def test_unknown_role_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("- role: supervisor", "- role: supervisr"))
    with pytest.raises(
        ProfileError, match=r"profiles\[2\].*'supervisr' is not a role.*did you mean supervisor"
    ):
        ProfileSet.from_file(path)


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        (
            "  - role: agent\n    region: default\n",
            "  - role: agent\n    region: CN\n",
            r"add a profile with `role: agent`",
        ),
        ("    default: tag\n", "", r"profile agent/default.*no `default` operator"),
        ("  bot: agent", "  bot: agnet", r"aliases.bot: points to 'agnet'"),
        ("  bot: agent", "  agent: supervisor", r"aliases.agent: 'agent' has its own profiles"),
        ("[supervisor, admin]", "[supervisor, root]", r"detokenize_roles: 'root' is not a role"),
        ("region: EU", "region: eu", r"profile agent/eu, region: .*upper-case"),
        ("  EU: [DE, FR]", "  EU: [DE, FR]\n  EEA: [DE]", r"DE is also in group EU"),
        ("aliases:", "alias:\n  x: y\naliases:", r"alias: unknown key"),
        (
            "    default: tag\n",
            "    default: tag\n    defualt: tag\n",
            r"profile agent/default, defualt: unknown key",
        ),
        (
            "      PERSON: tag",
            "      PERSON: {params: {}}",
            r"profile agent/EU, entities.PERSON.operator: required",
        ),
        ("  EU: [DE, FR]", "  EU: [DE, NO]", r"region_groups.EU.1: .*got False .*quote it"),
        (
            "      PERSON: pseudonym\n",
            "      PERSON: pseudonym\n      PERSON: tag\n",
            r"duplicate key 'PERSON'",
        ),
        ("profiles:", "profiles: [\n", r"not valid YAML"),
    ],
)
def test_invalid_files_say_what_and_where(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ProfileError, match=pattern) as info:
        ProfileSet.from_file(path)
    assert str(path) in str(info.value)


def test_duplicate_profile_is_refused(tmp_path: Path) -> None:
    doubled = MINIMAL + "  - role: agent\n    region: EU\n    entities: {EMAIL: tag}\n"
    with pytest.raises(ProfileError, match=r"profile agent/EU: declared twice"):
        load(tmp_path, doubled)


@pytest.mark.parametrize("text", ["", "- just a list\n", "aliases: {}\n"])
def test_files_without_profiles_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ProfileError, match=r"profiles\.yaml: "):
        load(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"cannot read the masking profile file"):
        ProfileSet.from_file(tmp_path / "nope.yaml")


# --- versions -------------------------------------------------------------------------------------


def test_version_is_sha256_of_the_canonical_json(tmp_path: Path) -> None:
    ps = load(tmp_path, MINIMAL)
    canonical = ps.canonical()
    assert ps.version == hashlib.sha256(canonical).hexdigest()[:16]
    data = json.loads(canonical)
    assert canonical == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    by_key = {(p["role"], p["region"]): p for p in data["profiles"]}
    assert by_key[("agent", "EU")]["default"] is None  # as written: regional profiles are stored unmerged
    assert by_key[("agent", "default")]["entities"]["CN_MOBILE"] == {
        "operator": "partial",
        "params": {"keep_first": 3, "keep_last": 4, "mask_char": "*", "email_keep_domain": True},
    }


def test_version_ignores_comments_layout_order_and_spelled_out_defaults(tmp_path: Path) -> None:
    base = load(tmp_path, MINIMAL).version
    variants = [
        "# a comment\n" + MINIMAL.replace("default: tag", "default: tag   # trailing comment"),
        MINIMAL.replace(
            "{operator: partial, params: {keep_first: 3, keep_last: 4}}",
            ("\n        operator: partial\n        params:\n          keep_last: 4\n          keep_first: 3"),
        ),
        MINIMAL.replace("PERSON: pseudonym", "PERSON: {operator: pseudonym, params: {length: 16}}"),
        MINIMAL.replace("  - role: agent\n    region: default\n", "  - region: default\n    role: agent\n"),
        MINIMAL.replace("[supervisor, admin]", "[admin, supervisor]"),
    ]
    for i, text in enumerate(variants):
        assert load(tmp_path, text).version == base, f"variant {i}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("keep_last: 4}", "keep_last: 2}"),
        ("PERSON: pseudonym", "PERSON: tag"),
        ("  bot: agent", "  bot: agent\n  kiosk: agent"),
        ("[supervisor, admin]", "[supervisor]"),
        ("EU: [DE, FR]", "EU: [DE, FR, IT]"),
        ("      PERSON: tag", "      PERSON: tag\n      EMAIL: redact"),
    ],
)
def test_version_changes_with_content(tmp_path: Path, old: str, new: str) -> None:
    assert old in MINIMAL
    base = load(tmp_path, MINIMAL).version
    assert load(tmp_path, MINIMAL.replace(old, new)).version != base


# --- directories ----------------------------------------------------------------------------------


def test_from_dir_merges_files(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "10-base.yaml")
    write(
        tmp_path, "profiles:\n  - role: agent\n    region: CN\n    entities: {PERSON: partial}\n", "20-cn.yml"
    )
    ps = ProfileSet.from_dir(tmp_path)
    assert ps.resolve("bot", "CN").operator_for("PERSON").name == "partial"
    assert ps.resolve("bot", "CN").source.endswith("20-cn.yml")
    assert len(ps.sources) == 2


def test_from_dir_refuses_a_profile_declared_in_two_files(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "a.yaml")
    write(tmp_path, "profiles:\n  - role: agent\n    region: EU\n    entities: {PERSON: partial}\n", "b.yaml")
    with pytest.raises(
        ProfileError, match=r"b\.yaml: profile agent/EU: declared twice \(also in .*a\.yaml\)"
    ):
        ProfileSet.from_dir(tmp_path)


def test_from_dir_needs_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"no \*\.yaml masking profile files"):
        ProfileSet.from_dir(tmp_path)


def test_shipped_directory_loads_like_the_file(shipped: ProfileSet) -> None:
    assert ProfileSet.from_dir(SHIPPED.parent).version == shipped.version
