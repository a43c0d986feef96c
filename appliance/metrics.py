"""Prometheus metrics of the node: what the HTTP layer, the node and the jobs measure, and the scrape.

Gunicorn runs several worker processes, and the scheduler runs beside them; a scrape reaches one worker,
which has to answer for all of them. So ``appliance serve`` calls :func:`use_multiprocess_dir` before
anything forks: prometheus-client's multiprocess mode, in which every process (workers and scheduler
alike: the scheduler inherits the environment) writes its samples to memory-mapped files in one
directory, and :func:`render` adds them up. Without it (tests, the CLI) the samples live in this
process's registry and :func:`render` reads that. Job metrics therefore come from wherever a job ran
(the scheduler, or a worker for ``POST /v1/jobs/<id>/run``); a job run by a CLI command in a process of
its own is counted in that process only (its history is in ``appliance jobs history``).

Two gauges describe state rather than events (ledger size, triggers by status): they are read from the
node when scraped, by the scraping process, and kept for ``metrics.state_cache_seconds`` so frequent
scrapes cost no table scan each.

Use the metric objects as attributes of this module (``metrics.auth_failures.labels(reason=...).inc()``);
they are created on first use in each process, once the multiprocess directory is known.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance.errors import NodeError
from appliance.keys import ROLES, KeyFileError, read_secret, write_secret
from appliance.settings import Settings
from appliance.store.errors import StoreError
from appliance.store.tables import TRIGGER_STATUSES
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from appliance.node import Node

log = logging.getLogger("appliance.metrics")

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_TOKEN_FILE",
    "ENV",
    "IssuedToken",
    "Metrics",
    "MetricsError",
    "NodeState",
    "ScrapeToken",
    "append_failed",
    "entry_appended",
    "get",
    "issue_token",
    "job_finished",
    "multiprocess_dir",
    "process_exited",
    "remove_multiprocess_dir",
    "render",
    "request_finished",
    "status_class",
    "token_path",
    "use_multiprocess_dir",
]

#: prometheus-client reads the multiprocess directory from this variable.
ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The classic text format: what every Prometheus version reads (the names here need nothing newer).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Request latency buckets (seconds): fine below the 50 ms objective, coarse above it.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A durable append is a group-committed fsync: tens of microseconds to tens of milliseconds.
APPEND_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: Methods Flask can route; anything else a client invents is counted as OTHER (labels stay few).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Most distinct values one label keeps per process before the rest are counted as "other": a label
#: fed from request data (a region) must not let a client grow the scrape without bound.
_MAX_VALUES = 64
_READ_KINDS = {"record.read": "record", "transcript.read": "transcript"}
_QUERY_PREFIX = "query."


class MetricsError(NodeError):
    """The scrape token cannot be issued as asked; the message says why and what to do."""


class Metrics:
    """The metric objects of one process (see the module docstring for multiprocess mode)."""

    def __init__(self) -> None:
        # prometheus-client picks its value class (in memory, or files in the directory) when it is
        # first imported; `appliance serve` names the directory later (the CLI has imported everything
        # by then), so pick again now that the environment is final.
        values.ValueClass = values.get_value_class()
        # No ``*_created`` series: multiprocess mode has none, so a scrape looks the same either way.
        disable_created_metrics()
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Histogram(
            "appliance_http_request_duration_seconds",
            "HTTP requests by route template, method and status class (2xx, 4xx, ...), in seconds",
            ["route", "method", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "appliance_http_requests_in_flight",
            "HTTP requests being handled now, all workers together",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.appends = Histogram(
            "appliance_ledger_append_duration_seconds",
            "Durable appends of one ledger entry by the node (Node.record), in seconds",
            buckets=APPEND_BUCKETS,
            registry=r,
        )
        self.append_failures = Counter(
            "appliance_ledger_append_failures",
            "Ledger appends that failed (the request or job that asked for them failed too)",
            registry=r,
        )
        self.decisions = Counter(
            "appliance_policy_decisions",
            "Reply checks by decision (allow, rewrite, review, block) and region",
            ["action", "region"],
            registry=r,
        )
        self.masked_reads = Counter(
            "appliance_masked_reads",
            "Customer records and transcripts read, masked, by the caller's role",
            ["role", "kind"],
            registry=r,
        )
        self.queries = Counter(
            "appliance_privacy_queries",
            "Privacy query steps by status (submitted, computed, approved, released, refused, held, failed)",
            ["status"],
            registry=r,
        )
        self.jobs = Histogram(
            "appliance_job_duration_seconds",
            "Job runs that ran (succeeded or failed), by job id, in seconds",
            ["job", "outcome"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.job_runs = Counter(
            "appliance_job_runs",
            "Job runs by job id and outcome (succeeded, failed, skipped)",
            ["job", "outcome"],
            registry=r,
        )
        self.auth_failures = Counter(
            "appliance_auth_failures",
            "Failed authentications by reason (missing, malformed, unknown, mismatch, revoked, expired, ...)",
            ["reason"],
            registry=r,
        )
        self._seen: dict[str, set[str]] = {}
        self._seen_lock = threading.Lock()

    def bounded(self, label: str, value: str) -> str:
        """``value``, or ``other`` once ``label`` has seen :data:`_MAX_VALUES` distinct values here."""
        seen = self._seen.get(label)
        if seen is not None and value in seen:
            return value
        with self._seen_lock:
            seen = self._seen.setdefault(label, set())
            if value in seen:
                return value
            if len(seen) >= _MAX_VALUES or len(value) > 64:
                return "other"
            seen.add(value)
            return value


_metrics: Metrics | None = None
_metrics_lock = threading.Lock()


def get() -> Metrics:
    """This process's metrics, created on first use."""
    global _metrics
    m = _metrics
    if m is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = Metrics()
            m = _metrics
    return m


