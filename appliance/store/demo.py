"""Demo data for ``make run``: bilingual customers, 90 days of events, chat transcripts full of identifiers.

The data is made to exercise the rest of the appliance, not to look pretty:

* every declared field, hence every masking entity type, appears on some customer
  (the first customers of each region carry all their region's identifiers);
* identifiers are mostly valid, and a few percent are checksum- or range-invalid
  look-alikes (wrong GB 11643 check char, failed Luhn, bad IBAN check digits, SSN
  area 666), because real records hold typos and the masking engine must tell;
* transcripts quote identifiers the way people type them (spaces, dashes,
  full-width digits) next to numbers that only look like one (order, ticket and
  tracking numbers);
* events follow a simple churn story (a share of customers fade out: fewer logins,
  complaints, failed payments, downgrades, a cancellation) so predictors have
  something to learn.

Names and addresses come from Faker (zh_CN and en_US). Field identifiers are
generated here by their standards, because they must agree with the customer (the
resident ID carries the date of birth, phones and cards fit the region), and each
is checked against the masking engine's validators so "valid" and "invalid" mean
what the engine will say. Mistyped identifiers and look-alikes in transcripts come
from :mod:`appliance.masking.synth`, the generator the masking corpus uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from appliance.masking import validators
from appliance.store.store import Store

__all__ = ["DemoReport", "load_demo"]

_CHUNK = 500


@dataclass(frozen=True)
class DemoReport:
    seed: int
    customers: int
    events: int
    transcripts: int
    messages: int
    consents: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- identifiers ---------------------------------------------------------------------------------------
_DIGITS = "0123456789"
_UPPER_NO_IO = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_CN_AREAS = (
    "110101",
    "110105",
    "310104",
    "310115",
    "440304",
    "440106",
    "510107",
    "330106",
    "420102",
    "320102",
)
_CN_MOBILE_PREFIXES = (
    "134",
    "135",
    "136",
    "138",
    "139",
    "150",
    "152",
    "158",
    "182",
    "187",
    "130",
    "132",
    "186",
    "133",
    "153",
    "180",
    "189",
    "199",
)
_PLATE_PROVINCES = "京沪粤浙苏川鄂湘鲁闽"
_FULL_WIDTH = {ord(c): chr(ord(c) + 0xFEE0) for c in _DIGITS}


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_DIGITS) for _ in range(n))


def _resident_id(rng: random.Random, birth: date, valid: bool) -> str:
    body = f"{rng.choice(_CN_AREAS)}{birth:%Y%m%d}{_digits(rng, 3)}"
    check = validators.gb11643_check_char(body)
    if not valid:
        check = rng.choice([c for c in validators.GB11643_CHECK_CHARS if c != check])
    return body + check


def _bank_card(rng: random.Random, region: str, valid: bool) -> str:
    if region in ("CN", "HK", "MO", "TW"):
        prefix, length = rng.choice((("622202", 19), ("621700", 19), ("622848", 19), ("625807", 16)))
    else:
        prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("2221", 16)))
    body = prefix + _digits(rng, length - len(prefix) - 1)
    check = validators.luhn_check_digit(body)
    if not valid:
        if prefix.startswith("62"):  # UnionPay may lack a Luhn digit; a bad Visa is unambiguous
            body = "4" + _digits(rng, 14)
            check = validators.luhn_check_digit(body)
        check = str((int(check) + rng.randint(1, 9)) % 10)
    return body + check


def _iban(rng: random.Random, valid: bool) -> str:
    country, bban = rng.choice(
        (
            ("DE", lambda: _digits(rng, 18)),
            ("FR", lambda: _digits(rng, 23)),
            (
                "GB",
                lambda: (
                    "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + _digits(rng, 14)
                ),
            ),
            (
                "NL",
                lambda: (
                    "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + _digits(rng, 10)
                ),
            ),
        )
    )
    b = bban()
    check = int(validators.iban_check_digits(country, b))
    if not valid:
        check = rng.choice([c for c in range(2, 99) if c != check])
    return f"{country}{check:02d}{b}"


def _uscc(rng: random.Random, valid: bool) -> str:
    body = (
        "91"
        + rng.choice(_CN_AREAS)
        + "".join(rng.choice(validators.USCC_ALPHABET[:10] + "ABCDEFGH") for _ in range(9))
    )
    check = validators.uscc_check_char(body)
    if not valid:
        check = rng.choice([c for c in validators.USCC_ALPHABET if c != check])
    return body + check


def _ssn(rng: random.Random, valid: bool) -> str:
    if valid:
        area = rng.choice([a for a in range(1, 900) if a != 666])
        group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    else:
        area, group, serial = rng.choice(
            (
                (666, rng.randint(1, 99), rng.randint(1, 9999)),
                (0, rng.randint(1, 99), 1234),
                (123, 0, rng.randint(1, 9999)),
            )
        )
    return f"{area:03d}-{group:02d}-{serial:04d}"


def _itin(rng: random.Random, valid: bool) -> str:
    group = (
        rng.choice((*range(70, 89), *range(50, 66), 90, 91, 92)) if valid else rng.choice((10, 45, 89, 93))
    )
    return f"9{rng.randint(0, 99):02d}-{group:02d}-{rng.randint(0, 9999):04d}"


def _cn_mobile(rng: random.Random, valid: bool = True) -> str:
    prefix = rng.choice(_CN_MOBILE_PREFIXES) if valid else rng.choice(("154", "160", "169"))
    return prefix + _digits(rng, 8)


def _cn_landline(rng: random.Random) -> str:
    area, local = rng.choice((("010", 8), ("021", 8), ("020", 8), ("0755", 8), ("0571", 8), ("028", 8)))
    return f"{area}-{rng.randint(2, 9)}{_digits(rng, local - 1)}"


def _phone(rng: random.Random, region: str) -> str:
    if region == "US":
        return f"+1 {rng.choice((212, 415, 646, 312, 206, 617))} {rng.randint(200, 999)} {_digits(rng, 4)}"
    if region == "GB":
        return f"+44 20 7946 {rng.randint(0, 999):04d}"
    if region == "HK":
        return f"+852 9{_digits(rng, 3)} {_digits(rng, 4)}"
    if region == "SG":
        return f"+65 9{_digits(rng, 3)} {_digits(rng, 4)}"
    return rng.choice((f"+49 30 {rng.randint(10_000_000, 99_999_999)}", f"+49 151 {_digits(rng, 8)}"))


def _cn_passport(rng: random.Random) -> str:
    return rng.choice(
        ("E" + _digits(rng, 8), "E" + rng.choice(_UPPER_NO_IO) + _digits(rng, 7), "G" + _digits(rng, 8))
    )


def _cn_permit(rng: random.Random, region: str) -> str:
    if region == "HK":
        return "H" + _digits(rng, 8)
    if region == "MO":
        return "M" + _digits(rng, 8)
    return "C" + rng.choice(_UPPER_NO_IO + _DIGITS) + _digits(rng, 7)


def _passport(rng: random.Random) -> str:
    return rng.choice((_digits(rng, 9), rng.choice("CKLMN") + _digits(rng, 8)))


def _plate(rng: random.Random) -> str:
    head = rng.choice(_PLATE_PROVINCES) + rng.choice("ABCDEFG")
    if rng.random() < 0.25:  # new-energy vehicle
        serial = rng.choice("DF") + rng.choice(_UPPER_NO_IO + _DIGITS) + _digits(rng, 4)
    else:
        letters = rng.randint(0, 2)
        chars = [rng.choice(_UPPER_NO_IO) for _ in range(letters)] + [
            rng.choice(_DIGITS) for _ in range(5 - letters)
        ]
        rng.shuffle(chars)
        serial = "".join(chars)
    return head + ("·" if rng.random() < 0.3 else "") + serial


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return "2001:db8:" + ":".join(f"{rng.randrange(65536):x}" for _ in range(6))
    first = rng.choice((36, 58, 101, 112, 183, 203, 66, 98, 151, 185))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02x}" for _ in range(6))


_ENTITY_OF = {
    "cn_resident_id": "CN_RESIDENT_ID",
    "bank_card": "BANK_CARD",
    "iban": "IBAN",
    "employer_uscc": "CN_USCC",
    "us_ssn": "US_SSN",
    "us_itin": "US_ITIN",
    "mobile": "CN_MOBILE",
    "phone": "PHONE",
}


def _checked(entity: str, make: Callable[[bool], str], valid: bool) -> str:
    """A value the masking engine's validator accepts (valid) or refuses (a look-alike)."""
    value = make(valid)
    for _ in range(50):
        if validators.check(entity, value) == valid:
            return value
        value = make(valid)
    raise RuntimeError(
        f"demo generator for {entity} cannot produce a {'valid' if valid else 'invalid'} value"
    )


