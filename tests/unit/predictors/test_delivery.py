"""Signed webhook delivery: signatures, backoff, endpoint checks, and the sender against a real receiver.

The sender tests run a real HTTP receiver on 127.0.0.1 (``tests/support/webhook_receiver.py``) that
verifies signatures, dedupes by idempotency key and fails, hangs or throttles on purpose; the retry
loops resend ``retry`` results the way the outbox will, without waiting out the backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import socket
import time
from email.utils import formatdate

import pytest
from support.webhook_receiver import WebhookReceiver

from predictors.delivery import (
    Delivery,
    DeliveryResult,
    Endpoint,
    SignatureInvalid,
    WebhookSender,
    _retry_after,
    backoff,
    sign,
    signature_header,
    verify,
)
from predictors.errors import DeliveryError, PredictorError

SECRET = b"whsec-test-0123456789abcdef"
OLD = b"whsec-old-secret-0123456789"
NEW = b"whsec-new-secret-9876543210"
BODY = b'{"trigger":"t-1","kind":"churn_risk","customer":"p_8f2a"}'
T = 1_700_000_000


def expected_v1(secret: bytes, body: bytes, t: int) -> str:
    return hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()


# --- sign / verify ---------------------------------------------------------------------------------------


def test_sign_known_answer() -> None:
    header = sign(SECRET, BODY, T)
    assert header == f"t={T},v1={expected_v1(SECRET, BODY, T)}"
    # A fixed vector too, so a change in the construction cannot hide behind the helper above.
    assert sign(b"0123456789abcdef", b"{}", 0) == (
        "t=0,v1=" + hmac.new(b"0123456789abcdef", b"0.{}", hashlib.sha256).hexdigest()
    )


def test_docs_example_signature() -> None:
    # The request shown in docs/webhooks.md (digest checked with `openssl dgst -sha256 -hmac`).
    header = sign(
        b"example-secret-0123456789abcdef", b'{"id":"trg-000123","kind":"churn_risk"}', 1_700_000_000
    )
    assert header == "t=1700000000,v1=ec812302e56f570dc99b686d879f12edb3be243d477da1a2842c931132ea44b2"


def test_verify_accepts_fresh_signature_within_tolerance() -> None:
    header = sign(SECRET, BODY, T)
    verify(SECRET, header, BODY, now=T)
    verify(SECRET, header, BODY, now=T + 300)  # the edge of the window is inside
    verify([SECRET], header, BODY, now=T - 300, tolerance=300)


@pytest.mark.parametrize("now", [T + 301, T - 301, T + 86_400])
def test_verify_refuses_timestamp_outside_tolerance(now: int) -> None:
    with pytest.raises(SignatureInvalid, match="tolerance 300 s") as info:
        verify(SECRET, sign(SECRET, BODY, T), BODY, now=now)
    assert info.value.reason == "timestamp"
    assert isinstance(info.value, DeliveryError) and isinstance(info.value, PredictorError)


def test_verify_refuses_tampered_body_and_timestamp() -> None:
    header = sign(SECRET, BODY, T)
    with pytest.raises(SignatureInvalid, match="no v1 signature matches") as info:
        verify(SECRET, header, BODY.replace(b"churn", b"chirn"), now=T)
    assert info.value.reason == "mismatch"
    replayed = header.replace(f"t={T}", f"t={T + 3600}")  # fresh t, old MAC
    with pytest.raises(SignatureInvalid) as info:
        verify(SECRET, replayed, BODY, now=T + 3600)
    assert info.value.reason == "mismatch"
    with pytest.raises(SignatureInvalid) as info:
        verify(b"some-other-secret-of-16+", header, BODY, now=T)
    assert info.value.reason == "mismatch"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "v1=abcdef",
        f"t={T}",
        f"t=soon,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t={T},t={T},v1={'0' * 64}",
        "garbage",
        f"t={T};v1={'0' * 64}",
    ],
)
def test_verify_refuses_malformed_header(header: str) -> None:
    with pytest.raises(SignatureInvalid, match=r"malformed|missing") as info:
        verify(SECRET, header, BODY, now=T)
    assert info.value.reason == "malformed"


def test_verify_ignores_unknown_schemes() -> None:
    header = f"t={T},v0=deadbeef,v1={expected_v1(SECRET, BODY, T)},v2=future"
    verify(SECRET, header, BODY, now=T)


def test_rotation_sender_signs_with_each_active_secret() -> None:
    header = signature_header((OLD, NEW), BODY, T)
    assert header == f"t={T},v1={expected_v1(OLD, BODY, T)},v1={expected_v1(NEW, BODY, T)}"
    verify(OLD, header, BODY, now=T)  # a receiver not yet rotated
    verify(NEW, header, BODY, now=T)  # a receiver already rotated
    verify((OLD, NEW), sign(NEW, BODY, T), BODY, now=T)  # a receiver holding both
    with pytest.raises(SignatureInvalid):
        verify((OLD,), sign(NEW, BODY, T), BODY, now=T)


# --- backoff -------------------------------------------------------------------------------------------


class _Top:
    """A random source at its upper end, so backoff returns (almost) its ceiling."""

    def random(self) -> float:
        return 0.999999


def test_backoff_grows_exponentially_and_is_capped() -> None:
    waits = [backoff(n, base=2.0, cap=60.0, rng=_Top()) for n in range(1, 10)]
    ceilings = [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
    assert waits == pytest.approx([c * 0.999999 for c in ceilings])
    assert backoff(10_000, base=2.0, cap=3600.0, rng=_Top(), factor=10.0) == pytest.approx(3600.0, rel=1e-5)


def test_backoff_full_jitter_is_bounded_and_deterministic_with_a_seed() -> None:
    rng = random.Random(42)
    for attempt in range(1, 12):
        ceiling = min(100.0, 1.5 * 2 ** (attempt - 1))
        for _ in range(50):
            assert 0.0 <= backoff(attempt, base=1.5, cap=100.0, rng=rng) <= ceiling
    a = [backoff(n, base=2.0, cap=3600.0, rng=random.Random(7)) for n in range(1, 9)]
    b = [backoff(n, base=2.0, cap=3600.0, rng=random.Random(7)) for n in range(1, 9)]
    assert a == b
    spread = {round(backoff(5, base=2.0, cap=3600.0, rng=rng), 6) for _ in range(20)}
    assert len(spread) > 10  # jitter, not a constant


def test_backoff_refuses_attempt_zero() -> None:
    with pytest.raises(DeliveryError, match="starts at 1"):
        backoff(0, base=2.0, cap=10.0, rng=random.Random(0))


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert _retry_after("120", now) == 120.0
    assert _retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0, abs=1.0)
    assert _retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert _retry_after("soon", now) is None
    assert _retry_after(None, now) is None


# --- values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://ops.example/hook"}, "scheme must be http or https"),
        ({"url": "ops.example/hook"}, "scheme must be http or https"),
        ({"url": "https://user:hunter2@ops.example/hook"}, "carries credentials"),
        ({"url": "https:///hook"}, "has no host"),
        ({"url": "https://ops.example/a b"}, "whitespace"),
        ({"url": "https://ops.example:99999/hook"}, "cannot be parsed"),
        ({"secrets": ()}, "has no secret"),
        ({"secrets": (b"short",)}, "secret #1 is 5 bytes"),
        ({"secrets": (SECRET, b"x" * 15)}, "secret #2 is 15 bytes"),
        ({"secrets": ("a-text-secret-of-20ch",)}, "not bytes"),
        ({"timeout_seconds": 0}, "timeout_seconds must be > 0"),
        ({"timeout_seconds": float("inf")}, "finite"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff_base": 10.0, "backoff_cap": 5.0}, "backoff_cap must be >= 10"),
        ({"backoff_factor": 0.5}, "backoff_factor must be >= 1"),
    ],
)
def test_endpoint_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"url": "https://ops.example/hook", "secrets": (SECRET,), **kwargs}
    with pytest.raises(DeliveryError, match=message) as info:
        Endpoint(**args)  # type: ignore[arg-type]
    assert "hunter2" not in str(info.value)


def test_endpoint_keeps_secrets_out_of_repr_and_accepts_a_single_secret() -> None:
    endpoint = Endpoint("http://127.0.0.1:8080/hook", SECRET)  # type: ignore[arg-type]
    assert endpoint.secrets == (SECRET,)
    assert SECRET.decode() not in repr(endpoint)
    assert endpoint.timeout_seconds == 5.0 and endpoint.max_attempts == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": ""}, "idempotency key"),
        ({"key": "t-1\r\nX-Evil: 1"}, "idempotency key"),
        ({"key": "a b"}, "idempotency key"),
        ({"key": "k" * 256}, "idempotency key"),
        ({"body": '{"a": 1}'}, "body must be bytes"),
        ({"attempt": -1}, "attempt"),
    ],
)
def test_delivery_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"key": "t-1", "body": BODY, **kwargs}
    with pytest.raises(DeliveryError, match=message):
        Delivery(**args)  # type: ignore[arg-type]


# --- the sender against a real receiver --------------------------------------------------------------------


def endpoint_for(url: str, **kwargs: object) -> Endpoint:
    args: dict[str, object] = {"timeout_seconds": 0.5, "max_attempts": 8, **kwargs}
    return Endpoint(url, (SECRET,), **args)  # type: ignore[arg-type]


def deliveries(n: int, prefix: str = "trg") -> list[Delivery]:
    return [Delivery(f"{prefix}-{i:05d}", b'{"trigger":"%d"}' % i) for i in range(n)]


def deliver_until_done(sender: WebhookSender, batch: list[Delivery]) -> tuple[dict[str, DeliveryResult], int]:
    """The outbox's loop without the waiting: resend every ``retry`` until none is left."""
    final: dict[str, DeliveryResult] = {}
    rounds = 0
    pending = batch
    while pending:
        rounds += 1
        assert rounds < 50, "retry loop does not converge"
        by_key = {d.key: d for d in pending}
        pending = []
        for result in sender.send_batch(list(by_key.values())):
            if result.outcome == "retry":
                assert result.next_attempt_after is not None and 0 <= result.next_attempt_after <= 3600
                pending.append(Delivery(result.key, by_key[result.key].body, result.attempts))
            else:
                final[result.key] = result
    return final, rounds


