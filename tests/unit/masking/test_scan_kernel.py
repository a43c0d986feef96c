"""Every scanner case, run on the pure-Python twin and on the compiled kernel (ids py/c).

Cases are (text, expected) with ``expected`` the ``(type, substring)`` pairs the scanner reports at a
score of at least 0.5, in order; a case that expects nothing proves a look-alike, a bad checksum or a
glued number is left alone. Score cases pin the effect of raising and lowering context.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest

from appliance.masking import _lexicon, _scan_py

try:
    from ext import _scan as _compiled
except ImportError:  # no compiler at install time: only the twin is tested
    _compiled = None

REPO = Path(__file__).resolve().parents[3]
NOT_BUILT = "ext._scan is not built; run `python setup.py build_ext --inplace`"
TODAY = date(2024, 6, 1)  # fixed, so birth-date bounds do not move under the tests


@pytest.fixture(params=[_scan_py, _compiled], ids=["py", "c"], scope="module")
def kernel(request):
    if request.param is None:
        pytest.skip(NOT_BUILT)
    return request.param


@pytest.fixture(scope="module")
def scanner(kernel):
    return kernel.Scanner(**_lexicon.scanner_arguments(_scan_py.TYPES, today=TODAY))


def found(scanner, text: str, floor: int = 500) -> list[tuple[str, str]]:
    return [(_scan_py.TYPES[t], text[a:b]) for t, a, b, score, _ in scanner.scan(text) if score >= floor]


def one(scanner, text: str) -> tuple[str, str, int, str]:
    """The single finding in ``text``: (type, substring, score, validator)."""
    hits = scanner.scan(text)
    assert len(hits) == 1, hits
    t, a, b, score, v = hits[0]
    return _scan_py.TYPES[t], text[a:b], score, _scan_py.VALIDATORS[v]


CASES = {
    # --- mainland China: resident ID --------------------------------------------------------------------
    "id18": ("身份证号11010519491231002X，谢谢", [("CN_RESIDENT_ID", "11010519491231002X")]),
    "id18-lower-x": ("ID 11010519491231002x.", [("CN_RESIDENT_ID", "11010519491231002x")]),
    "id18-grouped": ("证件号 110105 19491231 002X 请核对", [("CN_RESIDENT_ID", "110105 19491231 002X")]),
    "id18-fullwidth": (
        "身份证１１０１０５１９４９１２３１００２Ｘ",
        [("CN_RESIDENT_ID", "１１０１０５１９４９１２３１００２Ｘ")],
    ),
    "id18-bad-check": ("身份证号110105194912310021", []),
    "id18-bad-province": ("身份证号990105194912310021", []),
    "id18-future-birth": ("身份证号110105202501010018", []),
    "id18-glued-letters": ("编号AB11010519491231002X", []),
    "id18-inside-longer-run": ("11010519491231002X5", []),
    "id15": ("老身份证110105491231002还能用吗", [("CN_RESIDENT_ID", "110105491231002")]),
    "id15-bad-date": ("老身份证110105491331002", []),
    # --- mobile -------------------------------------------------------------------------------------------
    "mobile-cjk-adjacent": ("手机13812345678请回电", [("CN_MOBILE", "13812345678")]),
    "mobile-dashed": ("电话 138-1234-5678。", [("CN_MOBILE", "138-1234-5678")]),
    "mobile-spaced": ("call 138 1234 5678", [("CN_MOBILE", "138 1234 5678")]),
    "mobile-plus86": ("+86 138 1234 5678", [("CN_MOBILE", "+86 138 1234 5678")]),
    "mobile-plus86-paren": ("(+86)13812345678", [("CN_MOBILE", "(+86)13812345678")]),
    "mobile-0086": ("0086 13912345678", [("CN_MOBILE", "0086 13912345678")]),
    "mobile-86": ("86-13812345678", [("CN_MOBILE", "86-13812345678")]),
    "mobile-fullwidth": ("１３８１２３４５６７８", [("CN_MOBILE", "１３８１２３４５６７８")]),
    "mobile-two-listed": (
        "13812345678 13987654321",
        [("CN_MOBILE", "13812345678"), ("CN_MOBILE", "13987654321")],
    ),
    "mobile-slash-listed": (
        "13812345678/13987654321",
        [("CN_MOBILE", "13812345678"), ("CN_MOBILE", "13987654321")],
    ),
    # not a mobile; in phone context only a national-phone candidate, which no region accepts (analyzer)
    "mobile-unallocated-prefix": ("手机15412345678", [("PHONE", "15412345678")]),
    "mobile-unallocated-prefix-no-context": ("15412345678", []),
    "mobile-satellite-1740": ("17401234567", [("CN_MOBILE", "17401234567")]),
    "mobile-1741-unallocated": ("17411234567", []),
    "mobile-glued-letter": ("abc13812345678", []),
    "mobile-in-decimal": ("3.13812345678", []),
    "mobile-in-email": ("13812345678@163.com", [("EMAIL", "13812345678@163.com")]),
    "mobile-in-code": ("INV-13812345678", []),
    # --- landline -----------------------------------------------------------------------------------------
    "landline-dashed": ("座机010-62345678", [("CN_LANDLINE", "010-62345678")]),
    "landline-extension": ("座机 010-62345678-801", [("CN_LANDLINE", "010-62345678-801")]),
    "landline-paren": ("(0755)88886666", [("CN_LANDLINE", "(0755)88886666")]),
    "landline-spaced": ("电话 0571 8888 6666", [("CN_LANDLINE", "0571 8888 6666")]),
    "landline-plus86": ("+86 10 6234 5678", [("CN_LANDLINE", "+86 10 6234 5678")]),
    "landline-bare-no-context": ("01062345678", []),
    "landline-bare-context": ("座机01062345678", [("CN_LANDLINE", "01062345678")]),
    "landline-unknown-area": ("010-12345678", []),
    "landline-026-unassigned": ("026-62345678", []),
    # --- USCC ----------------------------------------------------------------------------------------------
    "uscc": ("统一社会信用代码91110000600037341L", [("CN_USCC", "91110000600037341L")]),
    "uscc-bad-check": ("统一社会信用代码91110000600037341M", []),
    "uscc-bad-head": ("信用代码99110000600037341L", []),
    # --- passports and permits -----------------------------------------------------------------------------
    "cn-passport": ("护照E12345678", [("CN_PASSPORT", "E12345678")]),
    "cn-passport-letter": ("passport EA1234567", [("CN_PASSPORT", "EA1234567")]),
    "cn-passport-official": ("护照号DE1234567", [("CN_PASSPORT", "DE1234567")]),
    "cn-passport-no-io-is-other-passport": ("护照号EI1234567", [("PASSPORT", "EI1234567")]),
    "permit-hk-macau": ("港澳通行证C12345678", [("CN_PERMIT", "C12345678")]),
    "permit-card": ("通行证CA1234567", [("CN_PERMIT", "CA1234567")]),
    "permit-home-return-10": ("回乡证H1234567890", [("CN_PERMIT", "H1234567890")]),
    "permit-taiwan-digits": ("台胞证12345678", [("CN_PERMIT", "12345678")]),
    "permit-digits-no-context": ("12345678", []),
    "permit-in-code": ("case T20240920-1875", []),
    "passport-other": ("passport no: K1234567", [("PASSPORT", "K1234567")]),
    "passport-mixed": ("passport number G039389X9", [("PASSPORT", "G039389X9")]),
    "passport-nine-digits": ("Passport 123456789", [("PASSPORT", "123456789")]),
    "passport-no-context": ("code K1234567", []),
    # --- plates -------------------------------------------------------------------------------------------
    "plate": ("车牌京A12345", [("CN_PLATE", "京A12345")]),
    "plate-dot-nev": ("粤B·D12345", [("CN_PLATE", "粤B·D12345")]),
    "plate-space": ("浙T AV3575的ETC", [("CN_PLATE", "浙T AV3575")]),
    "plate-nev-large": ("沪A12345F", [("CN_PLATE", "沪A12345F")]),
    "plate-special": ("京A1234学", [("CN_PLATE", "京A1234学")]),
    "plate-three-letters": ("京AABC12", []),
    "plate-letter-o": ("京O12345", []),
    # --- cards -------------------------------------------------------------------------------------------
    "card-grouped": ("卡号：6222 0212 3456 7890 128", [("BANK_CARD", "6222 0212 3456 7890 128")]),
    "card-visa": ("card 4111 1111 1111 1111 exp", [("BANK_CARD", "4111 1111 1111 1111")]),
    "card-dashed": ("4111-1111-1111-1111", [("BANK_CARD", "4111-1111-1111-1111")]),
    "card-amex": ("amex 3782 822463 10005", [("BANK_CARD", "3782 822463 10005")]),
    "card-fullwidth": (
        "卡号６２２２０２１２３４５６７８９０１２８",
        [("BANK_CARD", "６２２２０２１２３４５６７８９０１２８")],
    ),
    "card-bad-luhn": ("card 4111 1111 1111 1112", []),
    "card-order-context": ("订单号4111111111111111请查询", []),
    "card-unknown-iin": ("编号 1234567812345670", []),
    "card-unknown-iin-context": ("卡号1234567812345670", [("BANK_CARD", "1234567812345670")]),
    "card-unionpay-no-luhn-context": ("银行卡6222021234567890123", []),
    "card-unionpay-no-luhn-bare": ("6222021234567890123", []),
    "card-uatp": ("122000000000003", [("BANK_CARD", "122000000000003")]),
    "card-uatp-grouped": ("card 1220 000000 00003", [("BANK_CARD", "1220 000000 00003")]),
    "card-uatp-only-15-digits": ("编号 1234567812345670", []),
    "card-dankort": ("5019717010103742", [("BANK_CARD", "5019717010103742")]),
    "card-dankort-bad-luhn": ("5019717010103743", []),
    "card-uatp-order-context": ("order no 122000000000003", []),
    # --- IBAN ----------------------------------------------------------------------------------------------
    "iban-grouped": ("IBAN DE89 3704 0044 0532 0130 00 thanks", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
    "iban-compact": ("GB82WEST12345698765432", [("IBAN", "GB82WEST12345698765432")]),
    "iban-bad-check": ("IBAN DE89 3704 0044 0532 0130 01", []),
    "iban-bad-structure": ("GB82W3ST12345698765432", []),
    "iban-wrong-length": ("DE89 3704 0044 0532 0130", []),
    "iban-dashed": (
        "Dash as iban separator: AL47-2121-1009-0000-0002-3569-8741",
        [("IBAN", "AL47-2121-1009-0000-0002-3569-8741")],
    ),
    "iban-mixed-separators": ("AL47-2121 1009-0000-0002-3569-8741", []),
    "iban-dashed-inside-a-code": ("AL47-2121-1009-0000-0002-3569-8741-X1", []),
    # --- US ------------------------------------------------------------------------------------------------
    "ssn": ("My SSN is 123-45-6780", [("US_SSN", "123-45-6780")]),
    "ssn-spaced": ("ssn 123 45 6780", [("US_SSN", "123 45 6780")]),
    "ssn-bare-context": ("SSN: 123456780", [("US_SSN", "123456780")]),
    "ssn-bare-no-context": ("ref 123456780", []),
    "ssn-area-666": ("SSN 666-45-6789", []),
    "ssn-group-00": ("SSN 123-00-6789", []),
    "ssn-void-sample": ("SSN 078-05-1120", []),
    "itin": ("ITIN 912-70-1234", [("US_ITIN", "912-70-1234")]),
    "itin-bad-group": ("ITIN 912-93-1234", []),
    "ssn-dotted": ("078.05.1123", [("US_SSN", "078.05.1123")]),
    "ssn-dotted-context": ("SSN 123.45.6780", [("US_SSN", "123.45.6780")]),
    "ssn-dotted-void-sample": ("SSN 078.05.1120", []),
    "ssn-dotted-order": ("order no 123.45.6780", []),
    "itin-dotted": ("ITIN 912.70.1234", [("US_ITIN", "912.70.1234")]),
    "itin-one-dash-no-context": ("911-701234 91170-1234", []),
    "itin-one-dash-context": ("ITIN 91170-1234", [("US_ITIN", "91170-1234")]),
    "itin-bare-context": ("纳税人识别号911701234", [("US_ITIN", "911701234")]),
    "itin-list-shares-context": (
        "my taxpayer id is 911-701234 91170-1234",
        [("US_ITIN", "911-701234"), ("US_ITIN", "91170-1234")],
    ),
    "itin-list-comma": (
        "taxpayer id: 911701234, 912701234",
        [("US_ITIN", "911701234"), ("US_ITIN", "912701234")],
    ),
    "itin-not-a-list": ("my taxpayer id is 911-701234 and 91170-1234", [("US_ITIN", "911-701234")]),
    "ssn-list-of-order-numbers": ("order no 123456780 234567890", []),
    # --- phones --------------------------------------------------------------------------------------------
    "phone-intl": ("Call +44 20 7946 0958 today", [("PHONE", "+44 20 7946 0958")]),
    "phone-nanp-paren": ("(415) 555-0132", [("PHONE", "(415) 555-0132")]),
    "phone-nanp-dashed": ("415-555-0132", [("PHONE", "415-555-0132")]),
    "phone-nanp-dots": ("415.555.0132", [("PHONE", "415.555.0132")]),
    "phone-nanp-bare-context": ("call me 4155550132", [("PHONE", "4155550132")]),
    "phone-nanp-bare": ("4155550132", []),
    "phone-nanp-reference-number": ("reference number 4155550132", []),
    "phone-nanp-account-number": ("account number 4155550132", []),
    # national numbers: kernel candidates in phone context only (the analyzer checks them by region)
    "phone-national-number": ("My Israeli number is 09-7625400", [("PHONE", "09-7625400")]),
    "phone-national-listed": (
        "try one of these phones 052 5552606 074-7111234",
        [("PHONE", "052 5552606"), ("PHONE", "074-7111234")],
    ),
    "phone-national-zh": ("电话：052 5552606", [("PHONE", "052 5552606")]),
    "phone-national-guangzhou-is-landline": ("电话 020 7946 0958", [("CN_LANDLINE", "020 7946 0958")]),
    "phone-national-no-context": ("09-7625400", []),
    "phone-national-order-number": ("order number 0525552606", []),
    "phone-national-account-number": ("account number 0525552606", []),
    "phone-national-passport-number": ("passport number 0525552606", []),
    # --- internet ------------------------------------------------------------------------------------------
    "email": ("email john.smith@example.com, ok", [("EMAIL", "john.smith@example.com")]),
    "email-qq": ("12345678@qq.com", [("EMAIL", "12345678@qq.com")]),
    "email-double-dot": ("a..b@example.com", [("EMAIL", "b@example.com")]),
    "email-numeric-tld": ("me@host.123", []),
    "ipv4": ("ip 192.168.1.10:8080", [("IP_ADDRESS", "192.168.1.10")]),
    "ipv4-leading-zero": ("ip 192.168.01.10", []),
    "ipv4-five-parts": ("1.2.3.4.5", []),
    "ipv4-version": ("version 1.2.3.4", []),
    "ipv6": (
        "ip 2001:db8::1 and fe80::1%eth0",
        [("IP_ADDRESS", "2001:db8::1"), ("IP_ADDRESS", "fe80::1%eth0")],
    ),
    "ipv6-zone-full-stop": ("host fe80::1%eth0.", [("IP_ADDRESS", "fe80::1%eth0")]),
    "ipv6-zone-empty": ("fe80::1% ok", [("IP_ADDRESS", "fe80::1")]),
    "ipv6-cidr": ("Use 2001:db8::/32.", [("IP_ADDRESS", "2001:db8::/32")]),
    "ipv6-cidr-loopback": ("::1/128", [("IP_ADDRESS", "::1/128")]),
    "ipv6-zone-and-cidr": ("fe80::1%eth0/64", [("IP_ADDRESS", "fe80::1%eth0/64")]),
    "ipv6-cidr-too-long": ("::1/129", [("IP_ADDRESS", "::1")]),
    "ipv4-cidr": ("Route is 10.0.0.0/8.", [("IP_ADDRESS", "10.0.0.0/8")]),
    "ipv4-cidr-zero": ("0.0.0.0/0", [("IP_ADDRESS", "0.0.0.0/0")]),
    "ipv4-cidr-too-long": ("192.168.1.0/33", [("IP_ADDRESS", "192.168.1.0")]),
    "ipv4-cidr-leading-zero": ("192.168.1.0/08", [("IP_ADDRESS", "192.168.1.0")]),
    "ipv4-cidr-path": ("10.0.0.0/8/9", [("IP_ADDRESS", "10.0.0.0")]),
    "ipv4-cidr-glued": ("10.0.0.0/8abc", [("IP_ADDRESS", "10.0.0.0")]),
    "ipv4-no-zone": ("192.168.1.1%eth0", [("IP_ADDRESS", "192.168.1.1")]),
    "ipv4-at-interface": ("192.168.2.1@eth0", [("IP_ADDRESS", "192.168.2.1")]),
    "ipv4-in-email": ("1.2.3.4@example.com", [("EMAIL", "1.2.3.4@example.com")]),
    "ipv4-glued-fifth-part": ("192.168.1.1.1", []),
    "ipv6-leading-colons": ("host ::ffff:192.0.2.1.", [("IP_ADDRESS", "::ffff:192.0.2.1")]),
    "ipv6-time-is-not": ("at 12:30:45", []),
    "mac-colon": ("mac 00:1A:2B:3C:4D:5E", [("MAC_ADDRESS", "00:1A:2B:3C:4D:5E")]),
    "mac-dash": ("00-1a-2b-3c-4d-5e", [("MAC_ADDRESS", "00-1a-2b-3c-4d-5e")]),
    "mac-cisco": ("0011.2233.4455", [("MAC_ADDRESS", "0011.2233.4455")]),
    "mac-seven-groups": ("00:1A:2B:3C:4D:5E:6F", []),
    # --- dates of birth ------------------------------------------------------------------------------------
    "dob-iso": ("出生日期1990-03-07", [("DATE_OF_BIRTH", "1990-03-07")]),
    "dob-cn": ("生日：1990年3月7日", [("DATE_OF_BIRTH", "1990年3月7日")]),
    "dob-us": ("DOB 03/07/1990", [("DATE_OF_BIRTH", "03/07/1990")]),
    "dob-long": ("born March 7, 1990", [("DATE_OF_BIRTH", "March 7, 1990")]),
    "dob-dmy": ("date of birth 7th March 1990", [("DATE_OF_BIRTH", "7th March 1990")]),
    "dob-eu-dots": ("born 31.12.1990", [("DATE_OF_BIRTH", "31.12.1990")]),
    "dob-no-context": ("on 1990-03-07 we met", []),
    "dob-future": ("生日2030-01-01", []),
    "dob-impossible": ("born 1990-02-30", []),
    # --- people ---------------------------------------------------------------------------------------------
    "person-cn-trigger": ("我叫王小明，谢谢", [("PERSON", "王小明")]),
    "person-cn-compound": ("联系人：欧阳娜娜", [("PERSON", "欧阳娜娜")]),
    "person-cn-honorific": ("张伟先生您好", [("PERSON", "张伟")]),
    "person-cn-surname-only": ("王先生您好", []),
    "person-cn-no-context": ("王小明来了", []),
    "person-cn-weak-needs-end": ("我是高级会员", []),
    "person-cn-weak-ends": ("我是张伟，想问一下", [("PERSON", "张伟")]),
    "person-en-trigger": ("My name is John Smith.", [("PERSON", "John Smith")]),
    "person-en-title": ("Please ask Dr. Jane Doe", [("PERSON", "Jane Doe")]),
    "person-en-title-surname": ("They call me Mr. Mayers", [("PERSON", "Mayers")]),
    "person-en-title-and-suffix": ("Dear Mrs. Jane Doe MD,", [("PERSON", "Jane Doe MD")]),
    "person-en-suffix-jr": ("Regards, John Smith Jr.", [("PERSON", "John Smith Jr.")]),
    "person-en-suffix": ("I'm Patricia Mitchell MD, hi", [("PERSON", "Patricia Mitchell MD")]),
    "person-en-initial": ("Regards, John F. Kennedy Jr.", [("PERSON", "John F. Kennedy Jr.")]),
    "person-en-given-name": ("Invoice lists Caroline Robbins at home", [("PERSON", "Caroline Robbins")]),
    "person-en-here": ("Jodi Thompson here.", [("PERSON", "Jodi Thompson")]),
    "person-en-nonname": ("Dear Customer Service,", []),
    # --- addresses ------------------------------------------------------------------------------------------
    "address-cn": (
        "收货地址改成广东省深圳市南山区科技园路1号2栋501室 518000，谢谢",
        [("ADDRESS", "广东省深圳市南山区科技园路1号2栋501室 518000")],
    ),
    "address-cn-lead": ("我住在北京市朝阳区建国路88号", [("ADDRESS", "北京市朝阳区建国路88号")]),
    "address-cn-place-with-function-char": (
        "寄到成都市和平区平安路3号",
        [("ADDRESS", "成都市和平区平安路3号")],
    ),
    "address-cn-one-marker": ("我不知道怎么办", []),
    "address-cn-pseudo": ("回乡证号码L75582823", [("CN_PERMIT", "L75582823")]),
    "address-en": ("I live at 221B Baker Street, London", [("ADDRESS", "221B Baker Street")]),
    "address-en-city-zip": (
        "ship to 350 5th Ave, Apt 4B, New York, NY 10118 ok",
        [("ADDRESS", "350 5th Ave, Apt 4B, New York, NY 10118")],
    ),
    "address-en-military": (
        "ship to PSC 4533, Box 7245, APO AP 87860 now",
        [("ADDRESS", "PSC 4533, Box 7245, APO AP 87860")],
    ),
    "address-en-ship": ("USCGC Parker, FPO AA 35242", [("ADDRESS", "USCGC Parker, FPO AA 35242")]),
    # --- look-alikes ----------------------------------------------------------------------------------------
    "lookalike-order": ("订单号201908230001234567的物流", []),
    "lookalike-tracking": ("tracking number 1Z999AA10123456784", []),
    "lookalike-invoice-code": ("发票号码INV-2022-330814作废", []),
    "empty": ("", []),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_case(scanner, text, expected):
    assert found(scanner, text) == expected


def test_offsets_are_code_points_of_the_original_text(scanner):
    text = "😀 手机１３８１２３４５６７８😀"
    (_, a, b, _, _) = scanner.scan(text)[0]
    assert text[a:b] == "１３８１２３４５６７８" and (a, b) == (4, 15)


def test_validator_codes_name_the_check(scanner):
    assert one(scanner, "身份证11010519491231002X")[3] == "gb11643"
    assert one(scanner, "110105491231002")[3] == "gb11643-15"
    assert one(scanner, "91110000600037341L")[3] == "gb32100"
    assert one(scanner, "4111111111111111")[3] == "luhn"
    assert one(scanner, "GB82WEST12345698765432")[3] == "mod97"
    assert one(scanner, "+44 20 7946 0958")[3] == "phone-candidate"
    assert one(scanner, "my number is 09-7625400")[3] == "phone-national"


@pytest.mark.parametrize(
    ("raised", "plain", "lowered"),
    [
        ("卡号4111111111111111", "4111111111111111", "订单号4111111111111111"),
        ("手机13812345678", "13812345678", "订单号13812345678"),
        ("SSN 123-45-6780", "123-45-6780", "order no 123-45-6780"),
        ("身份证11010519491231002X", "11010519491231002X", "order id 11010519491231002X"),
        ("ip 192.168.1.10", "192.168.1.10", "version 192.168.1.10"),
    ],
    ids=["card", "mobile", "ssn", "resident-id", "ip"],
)
def test_context_raises_and_lowers_the_score(scanner, raised, plain, lowered):
    up, base, down = (one(scanner, t)[2] for t in (raised, plain, lowered))
    assert up > base > down


def test_unionpay_without_luhn_is_only_a_weak_candidate_in_card_context(scanner):
    # Some UnionPay debit cards carry no Luhn digit: visible below the default floor, for stricter profiles.
    assert one(scanner, "银行卡6222021234567890123") == (
        "BANK_CARD",
        "6222021234567890123",
        450,
        "unionpay-prefix",
    )
    assert scanner.scan("编号6222021234567890123") == []


def test_checksum_proof_survives_lowering_context(scanner):
    # A valid GB 11643 number next to "order" is still reported, at a lower score; a bare Luhn pass is not.
    assert one(scanner, "order id 11010519491231002X")[2] >= 500
    assert one(scanner, "订单号4111111111111111")[2] < 500


def test_nearest_context_word_wins(scanner):
    assert one(scanner, "订单号已发，卡号4111111111111111")[2] > 900
    assert one(scanner, "卡号见下，订单号4111111111111111")[2] < 500


def test_longer_context_word_wins_at_equal_distance(scanner):
    # "order id" (lowering) ends where "id" (raising) does: the longer, more specific phrase decides.
    assert one(scanner, "id 11010519491231002X")[2] > one(scanner, "order id 11010519491231002X")[2]


def test_context_window_stops_at_sentence_end(scanner):
    assert one(scanner, "手机是13812345678。订单号如下")[2] > 900


def test_ascii_context_words_match_whole_words_only(scanner):
    assert one(scanner, "prefer 123-45-6780")[2] == one(scanner, "123-45-6780")[2]


def test_overlaps_resolve_to_one_finding(scanner):
    hits = scanner.scan("联系人王府路1号楼2单元")
    assert [h for h in hits if h[3] >= 500] and all(a[2] <= b[1] for a, b in pairwise(hits))


def test_output_is_sorted_and_non_overlapping(scanner):
    text = " ".join(t for t, _ in CASES.values())
    hits = scanner.scan(text)
    assert hits == sorted(hits, key=lambda h: h[1])
    assert all(prev[2] <= cur[1] for prev, cur in pairwise(hits))
    assert all(0 <= t < len(_scan_py.TYPES) and 0 <= v < len(_scan_py.VALIDATORS) for t, _, _, _, v in hits)


def test_long_runs_stay_linear(scanner):
    text = "1 " * 20000 + "a.a" * 5000 + "@" + "号" * 10000 + "13812345678 " * 2000
    assert [h[3] for h in scanner.scan(text)] == [850] * 2000  # only the mobiles


def test_scan_refuses_non_str(scanner):
    with pytest.raises(TypeError):
        scanner.scan(b"13812345678")
    with pytest.raises(TypeError):
        scanner.scan(None)


def test_stub_and_lexicon_name_the_twin_s_arguments():
    stub = ast.parse((REPO / "ext" / "_scan.pyi").read_text("utf-8"))
    [init] = [n for n in ast.walk(stub) if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    twin = [p for p in inspect.signature(_scan_py.Scanner.__init__).parameters if p != "self"]
    assert [a.arg for a in init.args.kwonlyargs] == twin
    assert sorted(_lexicon.scanner_arguments(_scan_py.TYPES)) == sorted(twin)


def test_codes_tables_agree(kernel):
    assert kernel.TYPES == _scan_py.TYPES
    assert kernel.VALIDATORS == _scan_py.VALIDATORS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"raising": ()}, "one tuple of words per type"),
        ({"address_markers": (("市",),)}, "administrative, street, house"),
        ({"months": ("january",)}, "12 month names"),
        ({"surnames": ("王李",)}, "single character"),
        ({"lowering": ("",)}, "non-empty string"),
        ({"honorifics": ("\U00020000",)}, "Basic Multilingual Plane"),
        ({"iban_formats": ("DEnnx",)}, "n/a/c per BBAN character"),
        ({"cn_area_codes": ("1",)}, "2 or 3 digits"),
        ({"today": 2024}, "YYYYMMDD"),
    ],
    ids=["raising", "markers", "months", "surname", "empty-word", "non-bmp", "iban", "area", "today"],
)
def test_bad_lexicon_is_refused_with_the_fix(kernel, change, message):
    args = {**_lexicon.scanner_arguments(_scan_py.TYPES), **change}
    with pytest.raises(ValueError, match=message):
        kernel.Scanner(**args)


@pytest.mark.parametrize(
    ("switch", "expected"),
    [("1", "py"), ("true", "py"), (None, "c"), ("0", "c")],
    ids=["no-extensions=1", "no-extensions=true", "unset", "no-extensions=0"],
)
def test_kernel_choice_follows_environment(switch, expected):
    if expected == "c" and _compiled is None:
        pytest.skip(NOT_BUILT)
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_NO_EXTENSIONS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if switch is not None:
        env["APPLIANCE_NO_EXTENSIONS"] = switch
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "import appliance.masking._kernel as k; print(k.IMPLEMENTATION)",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == expected
