"""Masking operators: known answers where deterministic, round trips where reversible, refusals where not."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from ff3 import ff3_test

from appliance.masking.errors import MaskingError, ProfileError, TokenError
from appliance.masking.operators import (
    OPERATORS,
    DateShiftOperator,
    FpeOperator,
    GeneralizeOperator,
    MaskingKeys,
    OperatorContext,
    PartialOperator,
    PseudonymOperator,
    RedactOperator,
    TagOperator,
    TokenOperator,
    create_operator,
    detokenize,
)
from appliance.masking.operators._dates import parse_date
from appliance.masking.operators.dateshift import subject_offset
from appliance.masking.operators.fpe import ff3_1_decrypt, ff3_1_encrypt

MASTER = bytes(range(32))
KEYS = MaskingKeys.derive(MASTER, "tenant-a")
OTHER = MaskingKeys.derive(MASTER, "tenant-b")
TODAY = date(2024, 6, 1)
CTX = OperatorContext(KEYS, subject="subj-1", today=TODAY)
CTX_B = OperatorContext(OTHER, subject="subj-1", today=TODAY)


# --- keys -----------------------------------------------------------------------------------------


def test_keys_are_hkdf_sha256_of_the_master_with_distinct_labels() -> None:
    def hkdf(info: bytes, n: int) -> bytes:
        return HKDF(hashes.SHA256(), n, None, info + b"\x00tenant-a").derive(MASTER)

    assert KEYS.pseudonym_key == hkdf(b"appliance/masking/v1/pseudonym-hmac-sha256", 32)
    assert KEYS.token_key == hkdf(b"appliance/masking/v1/token-aes-siv-512", 64)
    assert KEYS.fpe_key == hkdf(b"appliance/masking/v1/fpe-ff3-1-aes-256", 32)
    assert len({KEYS.pseudonym_key, KEYS.token_key[:32], KEYS.fpe_key}) == 3


def test_tenants_get_unrelated_keys_and_repr_hides_them() -> None:
    assert KEYS.pseudonym_key != OTHER.pseudonym_key
    assert KEYS.token_key != OTHER.token_key
    assert MaskingKeys.derive(MASTER, "tenant-a") == KEYS
    assert KEYS.pseudonym_key.hex() not in repr(KEYS) and "tenant-a" in repr(KEYS)


@pytest.mark.parametrize("n", [0, 16, 31, 33, 64])
def test_master_key_of_wrong_length_is_refused(n: int) -> None:
    with pytest.raises(MaskingError, match="32 bytes"):
        MaskingKeys.derive(b"\x01" * n, "t")


def test_hand_built_keys_of_wrong_length_are_refused() -> None:
    with pytest.raises(MaskingError, match="token_key must be 64 bytes"):
        MaskingKeys(b"a" * 32, b"b" * 32, b"c" * 32)


# --- registry and parameter validation ------------------------------------------------------------


def test_registry_names() -> None:
    assert set(OPERATORS) == {
        "redact",
        "tag",
        "partial",
        "pseudonym",
        "token",
        "fpe",
        "generalize",
        "dateshift",
    }


def test_unknown_operator_lists_the_choices() -> None:
    with pytest.raises(ProfileError, match=r"unknown operator 'mask'; use one of: .*partial"):
        create_operator("mask")


@pytest.mark.parametrize(
    ("name", "params", "pattern"),
    [
        (
            "partial",
            {"keep_frist": 3},
            r"unknown parameter 'keep_frist' \(operator 'partial' takes: .*keep_first",
        ),
        ("partial", {"keep_first": -1}, r"parameter 'keep_first'"),
        ("partial", {"mask_char": "**"}, r"parameter 'mask_char'"),
        ("tag", {"template": "<{value}>"}, r"may use only \{type\}"),
        ("token", {"length": 3}, r"unknown parameter 'length' \(operator 'token' takes: none\)"),
        ("fpe", {"tweak": "abcd"}, r"14 hex digits"),
        ("pseudonym", {"template": "<{type}>"}, r"must use \{digest\}"),
        ("generalize", {"mode": "month"}, r"parameter 'mode'"),
        ("generalize", {"band_width": 7, "top": 90}, r"multiple of band_width"),
        ("dateshift", {"max_days": 0}, r"parameter 'max_days'"),
    ],
)
def test_bad_parameters_are_refused_with_the_name(name: str, params: dict, pattern: str) -> None:
    with pytest.raises(ProfileError, match=pattern):
        create_operator(name, params)


# --- redact, tag ----------------------------------------------------------------------------------


def test_redact() -> None:
    assert RedactOperator().apply("13812345678", "CN_MOBILE", CTX) == ""
    assert RedactOperator({"replacement": "[已屏蔽]"}).apply("x", "PERSON", CTX) == "[已屏蔽]"
    assert RedactOperator({"replacement": "***"}).apply_many(["a", "b"], "PERSON", CTX) == ["***", "***"]


def test_tag() -> None:
    assert TagOperator().apply("13812345678", "CN_MOBILE", CTX) == "<CN_MOBILE>"
    assert TagOperator({"template": "[{type}]"}).apply("x", "US_SSN", CTX) == "[US_SSN]"
    assert TagOperator().apply_many(["a", "b"], "EMAIL", CTX) == ["<EMAIL>", "<EMAIL>"]


# --- partial --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "params", "entity_type", "expected"),
    [
        ("13812345678", {"keep_first": 3, "keep_last": 4}, "CN_MOBILE", "138****5678"),
        ("138-1234-5678", {"keep_first": 3, "keep_last": 4}, "CN_MOBILE", "138-****-5678"),
        ("+86 138 1234 5678", {"keep_first": 0, "keep_last": 4}, "PHONE", "+** *** **** 5678"),
        ("4111 1111 1111 1234", {"keep_last": 4}, "BANK_CARD", "**** **** **** 1234"),
        # Full-width digits and separators: counted per code point, separators survive.
        (
            "１３８－１２３４－５６７８",
            {"keep_first": 3, "keep_last": 4},
            "CN_MOBILE",
            "１３８－****－５６７８",
        ),
        ("张三", {"keep_first": 1, "keep_last": 0}, "PERSON", "张*"),
        ("张三丰", {"keep_first": 1, "keep_last": 0}, "PERSON", "张**"),
        ("John Smith", {"keep_first": 1, "keep_last": 0}, "PERSON", "J*** *****"),
        ("john@example.com", {}, "EMAIL", "j***@example.com"),
        ("john.doe.smith@example.com", {}, "EMAIL", "j***@example.com"),
        ("john@example.com", {"email_keep_domain": False}, "EMAIL", "j***@***.com"),
        ("ｊｏｈｎ＠example.com", {}, "EMAIL", "ｊ***＠example.com"),
        ("13812345678", {"keep_first": 3, "keep_last": 4, "mask_char": "#"}, "CN_MOBILE", "138####5678"),
    ],
)
def test_partial_known_answers(value: str, params: dict, entity_type: str, expected: str) -> None:
    assert PartialOperator(params).apply(value, entity_type, CTX) == expected


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ("1234", {"keep_last": 4}, "**34"),  # keeps shrink: never more than half shown
        ("12", {"keep_first": 3, "keep_last": 4}, "1*"),
        ("7", {"keep_first": 1, "keep_last": 1}, "*"),
        ("", {"keep_first": 1}, ""),
        ("--", {"keep_first": 1}, "--"),
    ],
)
def test_partial_never_shows_a_short_value_whole(value: str, params: dict, expected: str) -> None:
    assert PartialOperator(params).apply(value, "US_SSN", CTX) == expected


# --- pseudonym ------------------------------------------------------------------------------------


def test_pseudonym_known_answer() -> None:
    mac = hmac.new(KEYS.pseudonym_key, b"appliance/masking/pseudonym/v1\x0013812345678", hashlib.sha256)
    assert PseudonymOperator().apply("13812345678", "CN_MOBILE", CTX) == f"<CN_MOBILE:{mac.hexdigest()[:16]}>"


@pytest.mark.parametrize(
    ("entity_type", "spellings"),
    [
        (
            "CN_MOBILE",
            [
                "13812345678",
                "138 1234 5678",
                "138-1234-5678",
                "+86 138 1234 5678",
                "0086 13812345678",
                "8613812345678",
            ],
        ),
        ("CN_MOBILE", ["１３８１２３４５６７８", "(138) 1234-5678"]),
        ("EMAIL", ["John.Doe@Example.com", "john.doe@example.com", " JOHN.DOE@EXAMPLE.COM "]),
        ("CN_RESIDENT_ID", ["11010119900307777x", "11010119900307777X", "110101 19900307 777X"]),
        ("PERSON", ["John  Smith", "john smith", "JOHN SMITH"]),
        ("IP_ADDRESS", ["2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001"]),
    ],
)
def test_pseudonym_is_stable_across_formatting(entity_type: str, spellings: list[str]) -> None:
    op = PseudonymOperator()
    digests = {op.digest(s, entity_type, CTX) for s in spellings}
    assert len(digests) == 1


def test_pseudonym_joins_across_phone_types_and_differs_across_tenants_and_values() -> None:
    op = PseudonymOperator()
    assert op.digest("+86 13812345678", "PHONE", CTX) == op.digest("13812345678", "CN_MOBILE", CTX)
    assert op.digest("13812345678", "CN_MOBILE", CTX) != op.digest("13812345678", "CN_MOBILE", CTX_B)
    assert op.digest("13812345678", "CN_MOBILE", CTX) != op.digest("13812345679", "CN_MOBILE", CTX)


def test_pseudonym_length_and_template() -> None:
    out = PseudonymOperator({"length": 8, "template": "{type}#{digest}"}).apply("x@y.z", "EMAIL", CTX)
    assert re.fullmatch(r"EMAIL#[0-9a-f]{8}", out)


# --- token ----------------------------------------------------------------------------------------

ID = "110101199003077777"


def test_token_round_trip_is_deterministic_and_typed() -> None:
    op = TokenOperator()
    token = op.apply(ID, "CN_RESIDENT_ID", CTX)
    assert re.fullmatch(r"tok_CN_RESIDENT_ID_[a-z2-7]+", token)
    assert op.apply(ID, "CN_RESIDENT_ID", CTX) == token
    assert op.apply(ID, "US_SSN", CTX) != token
    assert detokenize(token, KEYS) == ("CN_RESIDENT_ID", ID)
    assert op.detokenize(token, CTX) == ("CN_RESIDENT_ID", ID)
    assert detokenize(op.apply("张三 ☃", "PERSON", CTX), KEYS) == ("PERSON", "张三 ☃")


def _flip(token: str, i: int) -> str:
    c = token[i]
    return token[:i] + ("b" if c == "a" else "a") + token[i + 1 :]


def test_any_failure_to_detokenize_is_one_opaque_error() -> None:
    token = TokenOperator().apply(ID, "CN_RESIDENT_ID", CTX)
    body = token.rsplit("_", 1)[1]
    bad = [
        _flip(token, len(token) - 5),  # tampered body
        _flip(token, len("tok_CN_RESIDENT_ID_") + 1),  # tampered SIV tag
        token.replace("CN_RESIDENT_ID", "US_SSN"),  # type swapped: associated data no longer matches
        token[:-8],  # truncated
        "tok_CN_RESIDENT_ID_" + body.upper(),  # not our alphabet
        "tok__" + body,
        "not a token",
        "",
    ]
    messages = set()
    for t in bad:
        with pytest.raises(TokenError) as info:
            detokenize(t, KEYS)
        messages.add(str(info.value))
    with pytest.raises(TokenError) as info:
        detokenize(token, OTHER)  # another tenant's key
    messages.add(str(info.value))
    assert len(messages) == 1
    assert ID not in messages.pop()


# --- fpe (FF3-1) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vector", ff3_test.testVectors_ACVP_AES_FF3_1, ids=lambda v: f"radix{v['radix']}-{v['key'][:8]}"
)
def test_ff3_1_acvp_vectors_from_the_ff3_package(vector: dict) -> None:
    key, tweak = bytes.fromhex(vector["key"]), bytes.fromhex(vector["tweak"])
    alphabet = vector["alphabet"]
    assert ff3_1_encrypt(key, tweak, vector["plaintext"], alphabet) == vector["ciphertext"]
    assert ff3_1_decrypt(key, tweak, vector["ciphertext"], alphabet) == vector["plaintext"]


def test_ff3_1_refuses_64_bit_tweaks() -> None:
    with pytest.raises(ValueError, match="7-byte"):
        ff3_1_encrypt(bytes(16), bytes(8), "123456")


@pytest.mark.parametrize(
    ("value", "params"),
    [
        ("4111 1111 1111 1111", {"keep_prefix": 6, "keep_last": 4}),
        ("6222-0212-3456-7890-123", {}),
        ("13812345678", {"keep_prefix": 3}),
        ("１３８１２３４５６７８", {}),
        ("123456", {}),
        ("9" * 56, {}),
    ],
)
def test_fpe_keeps_format_and_decrypts(value: str, params: dict) -> None:
    op = FpeOperator(params)
    out = op.apply(value, "BANK_CARD", CTX)
    assert len(out) == len(value) and out != value
    for a, b in zip(value, out, strict=True):
        assert a.isdigit() == b.isdigit()
        if not a.isdigit():
            assert a == b
        else:
            assert (a >= "０") == (b >= "０")  # full-width stays full-width
    kept_prefix, kept_last = params.get("keep_prefix", 0), params.get("keep_last", 0)
    digits_in, digits_out = [c for c in value if c.isdigit()], [c for c in out if c.isdigit()]
    assert digits_in[:kept_prefix] == digits_out[:kept_prefix]
    assert digits_in[len(digits_in) - kept_last :] == digits_out[len(digits_out) - kept_last :]
    assert op.apply(value, "BANK_CARD", CTX) == out
    assert op.decrypt(out, "BANK_CARD", CTX) == value
    assert op.apply(value, "BANK_CARD", CTX_B) != out  # tenant key
    assert op.apply(value, "IBAN", CTX) != out  # tweak follows the type


def test_fpe_matches_ff3_1_with_the_tenant_key_and_derived_tweak() -> None:
    tweak = hashlib.sha256(b"appliance/masking/fpe-tweak/v1\x00BANK_CARD").digest()[:7]
    expected = ff3_1_encrypt(KEYS.fpe_key, tweak, "1111111111")
    assert (
        FpeOperator().apply("1111-1111-11", "BANK_CARD", CTX)
        == f"{expected[:4]}-{expected[4:8]}-{expected[8:]}"
    )
    custom = FpeOperator({"tweak": "00112233445566"}).apply("1111111111", "BANK_CARD", CTX)
    assert custom == ff3_1_encrypt(KEYS.fpe_key, bytes.fromhex("00112233445566"), "1111111111")


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ("12345", {}, "*****"),  # below the FF3-1 domain: partial fallback
        ("4111 1111 1111 1111", {"keep_prefix": 6, "keep_last": 6}, "4111 11** **11 1111"),
        ("9" * 57, {}, "*" * 57),  # above the FF3-1 maximum length
    ],
)
def test_fpe_falls_back_to_partial_outside_the_domain(value: str, params: dict, expected: str) -> None:
    op = FpeOperator(params)
    assert op.apply(value, "BANK_CARD", CTX) == expected
    with pytest.raises(TokenError, match="not format-preserving encrypted"):
        op.decrypt(expected, "BANK_CARD", CTX)


# --- dates: parsing, generalize, dateshift --------------------------------------------------------

MARCH_7 = date(1990, 3, 7)


@pytest.mark.parametrize(
    "text",
    [
        "1990-03-07",
        "1990/3/7",
        "1990.03.07",
        "1990年3月7日",
        "1990 年 03 月 07 号",
        "１９９０年３月７日",
        "１９９０－０３－０７",
        "19900307",
        "07/03/1990",
        "7.3.1990",
        "March 7, 1990",
        "Mar 7 1990",
        "march 7th, 1990",
        "7 March 1990",
        "7th of March, 1990",
        "  1990-03-07 ",
    ],
)
def test_date_forms_parse(text: str) -> None:
    parsed = parse_date(text)
    assert parsed is not None and parsed.value == MARCH_7


def test_ambiguous_day_month_order() -> None:
    assert parse_date("03/07/1990", day_first=False).value == MARCH_7  # type: ignore[union-attr]
    assert parse_date("03/07/1990").value == date(1990, 7, 3)  # type: ignore[union-attr]
    assert parse_date("03/25/1990").value == date(1990, 3, 25)  # type: ignore[union-attr] # 25 is no month
    assert parse_date("1990-02-30") is None
    assert parse_date("not a date") is None
    assert parse_date("19900230") is None


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ("1990年3月7日", {}, "1990"),
        ("March 7, 1990", {"mode": "year"}, "1990"),
        ("1990", {}, "1990"),
        ("1990-06-01", {"mode": "age_band"}, "30-39"),  # 34th birthday is today
        ("1990-06-02", {"mode": "age_band"}, "30-39"),  # 33 until tomorrow
        ("1984-06-02", {"mode": "age_band"}, "30-39"),  # 39
        ("1984-06-01", {"mode": "age_band"}, "40-49"),
        ("1990-03-07", {"mode": "age_band", "band_width": 5, "top": 80}, "30-34"),
        ("1920-01-01", {"mode": "age_band"}, "90+"),
        ("2020-01-01", {"mode": "age_band"}, "0-9"),
        ("2020-01-01", {"mode": "age_band", "band_width": 1, "top": 90}, "4"),
        ("sometime in spring", {}, "<DATE_OF_BIRTH>"),
    ],
)
def test_generalize(value: str, params: dict, expected: str) -> None:
    assert GeneralizeOperator(params).apply(value, "DATE_OF_BIRTH", CTX) == expected


def test_generalize_age_band_moves_with_today() -> None:
    op = GeneralizeOperator({"mode": "age_band"})
    later = OperatorContext(KEYS, today=date(2030, 6, 1))
    assert op.apply("1990-06-01", "DATE_OF_BIRTH", CTX) == "30-39"
    assert op.apply("1990-06-01", "DATE_OF_BIRTH", later) == "40-49"


def test_subject_offset_is_keyed_bounded_and_never_zero() -> None:
    offsets = [subject_offset(KEYS.pseudonym_key, f"s{i}", 30) for i in range(500)]
    assert all(1 <= abs(o) <= 30 for o in offsets)
    assert min(offsets) < 0 < max(offsets)
    assert len(set(offsets)) > 40
    assert subject_offset(KEYS.pseudonym_key, "s1", 30) == subject_offset(KEYS.pseudonym_key, "s1", 30)
    mac = hmac.new(KEYS.pseudonym_key, b"appliance/masking/dateshift/v1\x00s1", hashlib.sha256).digest()
    magnitude = int.from_bytes(mac[:8], "big") % 30 + 1
    assert subject_offset(KEYS.pseudonym_key, "s1", 30) == (magnitude if mac[8] & 1 else -magnitude)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("1990-03-07", r"\d{4}-\d{2}-\d{2}"),
        ("1990/3/7", r"\d{4}/\d{1,2}/\d{1,2}"),
        ("1990年03月07日", r"\d{4}年\d{2}月\d{2}日"),
        ("１９９０－０３－０７", r"[０-９]{4}－[０-９]{2}－[０-９]{2}"),
        ("07/03/1990", r"\d{2}/\d{2}/\d{4}"),
        ("March 7th, 1990", r"[A-Z][a-z]+ \d{1,2}(st|nd|rd|th), \d{4}"),
        ("MAR 7 1990", r"[A-Z]{3} \d{1,2} \d{4}"),
        ("19900307", r"\d{8}"),
    ],
)
def test_dateshift_keeps_the_format_and_shifts_by_the_subject_offset(value: str, pattern: str) -> None:
    op = DateShiftOperator()
    out = op.apply(value, "DATE_OF_BIRTH", CTX)
    assert re.fullmatch(pattern, out), out
    shifted = parse_date(out)
    assert shifted is not None
    assert (shifted.value - MARCH_7).days == subject_offset(KEYS.pseudonym_key, "subj-1", 30)


def test_dateshift_keeps_intervals_within_a_subject_and_not_across() -> None:
    op = DateShiftOperator({"max_days": 365})
    a1 = parse_date(op.apply("2024-01-01", "DATE_OF_BIRTH", CTX))
    a2 = parse_date(op.apply("2024-02-15", "DATE_OF_BIRTH", CTX))
    assert a1 is not None and a2 is not None and (a2.value - a1.value).days == 45
    other = OperatorContext(KEYS, subject="subj-2", today=TODAY)
    assert op.apply("2024-01-01", "DATE_OF_BIRTH", other) != op.apply("2024-01-01", "DATE_OF_BIRTH", CTX)


def test_dateshift_without_subject_or_date() -> None:
    op = DateShiftOperator()
    assert op.needs_subject
    assert op.apply("1990-03-07", "DATE_OF_BIRTH", OperatorContext(KEYS)) == "1990"
    assert op.apply("whenever", "DATE_OF_BIRTH", CTX) == "<DATE_OF_BIRTH>"
    # Shifting past the calendar's end gives the tag, not an exception.
    edge = "0001-01-01" if subject_offset(KEYS.pseudonym_key, "subj-1", 30) < 0 else "9999-12-31"
    assert op.apply(edge, "DATE_OF_BIRTH", CTX) == "<DATE_OF_BIRTH>"