# -- customers ------------------------------------------------------------------------------------------
_REGIONS = (("CN", 0.55), ("US", 0.18), ("EU", 0.09), ("GB", 0.06), ("HK", 0.07), ("SG", 0.05))
_CURRENCY = {"CN": "CNY", "US": "USD", "EU": "EUR", "GB": "GBP", "HK": "HKD", "SG": "SGD"}
_ZH_REGIONS = ("CN", "HK")


@dataclass(frozen=True)
class _Persona:
    """What the event and transcript generators need to know about a demo customer."""

    index: int
    region: str
    lang: str
    churner: bool
    activity: float  # sessions per day at the start of the window
    plan: str
    values: dict[str, str]


def _customer(
    i: int, region: str, full: bool, rng: random.Random, fakers: dict[str, Any], bad: float
) -> dict[str, Any]:
    zh = region in _ZH_REGIONS
    fk = fakers["zh_CN" if zh else "en_US"]

    def has(share: float) -> bool:
        return full or rng.random() < share

    def valid() -> bool:
        return rng.random() >= bad

    birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    row: dict[str, Any] = {
        "full_name": fk.name(),
        "date_of_birth": birth.isoformat() if has(0.8) else None,
        "address": fk.address().replace("\n", ", ") if has(0.7) else None,
        "email": fk.email() if has(0.75) else None,
        "segment": rng.choices(("mass", "affluent", "private", "sme"), (0.6, 0.25, 0.05, 0.1))[0],
        "plan": rng.choices(("basic", "plus", "premium"), (0.5, 0.35, 0.15))[0],
        "preferred_language": ("zh" if zh else "en") if rng.random() < 0.92 else ("en" if zh else "zh"),
        "marketing_consent": rng.random() < 0.6,
        "last_login_ip": _ip(rng) if has(0.8) else None,
        "device_mac": _mac(rng) if has(0.3) else None,
        "bank_card": _checked("BANK_CARD", lambda v: _bank_card(rng, region, v), valid())
        if has(0.6)
        else None,
    }
    if region == "CN":
        row["mobile"] = _checked("CN_MOBILE", lambda v: _cn_mobile(rng, v), True) if has(0.95) else None
        row["landline"] = _cn_landline(rng) if has(0.3) else None
        row["cn_resident_id"] = (
            _checked("CN_RESIDENT_ID", lambda v: _resident_id(rng, birth, v), valid()) if has(0.9) else None
        )
        row["cn_passport"] = _cn_passport(rng) if has(0.25) else None
        row["cn_permit"] = _cn_permit(rng, region) if has(0.15) else None
        row["vehicle_plate"] = _plate(rng) if has(0.35) else None
        if full or row["segment"] == "sme" or rng.random() < 0.05:
            row["employer_uscc"] = _checked("CN_USCC", lambda v: _uscc(rng, v), valid())
    elif region == "HK":
        row["phone"] = _checked("PHONE", lambda v: _phone(rng, region), True)
        row["cn_permit"] = _cn_permit(rng, region) if has(0.7) else None
        row["passport"] = _passport(rng) if has(0.3) else None
    else:
        row["phone"] = _checked("PHONE", lambda v: _phone(rng, region), True) if has(0.9) else None
        row["passport"] = _passport(rng) if has(0.3) else None
        if region == "US":
            row["us_ssn"] = _checked("US_SSN", lambda v: _ssn(rng, v), valid()) if has(0.7) else None
            row["us_itin"] = _checked("US_ITIN", lambda v: _itin(rng, v), valid()) if has(0.08) else None
        else:
            row["iban"] = _checked("IBAN", lambda v: _iban(rng, v), valid()) if has(0.5) else None
    if has(0.2):
        row["notes"] = _note(rng, row, zh)
    # Money from a stream of its own, so the identifiers above stay what they were for a given seed.
    money = random.Random(f"money/{i}/{region}")
    row["product"] = money.choices(("card", "loan", "deposit", "wealth", "insurance"), (4, 2, 3, 1, 1))[0]
    scale = {"mass": 1.0, "affluent": 6.0, "private": 40.0, "sme": 10.0}[row["segment"]]
    balance = money.lognormvariate(8.0, 1.1) * scale
    row["balance"] = round(-balance / 20 if money.random() < 0.06 else balance, 2)
    if money.random() < 0.9:
        row["monthly_spend"] = round(money.lognormvariate(6.5, 0.8) * min(scale, 8.0), 2)
    return {k: v for k, v in row.items() if v is not None}


