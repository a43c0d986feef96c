"""The declared schema: the shipped file loads and classifies every entity; bad schemas and rows fail."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import yaml

from appliance.masking.entities import ENTITY_TYPES
from appliance.store import SCHEMA_FILE, CustomerSchema, SchemaError
from appliance.store.errors import RecordInvalid


@pytest.fixture(scope="module")
def schema() -> CustomerSchema:
    return CustomerSchema.load()


def _shipped() -> dict:
    return yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_shipped_schema_declares_every_entity_type_in_an_encrypted_field(schema):
    held = {f.entity for f in schema.fields if f.entity}
    assert ENTITY_TYPES <= held
    assert "free_text" in held
    for f in schema.fields:
        if f.entity:
            assert f.encrypted, f.name
    assert {"segment", "marketing_consent"} <= {f.name for f in schema.fields if not f.encrypted}


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            lambda d: d["fields"][0].update(sensitivity="public"),
            ["full_name", "declare it sensitive or secret"],
        ),
        (lambda d: d["fields"][0].update(entity="NATIONAL_ID"), ["full_name", "not a masking entity type"]),
        (lambda d: d["fields"].append(dict(d["fields"][0])), ["declared twice"]),
        (lambda d: d["fields"][0].update(name="region"), ["reserved for a core column"]),
        (lambda d: d["fields"][3].update(pattern="(unclosed"), ["mobile", "does not compile"]),
        (lambda d: d["fields"][0].update(sensitivity="top-secret"), ["full_name", "sensitivity"]),
        (lambda d: d["fields"][0].update(colour="red"), ["full_name", "colour"]),
        (lambda d: d.update(regions=["china"]), ["regions"]),
        (lambda d: d["events"].update(kinds=[]), ["events.kinds"]),
        (
            lambda d: d["fields"].append({"name": "tier", "type": "choice", "sensitivity": "internal"}),
            ["tier", "choices"],
        ),
    ],
)
def test_bad_schemas_are_refused_with_the_field_and_the_fix(change, fragments):
    data = _shipped()
    change(data)
    with pytest.raises(SchemaError) as err:
        CustomerSchema.from_dict(data, source="test.yaml")
    for fragment in fragments:
        assert fragment in str(err.value)


def test_unreadable_schema_file_names_the_path(tmp_path):
    with pytest.raises(SchemaError, match="cannot be read"):
        CustomerSchema.load(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: [\n")
    with pytest.raises(SchemaError, match="not valid YAML"):
        CustomerSchema.load(bad)


def test_customer_rows_are_coerced_to_canonical_text(schema):
    rec = schema.validate_customer(
        {
            "external_id": " C-1 ",
            "region": "CN",
            "full_name": "张三",
            "date_of_birth": "1990-03-07",
            "marketing_consent": "yes",
            "mobile": 13800138000,  # a number from JSON or Parquet
            "landline": "",  # an empty CSV cell is "not given"
            "created": "2024-05-01T08:00:00+08:00",
        }
    )
    assert rec.external_id == "C-1"
    assert rec.created == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    assert rec.values == {
        "full_name": "张三",
        "date_of_birth": "1990-03-07",
        "marketing_consent": "true",
        "mobile": "13800138000",
    }
    spec = schema.field("date_of_birth")
    assert spec is not None and spec.decode(rec.values["date_of_birth"]) == date(1990, 3, 7)


def test_number_fields_keep_the_exact_double_and_refuse_what_is_not_a_finite_number(schema):
    base = {"external_id": "n-1", "region": "CN", "full_name": "x"}
    rec = schema.validate_customer({**base, "balance": "-1234.5", "monthly_spend": 0.1})
    assert rec.values["balance"] == "-1234.5" and rec.values["monthly_spend"] == "0.1"
    spec = schema.field("monthly_spend")
    assert spec is not None and spec.decode(rec.values["monthly_spend"]) == 0.1
    for bad in ("lots", "inf", "nan", float("inf")):
        with pytest.raises(RecordInvalid) as err:
            schema.validate_customer({**base, "balance": bad})
        assert err.value.field == "balance"


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"region": "CN", "full_name": "x"}, "external_id", "required"),
        ({"external_id": "a", "region": "CN"}, "full_name", "required"),
        ({"external_id": "a", "region": "XX", "full_name": "x"}, "region", "'CN'"),
        (
            {"external_id": "a", "region": "CN", "full_name": "x", "nickname": "y"},
            "nickname",
            "not a declared",
        ),
        ({"external_id": "a", "region": "CN", "full_name": "x", "mobile": "call me"}, "mobile", "CN_MOBILE"),
        (
            {"external_id": "a", "region": "CN", "full_name": "x", "marketing_consent": "maybe"},
            "marketing_consent",
            "boolean",
        ),
        ({"external_id": "a", "region": "CN", "full_name": "x", "segment": "gold"}, "segment", "'mass'"),
        (
            {"external_id": "a", "region": "CN", "full_name": "x", "created": "2024-05-01T08:00:00"},
            "created",
            "zone",
        ),
        ({"external_id": "a b", "region": "CN", "full_name": "x"}, "external_id", "pattern"),
    ],
)
def test_bad_customer_rows_name_the_field_and_never_echo_the_value(schema, row, field, reason):
    with pytest.raises(RecordInvalid) as err:
        schema.validate_customer(row)
    assert err.value.field == field
    assert reason in err.value.reason
    if field == "mobile":
        assert "call me" not in str(err.value)


def test_events_name_their_customer_exactly_once_and_keep_details_small(schema):
    ok = schema.validate_event(
        {"external_id": "C1", "ts": "2024-05-01T08:00:00Z", "kind": "login", "details": "{}"}
    )
    assert ok.external_id == "C1" and ok.details == {}
    for row, field in [
        ({"ts": "2024-05-01T08:00:00Z", "kind": "login"}, "external_id"),
        (
            {"external_id": "C1", "customer_id": 3, "ts": "2024-05-01T08:00:00Z", "kind": "login"},
            "external_id",
        ),
        ({"external_id": "C1", "ts": "2024-05-01T08:00:00Z", "kind": "teleport"}, "kind"),
        ({"external_id": "C1", "ts": "2024-05-01T08:00:00Z", "kind": "login", "details": "{nope"}, "details"),
        (
            {
                "external_id": "C1",
                "ts": "2024-05-01T08:00:00Z",
                "kind": "login",
                "details": {"a": "x" * 3000},
            },
            "details",
        ),
        ({"external_id": "C1", "ts": "2024-05-01T08:00:00Z", "kind": "purchase", "amount": "NaN"}, "amount"),
    ]:
        with pytest.raises(RecordInvalid) as err:
            schema.validate_event(row)
        assert err.value.field == field, row
