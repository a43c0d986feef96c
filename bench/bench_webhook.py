"""Webhook delivery throughput with exactly-once effect while the receiver fails 20% of calls.

Goal (issue 6, proactive service): >= 500 triggers/s delivered to a local receiver with exactly-once
effect while the receiver fails 20% of calls. N = 20,000 triggers (2,000 with --quick), each a ~300-byte
JSON body, go through ``predictors.delivery.WebhookSender`` (16 pooled keep-alive connections, every
request HMAC-signed at send time) to the test receiver (``tests/support/webhook_receiver.py``, a
``ThreadingHTTPServer`` on 127.0.0.1 in this process) that verifies each signature, dedupes by
Idempotency-Key and fails 20% of calls. By default a failing call applies the effect and THEN answers
500 (``--fail-mode after``), the case where only the dedupe keeps the effect single; ``--fail-mode
before`` answers 500 first.

The loop is the outbox's: take up to 500 due rows, send them as one batch, put ``retry`` results back
in the queue with their attempt count, repeat until the queue is empty. The benchmark resends at once
(zero backoff delay) so it measures throughput, not waiting; ``max_attempts`` is 12 so the 20%
failures (about 1 key in 20,000 fails 8 times in a row) cannot exhaust a key and hide a loss.
triggers/s = keys delivered / wall time of the whole loop.

Peer: ``requests.Session().post`` from a ThreadPoolExecutor of the same size (16 workers, one Session
per thread: Sessions are not thread-safe), unsigned, to the same receiver with no failures and no
signature check, each trigger sent once. Ours is also run without failures for a like-for-like ratio.
Figures are the median of 3 runs (1 with --quick).

    python bench/bench_webhook.py [--quick] [--fail-mode after|before]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from predictors.delivery import Delivery, Endpoint, WebhookSender  # noqa: E402
from tests.support.webhook_receiver import WebhookReceiver  # noqa: E402

SECRET = b"bench-webhook-secret-0123456789abcdef"
CONCURRENCY = 16
BATCH = 500
FAIL_RATE = 0.2
GOAL = 500.0


@dataclass(frozen=True)
class Run:
    rate: float  # delivered keys per second of wall time
    seconds: float
    calls: int
    duplicates: int
    failed: int
    rounds: int
    exactly_once: bool


def bodies(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        key = f"trg-{i:08d}"
        trigger = {
            "id": key,
            "kind": "churn_risk",
            "customer": f"p_{i * 7919 % 1_000_003:07x}",
            "score": round((i % 997) / 997, 4),
            "playbook": "retention-call@3",
            "contact": {"channel": "phone", "masked": "138****5678", "region": "CN-GD"},
            "raised_at": "2026-11-24T09:30:00Z",
            "reason": ["tenure<6m", "complaints>=2", "usage_drop_30d"],
        }
        out.append((key, json.dumps(trigger, separators=(",", ":")).encode()))
    return out


def run_ours(items: list[tuple[str, bytes]], fail_rate: float, fail_mode: Literal["before", "after"]) -> Run:
    with WebhookReceiver(secrets=(SECRET,), fail_rate=fail_rate, fail_mode=fail_mode, seed=20261124) as rx:
        endpoint = Endpoint(rx.url, (SECRET,), timeout_seconds=5.0, max_attempts=12)
        with WebhookSender(endpoint, concurrency=CONCURRENCY) as sender:
            queue = deque(Delivery(key, body) for key, body in items)
            delivered = failed = rounds = 0
            t0 = time.perf_counter()
            while queue:
                rounds += 1
                due = [queue.popleft() for _ in range(min(BATCH, len(queue)))]
                for sent, result in zip(due, sender.send_batch(due), strict=True):
                    if result.outcome == "delivered":
                        delivered += 1
                    elif result.outcome == "retry":  # the outbox would wait next_attempt_after; we do not
                        queue.append(Delivery(sent.key, sent.body, result.attempts))
                    else:
                        failed += 1
            seconds = time.perf_counter() - t0
    exact = rx.effects == dict(items) and set(rx.applied.values()) == {1} and not rx.errors
    return Run(delivered / seconds, seconds, rx.calls, rx.duplicates, failed, rounds, exact)


def run_peer(items: list[tuple[str, bytes]]) -> Run:
    local = threading.local()

    def post(item: tuple[str, bytes]) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        key, body = item
        response = session.post(
            rx.url,
            data=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
            timeout=5.0,
        )
        return response.status_code

    with WebhookReceiver(require_signature=False) as rx:
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            t0 = time.perf_counter()
            statuses = list(pool.map(post, items))
            seconds = time.perf_counter() - t0
    delivered = sum(1 for s in statuses if 200 <= s < 300)
    exact = rx.effects == dict(items) and set(rx.applied.values()) == {1}
    return Run(delivered / seconds, seconds, rx.calls, rx.duplicates, len(items) - delivered, 1, exact)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fail-mode", choices=["after", "before"], default="after")
    args = ap.parse_args()
    n = 2_000 if args.quick else 20_000
    repeats = 1 if args.quick else 3
    items = bodies(n)
    run_ours(items[:500], 0.0, args.fail_mode)  # warm-up: imports, first connections
    ours_fail = [run_ours(items, FAIL_RATE, args.fail_mode) for _ in range(repeats)]
    ours_clean = [run_ours(items, 0.0, args.fail_mode) for _ in range(repeats)]
    peer = [run_peer(items) for _ in range(repeats)]
    rows = [
        (f"ours, receiver fails 20% ({args.fail_mode} effect)", ours_fail),
        ("ours, receiver never fails", ours_clean),
        ("peer: requests.Session.post x16 threads, unsigned", peer),
    ]
    print(
        f"webhook delivery bench: {n:,} triggers, {CONCURRENCY} connections, batches of {BATCH}, "
        f"zero backoff delay; median of {repeats} run(s)"
    )
    print(f"  {'':52} {'triggers/s':>10} {'wall s':>7} {'calls':>7} {'dupes':>6} {'failed':>6} {'once':>5}")
    for label, runs in rows:
        r = median_run(runs)
        print(
            f"  {label:52} {r.rate:>10,.0f} {r.seconds:>7.2f} {r.calls:>7,} {r.duplicates:>6,} "
            f"{r.failed:>6,} {'yes' if r.exactly_once else 'NO':>5}"
        )
    fail, clean, base = median_run(ours_fail), median_run(ours_clean), median_run(peer)
    print(f"  all runs, ours at 20% failures (triggers/s): {', '.join(f'{r.rate:,.0f}' for r in ours_fail)}")
    print(f"  ratio ours (20% failures) / peer (no failures): {fail.rate / base.rate:.2f}x")
    print(f"  ratio ours (no failures)  / peer (no failures): {clean.rate / base.rate:.2f}x")
    ok = fail.rate >= GOAL and all(r.exactly_once and r.failed == 0 for r in ours_fail)
    print(
        f"  goal: >= {GOAL:.0f} triggers/s, exactly-once effect, receiver failing 20% of calls: "
        f"{fail.rate:,.0f}/s, exactly once {'in every run' if ok else 'NOT MET'} -> "
        f"{'met' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