def _note(rng: random.Random, row: dict[str, Any], zh: bool) -> str:
    day = date(rng.randint(2023, 2025), rng.randint(1, 12), rng.randint(1, 28))
    ticket = f"GD{day:%Y%m%d}{rng.randint(1, 999):03d}"
    if zh:
        parts = [f"客户来电，已登记工单 {ticket}。"]
        if row.get("bank_card"):
            parts.append(f"反映尾号{row['bank_card'][-4:]}的银行卡 {_spaced(row['bank_card'])} 被重复扣费。")
        if row.get("mobile"):
            parts.append(f"回访电话 {row['mobile']}。")
        return "".join(parts)
    parts = [f"Called in, ticket {ticket}."]
    if row.get("email"):
        parts.append(f" Send the refund confirmation to {row['email']}.")
    if row.get("us_ssn"):
        parts.append(f" Verified identity with SSN {row['us_ssn']}.")
    return "".join(parts)


def _spaced(s: str) -> str:
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


# -- events ----------------------------------------------------------------------------------------------
_PAGES = ("/", "/plans", "/billing", "/orders", "/support", "/account", "/promotions")
_TOPICS = ("billing", "network", "delivery", "service", "refund")
# What demo customers type into the search box, by language; the tire-pressure phrases feed the
# shipped `tire_pressure_service` playbook.
_QUERIES = {
    "zh": ("套餐资费", "账单查询", "退款进度", "流量包", "会员权益", "发票", "保养预约", "门店地址"),
    "en": ("data plan", "billing", "refund status", "roaming", "premium benefits", "invoice", "store hours"),
}
_TIRE = {
    "zh": ("胎压异常", "胎压报警灯亮了", "轮胎气压低怎么办", "胎压灯"),
    "en": ("tire pressure warning", "TPMS light on", "low tyre pressure", "tire pressure sensor"),
}
#: Offer channels a demo customer may have opted into (the shipped playbooks use sms and app_push).
_CONSENT_CHANNELS = ("sms", "email", "app_push")