def test_all_delivered_signed_with_contract_headers() -> None:
    batch = deliveries(200)
    with WebhookReceiver(secrets=(SECRET,)) as rx, WebhookSender(endpoint_for(rx.url), concurrency=8) as tx:
        results = tx.send_batch(batch)
    assert [r.key for r in results] == [d.key for d in batch]  # order kept
    assert {r.outcome for r in results} == {"delivered"}
    assert all(r.status == 200 and r.error is None and r.attempts == 1 for r in results)
    assert rx.effects == {d.key: d.body for d in batch}
    assert rx.calls == 200 and rx.duplicates == 0 and not rx.bad_signatures and not rx.errors
    headers = {k.lower(): v for k, v in rx.last_headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "appliance-webhook/1"
    assert headers["idempotency-key"].startswith("trg-")
    assert headers["appliance-signature"].startswith("t=")


def test_rotation_end_to_end() -> None:
    with WebhookReceiver(secrets=(NEW,)) as rx:
        with WebhookSender(Endpoint(rx.url, (OLD, NEW), timeout_seconds=0.5)) as tx:
            assert tx.send_batch(deliveries(3))[0].outcome == "delivered"
    assert len(rx.effects) == 3


def test_wrong_secret_is_refused_by_receiver_and_fails_permanently() -> None:
    with WebhookReceiver(secrets=(NEW,)) as rx, WebhookSender(endpoint_for(rx.url)) as tx:
        (result,) = tx.send_batch(deliveries(1))
    assert result.outcome == "failed" and result.status == 401
    assert "HTTP 401" in (result.error or "") and "no v1 signature matches" in (result.error or "")
    assert rx.bad_signatures == ["mismatch"] and not rx.effects


def test_twenty_percent_failures_end_with_every_key_delivered_once() -> None:
    batch = deliveries(400)
    with (
        WebhookReceiver(secrets=(SECRET,), fail_rate=0.2, seed=11) as rx,
        WebhookSender(endpoint_for(rx.url), concurrency=8, rng=random.Random(3)) as tx,
    ):
        final, rounds = deliver_until_done(tx, batch)
    assert rounds > 1 and 40 < rx.statuses[500] < 160  # the failures did happen, about 20% of calls
    assert {r.outcome for r in final.values()} == {"delivered"}
    assert set(final) == {d.key for d in batch}
    assert rx.effects == {d.key: d.body for d in batch}
    assert set(rx.applied.values()) == {1}
    assert rx.calls == len(batch) + rx.statuses[500] and not rx.errors


@pytest.mark.parametrize("dedupe", [True, False], ids=["deduping-receiver", "broken-receiver"])
def test_effect_then_500_still_exactly_once_with_a_deduping_receiver(dedupe: bool) -> None:
    batch = deliveries(300)
    with (
        WebhookReceiver(secrets=(SECRET,), fail_rate=0.2, fail_mode="after", dedupe=dedupe, seed=5) as rx,
        WebhookSender(endpoint_for(rx.url), concurrency=8) as tx,
    ):
        final, _ = deliver_until_done(tx, batch)
    assert {r.outcome for r in final.values()} == {"delivered"} and len(final) == len(batch)
    assert rx.duplicates == rx.statuses[500] > 0  # each 500-after-effect was resent once more at least
    if dedupe:
        assert set(rx.applied.values()) == {1}
        assert rx.effects == {d.key: d.body for d in batch}
    else:  # without the receiver's dedupe the same loop applies effects twice: this test can fail
        assert max(rx.applied.values()) > 1


def test_hanging_endpoint_is_cut_by_the_timeout_and_retried() -> None:
    with (
        WebhookReceiver(secrets=(SECRET,), hang_rate=1.0, hang_seconds=5.0) as rx,
        WebhookSender(endpoint_for(rx.url), concurrency=4) as tx,
    ):
        started = time.monotonic()
        results = tx.send_batch(deliveries(4))
        elapsed = time.monotonic() - started
    assert elapsed < 2.0  # four hangs in parallel, each cut at 0.5 s
    for result in results:
        assert result.outcome == "retry" and result.status is None
        assert (result.error or "").startswith("timed out after 0.5 s")
        assert 0.4 < result.duration < 1.5
        assert result.next_attempt_after is not None


def test_connection_refused_is_a_retry_with_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with WebhookSender(endpoint_for(f"http://127.0.0.1:{port}/hook")) as tx:
        (result,) = tx.send_batch(deliveries(1))
    assert result.outcome == "retry" and result.status is None
    assert "connection refused" in (result.error or "")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, "failed"),
        (404, "failed"),
        (410, "failed"),
        (422, "failed"),
        (408, "retry"),
        (409, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (302, "retry"),  # redirects are not followed
    ],
)
def test_status_classification(status: int, outcome: str) -> None:
    with (
        WebhookReceiver(secrets=(SECRET,), fixed_status=status) as rx,
        WebhookSender(endpoint_for(rx.url, backoff_base=1.0, backoff_cap=30.0)) as tx,
    ):
        (result,) = tx.send_batch(deliveries(1))
    assert result.outcome == outcome and result.status == status
    assert (result.error or "").startswith(f"HTTP {status}")
    assert rx.calls == 1 and not rx.effects
    if outcome == "failed":
        assert "permanent" in (result.error or "") and result.next_attempt_after is None
    else:
        assert result.next_attempt_after is not None and 0 <= result.next_attempt_after <= 1.0


