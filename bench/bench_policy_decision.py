"""Policy decision latency and library compile time: the shipped library plus 10,000 synthetic rules.

Goal (issue: policy engine): a 500-character reply decided in p99 <= 200 us in-process; the library
(load, validate, compile the automaton) in <= 2 s. The synthetic rules are phrase rules in Chinese and
English spread over regions and industries, so most of them are out of scope for one decision, as in
a real multi-region library; the automaton holds all of them.

    python bench/bench_policy_decision.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policy import Evaluator, PolicyLibrary  # noqa: E402
from policy._kernel import IMPLEMENTATION  # noqa: E402

CJK = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
    "民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日"
    "那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想"
    "已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
    "几九区强放决西被干做必战先回则任取据处府研"
)
WORDS = (
    "account balance premium offer limited exclusive bonus instant approval loan credit rate yield".split()
)
REGIONS = ["CN", "US", "DE", "GB", "SG", "JP", "FR", "IT", "ES", "CN-GD", "US-CA", "EU"]
INDUSTRIES = ["finance", "insurance", "healthcare", "retail", "food", "telecom", "government"]


def synthetic_rules(first: int, n: int, rng: random.Random) -> str:
    lines = ["rules:"]
    for i in range(first, first + n):
        if rng.random() < 0.6:
            phrase = "".join(rng.choice(CJK) for _ in range(rng.randint(3, 6)))
        else:
            phrase = " ".join(rng.sample(WORDS, rng.randint(2, 3))) + f" x{i}"
        lines += [
            f"  - id: SYN-{i:05d}",
            f"    source: synthetic benchmark clause {i}",
            "    kind: phrases",
            f"    action: {rng.choice(['block', 'review', 'rewrite'])}",
            f"    scope: {{regions: [{rng.choice(REGIONS)}], industries: [{rng.choice(INDUSTRIES)}]}}",
            f'    phrases: ["{phrase}"]',
        ]
        if lines[-3].endswith("rewrite"):
            lines.append('    rewrite: "[approved wording]"')
    return "\n".join(lines) + "\n"


def reply(rng: random.Random) -> str:
    parts = [
        "您好，关于您咨询的理财产品，年化收益率参考值为3.5%，产品不保本，投资有风险。",
        "Thank you for contacting us about your account; our team will follow up within 24 hours. ",
        "我们最近更新了服务条款，第一次使用请先阅读说明。",
        "The premium offer is available to existing customers with a limited exclusive bonus. ",
    ]
    text = ""
    while len(text) < 500:
        text += rng.choice(parts)
    return text[:500]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rng = random.Random(20261124)
    n_rules = 10_000
    decisions = 2_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        lib_dir = Path(tmp) / "lib"
        shutil.copytree(ROOT / "config" / "policies", lib_dir)
        for first in range(0, n_rules, 2000):  # the library refuses rule files over 1 MB
            path = lib_dir / "rules" / f"zz-synthetic-{first:05d}.yaml"
            path.write_text(synthetic_rules(first, 2000, rng), encoding="utf-8")
        compiles = []
        for _ in range(1 if args.quick else 3):
            t0 = time.perf_counter()
            library = PolicyLibrary.from_dir(lib_dir)
            evaluator = Evaluator(library)
            compiles.append(time.perf_counter() - t0)
    texts = [reply(rng) for _ in range(200)]
    cases = [("CN", "finance"), ("US-CA", "finance"), ("DE", "retail"), ("CN-GD", "healthcare")]
    for i in range(500):  # warm caches (normaliser character table, scope cache)
        region, industry = cases[i % len(cases)]
        evaluator.check_reply(texts[i % len(texts)], region=region, industry=industry)
    lat = []
    for i in range(decisions):
        region, industry = cases[i % len(cases)]
        text = texts[i % len(texts)]
        t0 = time.perf_counter()
        evaluator.check_reply(text, region=region, industry=industry)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    p50, p99 = lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6
    print(f"policy decision bench (matcher kernel: {IMPLEMENTATION}); library: shipped + {n_rules:,} rules")
    print(f"  rules in library                  {len(library.rules):>10,}")
    print(f"  compile (load+validate+automaton) {statistics.median(compiles):>10.2f} s     target <= 2 s")
    print(f"  decision, 500-char reply, p50     {p50:>10.0f} us")
    print(
        f"  decision, 500-char reply, p99     {p99:>10.0f} us    target <= 200 us ({decisions:,} decisions)"
    )


if __name__ == "__main__":
    main()