def _events(
    persona: _Persona, cid: int, start: datetime, end: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    days = max(1, (end - start).days)
    # A second generator for what was added later (search words), so the main sequence - and the
    # demo data tests pin - stay as they were.
    words = random.Random(persona.index * 7919 + 17)
    queries = _QUERIES["zh" if persona.lang == "zh" else "en"]
    currency = _CURRENCY.get(persona.region, "USD")
    churn_day = rng.uniform(days * 0.45, days * 0.95) if persona.churner else float(days)

    def add(
        ts: datetime, kind: str, channel: str | None, amount: float | None = None, /, **details: Any
    ) -> None:
        text = details.pop("text", None)
        out.append(
            {
                "customer_id": cid,
                "ts": min(ts, end),
                "kind": kind,
                "channel": channel,
                "amount": amount,
                "currency": currency if amount is not None else None,
                "details": details,
                **({"text": text} if text else {}),
            }
        )

    plan = persona.plan
    for day in range(days):
        if day >= churn_day:
            break
        fade = 1.0 - (day / churn_day) * 0.85 if persona.churner else 1.0
        rate = persona.activity * fade
        sessions = (rng.random() < rate) + (rng.random() < rate * rate)
        for _ in range(sessions):
            ts = start + timedelta(days=day, seconds=rng.randrange(7 * 3600, 23 * 3600))
            channel = rng.choice(("app", "app", "web"))
            add(
                ts,
                "login",
                channel,
                method=rng.choice(("password", "sms", "wechat" if persona.lang == "zh" else "sso")),
            )
            for k in range(rng.choice((0, 1, 1, 2, 3))):
                add(ts + timedelta(seconds=20 + 40 * k), "page_view", channel, page=rng.choice(_PAGES))
            if rng.random() < 0.25:
                add(
                    ts + timedelta(minutes=3),
                    "search",
                    channel,
                    results=rng.randint(0, 40),
                    text=words.choice(queries),
                )
            if rng.random() < (0.12 if not persona.churner else 0.12 * fade):
                add(ts + timedelta(minutes=4), "add_to_cart", channel, items=rng.randint(1, 3))
                if rng.random() < 0.6:
                    amount = round(rng.uniform(9, 600), 2)
                    add(ts + timedelta(minutes=6), "purchase", channel, amount, items=rng.randint(1, 3))
                    if rng.random() < (0.04 if not persona.churner else 0.2):
                        add(ts + timedelta(days=rng.randint(1, 5)), "refund", "web", -amount)
        if persona.churner and day > churn_day * 0.5 and rng.random() < 0.05:
            ts = start + timedelta(days=day, hours=rng.randint(9, 20))
            add(ts, "complaint", rng.choice(("phone", "chat", "email")), topic=rng.choice(_TOPICS))
            add(
                ts + timedelta(minutes=30),
                "support_contact",
                rng.choice(("phone", "chat")),
                resolved=rng.random() < 0.4,
            )
        elif not persona.churner and rng.random() < 0.002:
            add(start + timedelta(days=day, hours=11), "complaint", "chat", topic=rng.choice(_TOPICS))
        if persona.churner and day > churn_day * 0.6 and rng.random() < 0.02:
            add(
                start + timedelta(days=day, hours=3),
                "payment_failed",
                None,
                reason=rng.choice(("insufficient_funds", "card_expired")),
            )
        if rng.random() < 0.004:
            new = rng.choice([p for p in ("basic", "plus", "premium") if p != plan])
            if not persona.churner or new == "basic":
                add(start + timedelta(days=day, hours=14), "plan_change", "web", **{"from": plan, "to": new})
                plan = new
        if rng.random() < 0.003:
            nps = rng.randint(0, 6) if persona.churner else rng.randint(6, 10)
            add(start + timedelta(days=day, hours=16), "survey", "email", nps=nps)
    # About one customer in twelve drives a car whose tire-pressure light came on this week.
    if words.random() < 0.08 and days >= 7:
        tire = _TIRE["zh" if persona.lang == "zh" else "en"]
        for _ in range(words.randint(2, 5)):
            ts = end - timedelta(days=words.uniform(0.2, 6.5))
            add(
                ts,
                "search",
                words.choice(("app", "web")),
                results=words.randint(1, 20),
                text=words.choice(tire),
            )
    if persona.churner and rng.random() < 0.6:
        ts = start + timedelta(days=churn_day)
        add(
            ts,
            "subscription_cancelled",
            rng.choice(("web", "phone")),
            reason=rng.choice(("price", "service", "moved", "competitor")),
        )
    return out


# -- transcripts ---------------------------------------------------------------------------------------
def _lookalike(rng: random.Random, zh: bool) -> str:
    """A number that is not a personal identifier but looks like one, in the words that say what it is."""
    from appliance.masking import synth  # Faker comes with it: imported when demo data is made

    kind = rng.choice(("order_number", "ticket_number", "tracking_number", "invoice_number"))
    return synth.lookalike_context(rng, kind, "zh" if zh else "en") + synth.lookalike_value(rng, kind)


def _typed(rng: random.Random, value: str, zh: bool) -> str:
    """An identifier as a person types it: as stored, grouped with spaces or dashes, or full-width."""
    digits = value.replace(" ", "").replace("-", "")
    style = rng.random()
    if zh and style < 0.2 and digits.isdigit():
        return digits.translate(_FULL_WIDTH)
    if style < 0.45 and digits.isdigit() and len(digits) >= 11:
        return _spaced(digits) if len(digits) != 11 else f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    return value


def _transcript(persona: _Persona, ts: datetime, rng: random.Random) -> list[dict[str, Any]]:
    from appliance.masking import synth

    zh = persona.lang == "zh"
    v = persona.values
    msgs: list[tuple[str, str]] = []
    if zh:
        msgs.append(("bot", "您好，这里是在线客服，请问有什么可以帮您？"))
        msgs.append(("customer", f"我想查一下{_lookalike(rng, True)}的进度，一直没有更新。"))
        msgs.append(("agent", "好的，为了核实身份，请提供您的手机号或身份证号。"))
        if "cn_resident_id" in v and rng.random() < 0.6:
            msgs.append(("customer", f"身份证号 {_typed(rng, v['cn_resident_id'], True)}"))
        if "mobile" in v:
            msgs.append(("customer", f"手机 {_typed(rng, v['mobile'], True)}，姓名{v['full_name']}"))
        if rng.random() < 0.3:
            bad = synth.generate("CN_RESIDENT_ID", rng, valid=False)
            msgs.append(("customer", f"不对，刚才打错了，是 {bad} 吗？我再看看。"))
        if "bank_card" in v and rng.random() < 0.5:
            msgs.append(("customer", f"退款请退到这张卡：{_typed(rng, v['bank_card'], True)}"))
        if rng.random() < 0.25:
            bad_card = synth.generate("BANK_CARD", rng, valid=False)
            msgs.append(("customer", f"另一张卡号是 {bad_card}，不知道对不对"))
        if persona.churner:
            msgs.append(("customer", "服务太差了，我考虑换别家了。"))
        msgs.append(("agent", f"已为您登记，{_lookalike(rng, True)}，请留意短信通知。"))
    else:
        msgs.append(("bot", "Hi! You're chatting with support. How can we help?"))
        msgs.append(("customer", f"Where is my {_lookalike(rng, False)}? No update for a week."))
        msgs.append(("agent", "Sorry about that. Can you confirm your email and phone number?"))
        if "email" in v:
            msgs.append(("customer", f"{v['email']}, phone {v.get('phone', 'not on file')}"))
        if "us_ssn" in v and rng.random() < 0.4:
            msgs.append(("customer", f"You asked for my SSN last time, it's {v['us_ssn']}"))
        if "iban" in v and rng.random() < 0.5:
            msgs.append(("customer", f"Please refund to my account {v['iban']}"))
        if rng.random() < 0.3:
            bad = synth.generate("US_SSN", rng, valid=False)
            msgs.append(("customer", f"Or maybe the form had {bad}, I'm not sure"))
        if rng.random() < 0.2:
            bad_iban = synth.generate("IBAN", rng, valid=False)
            msgs.append(("customer", f"The old account was {bad_iban}"))
        if "bank_card" in v and rng.random() < 0.4:
            msgs.append(
                (
                    "customer",
                    f"Card on file ends in {v['bank_card'][-4:]}, "
                    f"full number {_typed(rng, v['bank_card'], False)}",
                )
            )
        if "passport" in v and rng.random() < 0.3:
            msgs.append(("customer", f"My passport number is {v['passport']} if you need it"))
        if persona.churner:
            msgs.append(("customer", "Honestly I'm thinking about cancelling."))
        msgs.append(("agent", f"I've escalated it, {_lookalike(rng, False)}. You'll get an email soon."))
    out = []
    for k, (speaker, text) in enumerate(msgs):
        out.append(
            {"ts": ts + timedelta(seconds=25 * k + rng.randint(0, 20)), "speaker": speaker, "text": text}
        )
    return out


# -- loading ----------------------------------------------------------------------------------------------
def load_demo(
    store: Store,
    n_customers: int = 3000,
    *,
    seed: int = 20240501,
    days: int = 90,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Generate and store demo customers with events and transcripts; the same seed gives the same data.

    External ids are ``DEMO-<seed>-<n>``, so loading the same seed twice is refused by
    the store (duplicate external ids) instead of doubling the data; use another seed.
    """
    from faker import Faker

    if n_customers < 1:
        raise ValueError("n_customers must be at least 1")
    rng = random.Random(seed)
    fakers = {}
    for i, locale in enumerate(("zh_CN", "en_US")):
        fakers[locale] = Faker(locale)
        fakers[locale].seed_instance(seed + i)
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    regions = [r for r, _ in _REGIONS]
    weights = [w for _, w in _REGIONS]
    first_of_region: set[str] = set()
    n_events = n_transcripts = n_messages = n_consents = 0
    for lo in range(0, n_customers, _CHUNK):
        personas: list[_Persona] = []
        rows = []
        for i in range(lo, min(lo + _CHUNK, n_customers)):
            region = regions[i] if i < len(regions) else rng.choices(regions, weights)[0]
            full = region not in first_of_region
            first_of_region.add(region)
            values = _customer(i, region, full, rng, fakers, bad=0.05)
            created = (
                start - timedelta(days=rng.randint(1, 1000))
                if rng.random() < 0.85
                else start + timedelta(days=rng.randint(0, days - 1))
            )
            rows.append(
                {"external_id": f"DEMO-{seed}-{i + 1:06d}", "region": region, "created": created, **values}
            )
            churner = rng.random() < 0.2
            personas.append(
                _Persona(
                    i,
                    region,
                    values["preferred_language"],
                    churner,
                    rng.uniform(0.03, 0.3),
                    values["plan"],
                    values,
                )
            )
        ids = store.add_customers(rows)
        events: list[dict[str, Any]] = []
        chats = []
        for cid, persona, row in zip(ids, personas, rows, strict=True):
            begin = max(start, row["created"])
            span = max(1, (now - begin).days)
            events.extend(_events(persona, cid, begin, now, rng))
            n_chats = 1 if persona.index < len(regions) else rng.choices((0, 1, 2), (0.6, 0.3, 0.1))[0]
            if persona.churner and n_chats == 0 and rng.random() < 0.5:
                n_chats = 1
            for _ in range(n_chats):
                ts = begin + timedelta(days=rng.uniform(0, span), hours=rng.randint(8, 20))
                msgs = _transcript(persona, min(ts, now - timedelta(hours=1)), rng)
                chats.append((cid, "chat", msgs))
                events.append(
                    {
                        "customer_id": cid,
                        "ts": msgs[0]["ts"],
                        "kind": "support_contact",
                        "channel": "chat",
                        "details": {},
                    }
                )
                n_messages += len(msgs)
        for j in range(0, len(events), 5000):
            n_events += store.add_events(events[j : j + 5000])
        consents = [
            {"customer_id": cid, "channel": ch, "status": "opt_in", "ts": row["created"], "source": "demo"}
            for cid, row in zip(ids, rows, strict=True)
            if row.get("marketing_consent")
            for ch in _CONSENT_CHANNELS
        ]
        n_consents += store.proactive.add_consents(consents, channels=_CONSENT_CHANNELS)
        if chats:
            n_transcripts += len(store.add_transcripts(chats))
        if progress:
            progress(min(lo + _CHUNK, n_customers), n_customers)
    return DemoReport(seed, n_customers, n_events, n_transcripts, n_messages, n_consents)
