"""A labelled bilingual customer-service corpus, and the scorer that turns a detector into numbers.

The masking engine is tuned against precision and recall per entity type, and a number measured on the
text it was tuned on flatters it. So the message templates come in two disjoint families: ``"dev"`` to
tune on, ``"heldout"`` to report. Each family has Chinese, English and code-switched messages that
carry the words which should raise a detector's confidence (卡号, 身份证, "card", "SSN", "born on") and
the ones which should lower it (订单号, 快递单号, "order", "tracking"), with look-alike numbers and
checksum-invalid identifiers in them that are labelled as nothing, and about a fifth of the messages
hold no PII at all.

Gold spans are ``(type, start, end)`` in code points of the message (Python ``str`` indices), end
exclusive, the same convention as :class:`appliance.masking.entities.Finding`. A PERSON span is the
name without an honorific title ("Dr. Jane Doe" is labelled "Jane Doe", as NER corpora and Presidio do;
a suffix like "Jr." or "MD" stays in it).

Scoring: :func:`evaluate` with ``match="exact"`` is the headline (a masked span that is one character
short leaks that character); ``match="overlap"`` is reported next to it to tell boundary errors from
misses.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from appliance.masking import synth
from appliance.masking import validators as v
from appliance.masking.entities import ENTITY_TYPES, EntityType
from appliance.masking.errors import MaskingError

__all__ = [
    "FAMILIES",
    "TEMPLATES",
    "LabelledMessage",
    "Template",
    "evaluate",
    "from_jsonl",
    "generate_corpus",
    "pair_overlaps",
    "to_jsonl",
]

Span = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class LabelledMessage:
    """One message and its gold spans; ``lang``/``family``/``template`` say where it came from, so an
    error can be traced back to the template that produced it."""

    text: str
    spans: tuple[Span, ...]
    lang: str = ""
    family: str = ""
    template: str = ""


@dataclass(frozen=True, slots=True)
class Template:
    """A message pattern. ``{TYPE}`` is a labelled valid value (``{TYPE:style}`` fixes its style),
    ``{!TYPE}`` a checksum-invalid near miss and ``{~kind}`` a look-alike; the last two are unlabelled."""

    id: str
    family: str
    lang: str  # "zh", "en" or "mixed" (code-switched, drawn with the Chinese share)
    text: str
    has_pii: bool


FAMILIES = ("dev", "heldout")

_T = EntityType
# fmt: off
_RAW: dict[tuple[str, str], tuple[str, ...]] = {
    ("dev", "zh"): (
        "我的身份证号是{CN_RESIDENT_ID}，手机{CN_MOBILE}，请帮我查一下订单号{~order_number}的物流到哪了",
        "卡号{BANK_CARD}昨天晚上被扣了两次款，一共两笔，我只买了一次东西，麻烦尽快处理",
        "我叫{PERSON}，身份证{CN_RESIDENT_ID}，想改一下账户的预留手机号，原来的号码已经停机了",
        "收货地址改成{ADDRESS}，收件人{PERSON}，电话{CN_MOBILE}",
        "公司统一社会信用代码{CN_USCC}，需要开增值税专用发票，之前的发票号码{~invoice_number}作废",
        "护照号{CN_PASSPORT}，出生日期{DATE_OF_BIRTH}，帮我核对一下下周的国际机票信息对不对",
        "我的港澳通行证号码是{CN_PERMIT}，在自助机上办签注的时候一直提示证件号码有误",
        "车牌{CN_PLATE}的ETC扣费异常，同一天扣了三次，工单{~ticket_number}一直没人处理",
        "有事可以打我座机{CN_LANDLINE}，工作日白天都在办公室，手机可能不在身边",
        "快递单号{~tracking_number}显示已签收，但我根本没收到包裹，我的手机是{CN_MOBILE}",
        "银行卡{BANK_CARD}绑定失败，提示信息不一致，是不是我身份证号{!CN_RESIDENT_ID}填错了？",
        "我的邮箱{EMAIL}一直收不到验证码，最近一次登录IP是{IP_ADDRESS}，是被盗号了吗",
        "我的设备MAC地址{MAC_ADDRESS}被系统风控了，现在什么都登录不了，能帮忙解封吗",
        "客户{PERSON}，生日{DATE_OF_BIRTH}，会员等级显示不对，需要人工核实一下",
        "退款{~amount}到现在还没到账，原路退回的银行卡号是{BANK_CARD}，请帮我查一下",
    ),
    ("dev", "mixed"): (
        "我的card number是{BANK_CARD}，昨天被charge了两次，帮忙check一下是不是系统bug",
        "Hi客服，我的IBAN是{IBAN}，从国内汇过去的款一直没到账，order {~order_number}",
        "我的SSN是{US_SSN}，美国那边报税要用，passport号码是{PASSPORT}，资料都在附件里",
    ),
    ("dev", "zh-none"): (
        "我想问一下订单{~order_number}什么时候能发货，页面上一直显示待出库",
        "快递单号{~tracking_number}已经三天没有更新物流信息了，是不是丢件了",
        "{~timestamp}下的单，到现在还没发货，客服也一直联系不上，怎么回事？",
        "请问会员积分怎么兑换？上次兑换的时候失败了，页面一直在转圈，积分也扣了",
        "工单号{~ticket_number}，问题到现在还没解决，请尽快安排人跟进一下",
        "发票号码{~invoice_number}的那张发票抬头开错了，公司财务要求重新开一张",
        "刚才手机号输错了，写成了{!CN_MOBILE}，我再确认一下正确的号码发给你们",
    ),
    ("dev", "en"): (
        "my card {BANK_CARD} was charged twice for order #{~order_number}, call me at {PHONE}",
        "My SSN is {US_SSN} and I was born on {DATE_OF_BIRTH}, please update my tax form before the deadline",
        "Please send the refund to IBAN {IBAN}, the account holder is {PERSON}",
        "I'm {PERSON}, my email is {EMAIL}, and I can't log in to my account since yesterday",
        "New shipping address: {ADDRESS}. Tracking number {~tracking_number} still shows the old one",
        "Passport number {PASSPORT}, date of birth {DATE_OF_BIRTH}, this is for my flight booking next week",
        "My ITIN is {US_ITIN}, but the online form keeps rejecting it with an error. Any idea why?",
        "Our router {MAC_ADDRESS} at {IP_ADDRESS} keeps dropping the connection, ticket {~ticket_number}",
        "You can reach me at {PHONE} or by email at {EMAIL} any time after 6pm on weekdays",
        "My Chinese mobile number is {CN_MOBILE}, please text me the verification code there",
        "Invoice {~invoice_number} lists {PERSON} at {ADDRESS}, please correct it",
        "I'm travelling on passport {CN_PASSPORT}, can a friend of mine pick up the parcel for me?",
        "The app shows card {!BANK_CARD}, which is not my card at all. My real card is {BANK_CARD}",
    ),
    ("dev", "en-none"): (
        "Where is my order {~order_number}? It's been a week already and there's no update on the website",
        "I was charged {~amount} but the price on your site said less than that, can you explain?",
        "Ticket {~ticket_number} is still open after five days, any update on this?",
        "The app crashed at {~timestamp} when I tried to pay, and it happened twice in a row",
        "How do I change my password? The reset link in the email you sent has already expired",
        "Tracking {~tracking_number} says delivered but nothing arrived at my door, neighbours didn't get it",
        "I typed my SSN as {!US_SSN} by mistake on the form, is that going to be a problem?",
    ),
    ("heldout", "zh"): (
        "麻烦帮我查下，身份证号码{CN_RESIDENT_ID}名下现在一共绑了几张卡，有没有我不知道的",
        "这是我的联系方式：{CN_MOBILE}，或者直接打办公室电话{CN_LANDLINE}找我也可以",
        "本人{PERSON}，证件号{CN_RESIDENT_ID}，申请注销账户，余额请退回原卡",
        "企业信用代码：{CN_USCC}，对公账户的开户资料上周已经提交了，现在审核到哪一步了",
        "往来港澳通行证{CN_PERMIT}和护照{CN_PASSPORT}，哪个能用来做实名认证？",
        "我的车是{CN_PLATE}，上个月在你们停车场停车费重复扣了{~amount}，要求退还",
        "信用卡{BANK_CARD}在国外刷卡消费的时候被拒了好几次，能帮我看看是什么原因吗",
        "东西麻烦寄到{ADDRESS}，联系人{PERSON}，白天家里有人",
        "出生年月{DATE_OF_BIRTH}，身份证号码{!CN_RESIDENT_ID}，实名认证的时候系统一直提示不匹配",
        "登录邮箱是{EMAIL}，上次登录地址显示{IP_ADDRESS}，那不是我本人登录的",
        "家里路由器的物理地址是{MAC_ADDRESS}，宽带装好以后一直连不上网，师傅也没来",
        "生日是{DATE_OF_BIRTH}的那位会员{PERSON}要把手机号改成{CN_MOBILE}",
        "储蓄卡{BANK_CARD}突然被冻结了，工资发不进来，服务单号{~ticket_number}",
        "回乡证号码{CN_PERMIT}，上周入境的时候系统提示证件异常，现在能查到原因吗",
    ),
    ("heldout", "mixed"): (
        "我现在在国外出差，phone是{PHONE}，有事请用WhatsApp联系我，国内手机不开机",
        "收款IBAN：{IBAN}，beneficiary是公司账户，SWIFT码之后再发给你们",
        "我的ITIN是{US_ITIN}，W-7表格已经寄出去了，tracking {~tracking_number}",
    ),
    ("heldout", "zh-none"): (
        "运单号{~tracking_number}怎么好几天了还在中转站，一直没有派送",
        "我{~timestamp}付的款，钱已经扣了，订单却一直显示待支付",
        "服务单号{~ticket_number}，约好的师傅到现在还没上门，电话也打不通",
        "订单编号{~order_number}申请退货，商品有质量问题，麻烦尽快审核",
        "扣款{~amount}是什么费用？我这个月根本没在你们这买过东西",
        "这个商品现在还有货吗？有没有可以用的优惠券，想多买几件送人",
        "信用卡号码好像是{!BANK_CARD}，我回家看一下卡再跟你们确认",
    ),
    ("heldout", "en"): (
        "SSN {US_SSN}, DOB {DATE_OF_BIRTH}. I need a copy of my annual statement for my accountant",
        "{PERSON} here. Please wire the refund to {IBAN}, it's my savings account",
        "My Visa {BANK_CARD} was declined at checkout three times, my number is {PHONE} if you need it",
        "Contact details for the claim: {EMAIL} / {PHONE}, either is fine",
        "Please ship the replacement to {ADDRESS} instead of my old address",
        "My passport {PASSPORT} expires next month, should I re-upload it after I get the new one?",
        "ITIN {US_ITIN} for the W-7 renewal, name on the application is {PERSON}",
        "Device {MAC_ADDRESS} got the IP {IP_ADDRESS} from DHCP this morning, then lost it again",
        "My Shanghai office line is {CN_LANDLINE}, mobile {CN_MOBILE}, call either after 10am",
        "Company credit code {CN_USCC} for the business account application we sent last week",
        "I have a home-return permit {CN_PERMIT} and a passport {CN_PASSPORT}, which one should I use?",
        "Parking was charged to plate {CN_PLATE}, but that's not my car and I've never been there",
        "ID card number {CN_RESIDENT_ID}, born on {DATE_OF_BIRTH}, opening an account for my mother",
    ),
    ("heldout", "en-none"): (
        "Order {~order_number} arrived damaged, the box was completely crushed and the glass is broken",
        "The refund of {~amount} hasn't shown up on my statement yet, it's been ten business days",
        "Case {~ticket_number}: please escalate, it's urgent and nobody has replied since Monday",
        "Waybill {~tracking_number} has been stuck in customs for two weeks now, what do I need to do?",
        "Payment failed on {~timestamp}, I'm retrying now but I want to be sure I won't be charged twice",
        "Do you ship to Canada? What are the fees and how long does delivery usually take?",
        "I tried SSN {!US_SSN} and card {!BANK_CARD} on the form, neither worked, what am I doing wrong?",
    ),
}
# fmt: on

# Openers and closers wrap most messages the way people write to a service desk; they carry no PII and
# differ per family so that held-out text is new text.
# fmt: off
_WRAP: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("dev", "zh"): (
        ("您好，", "你好，", "客服你好，", "在吗？", "亲，麻烦问一下，", "打扰了，",
         "你好客服，有个问题想咨询，"),
        ("。谢谢！", "，麻烦尽快回复，谢谢。", "，我已经等了好几天了，急！", "。辛苦了，等你们消息。",
         "，今天之内能处理好吗？", "。如果需要别的资料请告诉我。", "，谢谢你们，服务一直挺好的。"),
    ),
    ("heldout", "zh"): (
        ("hello，", "请问，", "人工客服，", "早上好，", "客服小姐姐你好，", "我想反馈一个问题："),
        ("，多谢。", "，请回电或者短信告诉我处理结果。", "，这已经是第二次联系你们了。",
         "，希望这周能解决。", "，先这样，等你们答复。", "，不然我只能去投诉了。"),
    ),
    ("dev", "en"): (
        ("Hi, ", "Hello, ", "Hi there, ", "Good morning, ", "Hey support team, ", "Hello, quick question: "),
        (" Thanks!", " Please get back to me as soon as possible.", " Thank you in advance for your help.",
         " This is really urgent for me.", " Let me know if you need anything else from me.",
         " I've been waiting for three days now."),
    ),
    ("heldout", "en"): (
        ("Hey, ", "Dear customer service, ", "Hi again, ", "Good afternoon, ", "To whom it may concern: "),
        (" Cheers.", " Kindly confirm once this is sorted.", " Second time I'm writing about this.",
         " Appreciate a quick reply, thanks.", " Otherwise I'll have to file a complaint.",
         " Call or text me back, whichever is easier."),
    ),
}
# fmt: on
_OPENER_SHARE = 0.8
_CLOSER_SHARE = 0.9

_SLOT = re.compile(r"\{([!~]?)([A-Za-z_]+)(?::([a-z0-9_]+))?\}")
# Honorific titles before an English name: outside its PERSON span (the labelling convention above).
_NAME_TITLE = re.compile(r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? (?=[A-Z])")


def _build_templates() -> tuple[Template, ...]:
    out: list[Template] = []
    for (family, pool), texts in _RAW.items():
        lang = pool.removesuffix("-none")
        for i, text in enumerate(texts):
            slots = _SLOT.findall(text)
            for marker, name, _ in slots:
                known = synth.LOOKALIKE_KINDS if marker == "~" else ENTITY_TYPES
                if name not in known:
                    raise MaskingError(f"corpus template {family}/{pool}#{i}: unknown slot {name!r}")
            has_pii = any(marker == "" for marker, _, _ in slots)
            if pool.endswith("-none") == has_pii:
                raise MaskingError(f"corpus template {family}/{pool}#{i}: PII slots and pool disagree")
            out.append(Template(f"{family}-{pool}-{i:02d}", family, lang, text, has_pii))
    return tuple(out)


TEMPLATES: tuple[Template, ...] = _build_templates()
"""Every template, both families."""

# Per-language styles for the types whose rendering depends on the language around them.
_LANG_STYLES: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "zh": {
            _T.PERSON: ("zh",),
            _T.ADDRESS: ("zh",),
            _T.DATE_OF_BIRTH: ("cn", "cn", "iso", "slash"),
        },
        "en": {
            _T.PERSON: ("en",),
            _T.ADDRESS: ("en",),
            _T.DATE_OF_BIRTH: ("us", "long_en", "dmy_en", "iso"),
            _T.CN_MOBILE: ("intl", "intl_compact", "plain"),
        },
    }
)


_GROUP_SEPARATORS = re.compile(r"[\s\-－·]+")
_WIDTH = {cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)}


def _sub_runs(value: str) -> list[str]:
    """Every run of consecutive groups of a grouped value (``"4920 5349 1563"`` of an IBAN), except the
    whole: a detector that caps its digit-run length or backtracks sees these."""
    groups = [g for g in _GROUP_SEPARATORS.split(value.translate(_WIDTH).lstrip("+")) if g]
    n = len(groups)
    return ["".join(groups[i:j]) for i in range(n) for j in range(i + 1, n + 1) if (i, j) != (0, n)]


def _proves_a_checksum_type(value: str, skip: str = "") -> bool:
    return any(v.check(t, value) for t in v.CHECKSUM_TYPES if t != skip)


def _unlabelled_is_silent(value: str) -> bool:
    """An unlabelled value must not pass any proof-carrying validator (context-only types aside), nor
    look like a card to a detector that falls back to a bare Luhn check, in whole or in part."""
    if any(v.check(t, value) for t in EntityType if t not in synth.CONTEXT_ONLY_TYPES):
        return False
    for run in [v.normalize_digits(value).lstrip("+"), *_sub_runs(value)]:
        if v.unionpay_non_luhn(run) or (13 <= len(run) <= 19 and v.luhn(run)) or _proves_a_checksum_type(run):
            return False
    return True


def _labelled_is_unambiguous(entity_type: str, value: str) -> bool:
    """A gold value of one type must not also prove another checksum type, in whole or in part (a
    15-digit ID that is a Luhn-valid Amex number, a phone number whose digits make a Visa number, four
    groups of an IBAN that make a card), or a correct detector would look wrong."""
    runs = [value, value.lstrip("+＋"), *_sub_runs(value)]
    return not any(_proves_a_checksum_type(run, skip=entity_type) for run in runs)


def _fill(template: Template, rng: random.Random) -> LabelledMessage:
    style_lang = "en" if template.lang == "en" else "zh"
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    last = 0
    for match in _SLOT.finditer(template.text):
        literal = template.text[last : match.start()]
        parts.append(literal)
        pos += len(literal)
        last = match.end()
        marker, name, style = match.groups()
        if marker == "~":
            value = synth.lookalike_value(rng, name)
        else:
            styles = _LANG_STYLES[style_lang].get(name)
            for _ in range(100):
                chosen = style or (rng.choice(styles) if styles else None)
                value = synth.generate(name, rng, valid=marker == "", style=chosen)
                ok = _labelled_is_unambiguous(name, value) if marker == "" else _unlabelled_is_silent(value)
                if ok:
                    break
            else:
                raise MaskingError(
                    f"template {template.id}: cannot draw an unambiguous {name}; this is a bug"
                )
            if marker == "":
                title = _NAME_TITLE.match(value) if name == EntityType.PERSON else None
                spans.append((name, pos + (title.end() if title else 0), pos + len(value)))
        parts.append(value)
        pos += len(value)
    parts.append(template.text[last:])
    openers, closers = _WRAP[(template.family, style_lang)]
    text = "".join(parts)
    if rng.random() < _CLOSER_SHARE and not text.endswith(("?", "？")):
        text = text.rstrip("。.!！") + ("." if style_lang == "en" else "") + rng.choice(closers)
    if rng.random() < _OPENER_SHARE and not text.startswith(("Hi", "Hello", "您好", "你好")):
        opener = rng.choice(openers)
        keep_case = template.text.startswith("{") or text.startswith(("I ", "I'", "ID", "SSN", "ITIN", "DOB"))
        if style_lang == "en" and not keep_case:
            text = text[0].lower() + text[1:]
        text = opener + text
        spans = [(t, s + len(opener), e + len(opener)) for t, s, e in spans]
    return LabelledMessage(text, tuple(spans), template.lang, template.family, template.id)


def generate_corpus(
    n: int, seed: int, *, lang_mix: float = 0.5, family: str = "dev", no_pii_share: float = 0.2
) -> list[LabelledMessage]:
    """``n`` labelled messages from one template family, reproducible from ``seed``.

    ``lang_mix`` is the share of Chinese-led messages (Chinese and code-switched templates); the rest are
    English. ``family`` is ``"dev"``, ``"heldout"`` or ``"all"``. About ``no_pii_share`` of the messages
    come from templates with no PII (they still carry look-alikes and near misses).
    """
    if family not in (*FAMILIES, "all"):
        raise MaskingError(f"unknown corpus family {family!r}; use 'dev', 'heldout' or 'all'")
    if not 0.0 <= lang_mix <= 1.0 or not 0.0 <= no_pii_share <= 1.0:
        raise MaskingError("lang_mix and no_pii_share are shares between 0 and 1")
    pools: dict[tuple[bool, bool], list[Template]] = {}
    for template in TEMPLATES:
        if family in ("all", template.family):
            pools.setdefault((template.lang != "en", template.has_pii), []).append(template)
    rng = random.Random(seed)
    out: list[LabelledMessage] = []
    for _ in range(n):
        chinese = rng.random() < lang_mix
        has_pii = rng.random() >= no_pii_share
        out.append(_fill(rng.choice(pools[(chinese, has_pii)]), rng))
    return out


# --------------------------------------------------------------------------------------------------------
# scoring


def _as_span(prediction: Any) -> Span:
    if isinstance(prediction, tuple):
        entity_type, start, end = prediction[:3]
    else:  # a Finding, or anything shaped like one
        entity_type, start, end = prediction.type, prediction.start, prediction.end
    return str(entity_type), int(start), int(end)


def _metrics(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def pair_overlaps(gold: set[Span], predicted: set[Span]) -> tuple[set[Span], set[Span], set[Span]]:
    """(hits, false, missed): each prediction paired with an unused overlapping gold span of its type.

    Tells boundary errors (a hit here, a miss under exact matching) from real misses.
    """
    hits: set[Span] = set()
    unused = set(gold)
    false: set[Span] = set()
    for span in sorted(predicted, key=lambda s: (s[1], s[2], s[0])):
        partner = next(
            (
                g
                for g in sorted(unused, key=lambda s: s[1])
                if g[0] == span[0] and g[1] < span[2] and span[1] < g[2]
            ),
            None,
        )
        if partner is None:
            false.add(span)
        else:
            unused.discard(partner)
            hits.add(partner)
    return hits, false, unused


def evaluate(
    predict: Callable[[str], Iterable[Any]],
    corpus: Iterable[LabelledMessage],
    *,
    match: str = "exact",
) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 per entity type, plus their micro-average under ``"ALL"``.

    ``predict`` returns ``(type, start, end)`` tuples or :class:`Finding` objects. ``match="exact"`` (the
    headline) counts a prediction only if type, start and end all equal a gold span; ``"overlap"`` pairs
    each prediction with an unused gold span of the same type that it overlaps. A type with no
    predictions has precision 1.0 and one with no gold spans recall 1.0 (nothing was claimed, nothing
    was missed); read them with their counts. Every EntityType is reported, and any unknown type a
    detector invents.
    """
    if match not in ("exact", "overlap"):
        raise MaskingError(f"unknown match mode {match!r}; use 'exact' or 'overlap'")
    counts: dict[str, list[int]] = {t.value: [0, 0, 0] for t in EntityType}
    for message in corpus:
        gold = set(message.spans)
        predicted = {_as_span(p) for p in predict(message.text)}
        if match == "exact":
            hits = gold & predicted
            misses, false = gold - hits, predicted - hits
        else:
            hits, false, misses = pair_overlaps(gold, predicted)
        for entity_type, _, _ in hits:
            counts.setdefault(entity_type, [0, 0, 0])[0] += 1
        for entity_type, _, _ in false:
            counts.setdefault(entity_type, [0, 0, 0])[1] += 1
        for entity_type, _, _ in misses:
            counts.setdefault(entity_type, [0, 0, 0])[2] += 1
    report = {t: _metrics(*c) for t, c in counts.items()}
    report["ALL"] = _metrics(*(sum(c[i] for c in counts.values()) for i in range(3)))
    return report


# --------------------------------------------------------------------------------------------------------
# files


def to_jsonl(corpus: Iterable[LabelledMessage], path: str | Path) -> None:
    """One JSON object per line, UTF-8, non-ASCII kept readable (reviewers read these files)."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for m in corpus:
            record = {
                "text": m.text,
                "spans": [list(s) for s in m.spans],
                "lang": m.lang,
                "family": m.family,
                "template": m.template,
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def from_jsonl(path: str | Path) -> list[LabelledMessage]:
    """Read what :func:`to_jsonl` wrote; spans are checked to lie inside their text."""
    out: list[LabelledMessage] = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            text = record["text"]
            spans = tuple((str(t), int(s), int(e)) for t, s, e in record["spans"])
            for t, s, e in spans:
                if not 0 <= s < e <= len(text):
                    raise MaskingError(
                        f"{path}:{lineno}: span {t} [{s}, {e}) lies outside the text; fix the file"
                    )
            out.append(
                LabelledMessage(
                    text, spans, record.get("lang", ""), record.get("family", ""), record.get("template", "")
                )
            )
    return out