def __getattr__(name: str) -> Any:
    """``metrics.requests``, ``metrics.auth_failures``, ...: this process's metric objects."""
    if name.startswith("__"):
        raise AttributeError(name)
    m = get()
    try:
        return getattr(m, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


# -- what the node and the HTTP layer report ---------------------------------------------------------
def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def request_finished(route: str | None, method: str, status: int, seconds: float) -> None:
    """One answered request; ``route`` is its URL rule (``/v1/customers/<customer_id>``), never a path."""
    m = get()
    m.requests.labels(
        route if route is not None else "<unmatched>",
        method if method in _METHODS else "OTHER",
        status_class(status),
    ).observe(seconds)


def _role(actor: str) -> str:
    role = actor.partition(":")[0]
    return role if role in ROLES else "other"


def entry_appended(actor: str, action: str, details: Mapping[str, Any] | None, seconds: float) -> None:
    """Count what one appended entry says happened (decisions, masked reads, query steps).

    The ledger entry is the one place every such event passes through, so counting here keeps the
    counters equal to what an auditor finds in the log.
    """
    m = get()
    m.appends.observe(seconds)
    if action == "reply.checked" and details is not None:
        decision = str(details.get("decision", "unknown"))
        region = str(details.get("region", "unknown"))
        m.decisions.labels(m.bounded("action", decision), m.bounded("region", region)).inc()
    elif action in _READ_KINDS:
        m.masked_reads.labels(_role(actor), _READ_KINDS[action]).inc()
    elif action.startswith(_QUERY_PREFIX):
        m.queries.labels(m.bounded("query_status", action[len(_QUERY_PREFIX) :])).inc()


def append_failed() -> None:
    get().append_failures.inc()


def job_finished(job_id: str, outcome: str, seconds: float | None) -> None:
    """One job run: ``succeeded`` / ``failed`` with its duration, or ``skipped`` (no duration)."""
    m = get()
    m.job_runs.labels(job_id, outcome).inc()
    if seconds is not None:
        m.jobs.labels(job_id, outcome).observe(seconds)


# -- state read at scrape time -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    taken: float
    ledger_entries: int | None
    triggers: Mapping[str, int] | None


class NodeState(Collector):
    """Gauges read from the node when scraped (ledger size, triggers by status), cached for ``ttl`` s.

    A gauge that cannot be read (the store is down) is left out of the scrape rather than failing it:
    the request metrics are what an operator needs most when the store is down.
    """

    def __init__(self, node: Node, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._node = node
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None

    def _read(self) -> _Snapshot:
        node = self._node
        try:
            size: int | None = node.ledger.refresh()
        except (LedgerError, OSError):
            size = None
        try:
            triggers: Mapping[str, int] | None = dict(node.store.proactive.trigger_counts())
        except StoreError:
            triggers = None
        return _Snapshot(self._clock(), size, triggers)

    def snapshot(self) -> _Snapshot:
        with self._lock:
            snap = self._snap
            if snap is None or self._clock() - snap.taken >= self._ttl:
                snap = self._snap = self._read()
            return snap

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        if snap.ledger_entries is not None:
            yield GaugeMetricFamily(
                "appliance_ledger_entries", "Entries in the ledger (its tree size)", value=snap.ledger_entries
            )
        if snap.triggers is not None:
            g = GaugeMetricFamily(
                "appliance_triggers", "Proactive-service triggers by status", labels=["status"]
            )
            # Every status, zeros included: an absent series and a zero look different to alerts.
            for status, count in sorted(({s: 0 for s in TRIGGER_STATUSES} | dict(snap.triggers)).items()):
                g.add_metric([status], count)
            yield g


def render(state: NodeState | None = None) -> bytes:
    """The text exposition of every process's metrics (multiprocess mode) or this one's, plus ``state``."""
    m = get()
    if m.multiprocess:
        registry = CollectorRegistry(auto_describe=True)
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_Forward(m.registry))
    if state is not None:
        registry.register(state)
    return generate_latest(registry)


class _Forward(Collector):
    """This process's registry as one collector of a scrape registry (it stays registered where it is)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        return iter(self._registry.collect())


# -- the scrape token ----------------------------------------------------------------------------------
#: ``appliance metrics token`` makes it here when ``metrics.token_file`` is unset.
DEFAULT_TOKEN_FILE = Path("keys") / "metrics.token"
_TOKEN_PREFIX = "metrics_"
_MIN_TOKEN_CHARS = 32


@dataclass(frozen=True)
class IssuedToken:
    path: Path
    token: str  # shown once; only the file keeps it
    rotated: bool


def token_path(settings: Settings) -> Path:
    """``metrics.token_file``, else ``<data_dir>/keys/metrics.token``."""
    configured = settings.metrics.token_file
    return configured if configured is not None else settings.data_dir / DEFAULT_TOKEN_FILE


def issue_token(node: Node, *, actor: str, rotate: bool = False) -> IssuedToken:
    """Write a new scrape token (0600) and record ``metrics.token_issued``; the old one stops working.

    Refuses to replace an existing token unless ``rotate``: a second Prometheus may be using it.
    """
    path = token_path(node.settings)
    exists = path.exists()
    if exists and not rotate:
        raise MetricsError(
            f"{path} already holds a scrape token; pass --rotate to replace it (Prometheus then needs the "
            "new one)"
        )
    token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_secret(tmp, (token + "\n").encode("ascii"))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MetricsError(
            f"the scrape token cannot be written to {path} ({exc.strerror}); fix the path"
        ) from exc
    node.record(actor, "metrics.token_issued", details={"file": str(path), "rotated": exists})
    return IssuedToken(path, token, exists)


class ScrapeToken:
    """The scrape token as the HTTP layer checks it: re-read when its file changes, so a rotation takes
    effect at the next scrape without a restart; a file others may read is refused (and logged)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sig: tuple[int, int, int] | None = None
        self._value: bytes | None = None
        self._lock = threading.Lock()

    def _current(self) -> bytes | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if sig != self._sig:
                self._sig = sig
                try:
                    value = read_secret(self.path).strip()
                except (KeyFileError, OSError) as exc:
                    log.error("the metrics scrape token is not used: %s", exc)
                    value = b""
                if value and len(value) < _MIN_TOKEN_CHARS:
                    log.error(
                        "the metrics scrape token in %s is shorter than %d characters and is not used; "
                        "make a new one with `appliance metrics token --rotate`",
                        self.path,
                        _MIN_TOKEN_CHARS,
                    )
                    value = b""
                self._value = value or None
            return self._value

    def matches(self, presented: str) -> bool:
        expected = self._current()
        return expected is not None and hmac.compare_digest(presented.encode("utf-8", "replace"), expected)


# -- multiprocess directory (appliance serve) ----------------------------------------------------------
def multiprocess_dir() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def use_multiprocess_dir(configured: Path | None) -> tuple[Path, bool]:
    """Point this process and its children at a clean multiprocess directory; returns (it, made here).

    ``configured`` (``metrics.multiprocess_dir``) is created if missing and emptied of the last run's
    files; without one, a new private temporary directory is made (the caller removes it at exit). Call
    before workers fork: they inherit the environment variable.
    """
    if configured is not None:
        path = configured.resolve()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        made = False
    else:
        path = Path(tempfile.mkdtemp(prefix="appliance-metrics-"))
        made = True
    os.environ[ENV] = str(path)
    global _metrics
    with _metrics_lock:
        _metrics = None  # built again, for the directory, on first use
    return path, made


def process_exited(pid: int) -> None:
    """A worker (or the scheduler) is gone: drop its share of the live gauges (requests in flight)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