@pytest.mark.parametrize(("header", "cap", "expected"), [("7", 3600.0, 7.0), ("99999", 60.0, 60.0)])
def test_429_retry_after_is_honoured_and_capped(header: str, cap: float, expected: float) -> None:
    with (
        WebhookReceiver(secrets=(SECRET,), throttle_rate=1.0, retry_after=header) as rx,
        WebhookSender(endpoint_for(rx.url, backoff_cap=cap)) as tx,
    ):
        (result,) = tx.send_batch(deliveries(1))
    assert result.outcome == "retry" and result.status == 429
    assert result.next_attempt_after == expected


def test_attempts_exhausted_fail_and_are_not_sent_again() -> None:
    with (
        WebhookReceiver(secrets=(SECRET,), fixed_status=500) as rx,
        WebhookSender(endpoint_for(rx.url, max_attempts=3)) as tx,
    ):
        second, last, beyond = tx.send_batch(
            [Delivery("a", b"{}", 1), Delivery("b", b"{}", 2), Delivery("c", b"{}", 3)]
        )
    assert second.outcome == "retry" and second.attempts == 2
    assert last.outcome == "failed" and last.attempts == 3 and last.status == 500
    assert "gave up after 3 attempts" in (last.error or "")
    assert beyond.outcome == "failed" and "not sent" in (beyond.error or "")
    assert rx.calls == 2  # "c" never went out


def test_retry_waits_follow_the_seeded_backoff() -> None:
    with WebhookReceiver(secrets=(SECRET,), fixed_status=503) as rx:
        waits = []
        for _ in range(2):
            with WebhookSender(
                endpoint_for(rx.url, backoff_base=2.0), concurrency=1, rng=random.Random(9)
            ) as tx:
                waits.append(
                    [
                        r.next_attempt_after
                        for r in tx.send_batch([Delivery(f"k{i}", b"{}", 3) for i in range(3)])
                    ]
                )
    assert waits[0] == waits[1]
    assert all(w is not None and 0 <= w <= 16.0 for w in waits[0])


def test_empty_batch_duplicate_keys_and_closed_sender() -> None:
    tx = WebhookSender(endpoint_for("http://127.0.0.1:9/hook"))
    assert tx.send_batch([]) == []
    with pytest.raises(DeliveryError, match="same idempotency key twice"):
        tx.send_batch([Delivery("k", b"{}"), Delivery("k", b"{}", 1)])
    tx.close()
    with pytest.raises(DeliveryError, match="closed"):
        tx.send_batch(deliveries(1))
