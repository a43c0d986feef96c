"""``appliance doctor``: is this node healthy? One check per part, each ok, warn or fail, with the fix.

It reads and never repairs: keys and their permissions, disk space, the store and its schema, the
ledger (the full verification ``appliance ledger verify`` does), the live policy library, the
scheduler's job history, the privacy keys, anchoring (and, unless --quick, whether its chain answers).
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from appliance.node import Node
from appliance.settings import Settings

__all__ = ["Check", "run_checks"]

Status = Literal["ok", "warn", "fail"]
#: Below this much free space the ledger and the store are about to stop accepting writes.
_DISK_FAIL = 100 * 2**20
_DISK_WARN = 2**30


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _keys(settings: Settings) -> Check:
    p = Node.paths(settings.data_dir)
    names = ("signing", "pseudonym", "api_keys", "field_keys", "masking_key", "policy_key")
    missing = [p[n].name for n in names if not p[n].exists()]
    if missing:
        return Check(
            "keys", "fail", f"missing {', '.join(missing)} in {p['signing'].parent}; restore them from backup"
        )
    loose = [p[n].name for n in names if not _private(p[n])]
    privacy = settings.data_dir / "privacy" / "keys"
    if privacy.is_dir():
        loose += [str(f.relative_to(settings.data_dir)) for f in privacy.rglob("secret*") if not _private(f)]
    if loose:
        return Check("keys", "fail", f"readable by group or others: {', '.join(loose)}; chmod 600 them")
    if not _private(settings.data_dir):
        return Check("keys", "warn", f"{settings.data_dir} is open to group or others; chmod 700 it")
    return Check("keys", "ok", f"{len(names)} node keys present, mode 0600")


def _disk(settings: Settings) -> Check:
    free = shutil.disk_usage(settings.data_dir).free
    gib = free / 2**30
    if free < _DISK_FAIL:
        return Check("disk", "fail", f"{gib:.2f} GiB free under {settings.data_dir}; writes will fail soon")
    if free < _DISK_WARN:
        return Check("disk", "warn", f"only {gib:.2f} GiB free under {settings.data_dir}")
    return Check("disk", "ok", f"{gib:.1f} GiB free")


def _store(node: Node) -> Check:
    from appliance.store import StoreError

    try:
        customers, events = node.store.count_customers(), node.store.count_events()
    except StoreError as exc:
        return Check("store", "fail", str(exc))
    return Check(
        "store",
        "ok",
        f"{node.store.engine.dialect.name}, schema at head, {customers:,} customers, {events:,} events",
    )


def _ledger(settings: Settings, verify: bool) -> Check:
    from ledger.checkpoint import load_verifier
    from ledger.verify import verify_ledger

    p = Node.paths(settings.data_dir)
    if not verify:
        return Check("ledger", "warn", "not verified (--quick); run `appliance ledger verify`")
    verifier = load_verifier(p["vkey"].read_text(encoding="utf-8").strip()) if p["vkey"].exists() else None
    report = verify_ledger(str(p["ledger"]), verifier, None)
    if not report.ok:
        return Check("ledger", "fail", f"{report.problems[0]} (run `appliance ledger verify` for all)")
    if verifier is None:
        return Check(
            "ledger",
            "warn",
            f"{report.entries:,} entries chain and tree OK; no ledger.pub to check signatures",
        )
    return Check(
        "ledger", "ok", f"{report.entries:,} entries, {report.checkpoints} signed checkpoints verified"
    )


def _policy(node: Node) -> Check:
    from appliance.policy_registry import PolicyVersionError

    try:
        live = node.policy.evaluator()
    except PolicyVersionError as exc:
        return Check("policy", "fail", f"no usable live policy library: {exc}")
    version = getattr(live, "version", None) or getattr(getattr(live, "library", None), "version", "?")
    return Check("policy", "ok", f"live library version {version}")


def _jobs(node: Node) -> Check:
    runs = node.store.proactive.job_runs(limit=200)
    latest: dict[str, dict[str, Any]] = {}
    for r in runs:  # newest first
        latest.setdefault(r["job_id"], r)
    failing = sorted(j for j, r in latest.items() if r["status"] == "failed")
    if failing:
        return Check(
            "scheduler", "warn", f"last run failed: {', '.join(failing)} (`appliance jobs history ID`)"
        )
    if not latest:
        return Check(
            "scheduler", "warn", "no job has run yet; is `appliance serve` (or `appliance scheduler`) up?"
        )
    return Check("scheduler", "ok", f"{len(latest)} jobs, last runs succeeded or skipped")


def _privacy(node: Node) -> Check:
    service = node.privacy
    if not service.has_keys:
        return Check("privacy", "warn", "no HE keys yet; the custodian runs `appliance privacy keygen`")
    public = service.public_dir
    leaked = [str(f.relative_to(public)) for f in public.rglob("*") if f.is_file() and "secret" in f.name]
    if leaked:
        return Check("privacy", "fail", f"secret key files in the engine's public copy: {', '.join(leaked)}")
    cols = service.columns()
    return Check("privacy", "ok", f"key {service._ring().current_key_id}, {len(cols)} encrypted column(s)")


def _anchors(node: Node, live: bool) -> Check:
    """Configured? How old is the last anchoring, is any pending too long or dropped and not anchored
    again, are attempts failing; and (not --quick) does the chain answer and is our account its owner."""
    service = node.anchoring
    if not service.configured:
        dep = service.deployment()
        if dep is not None:
            return Check(
                "anchors",
                "warn",
                f"contract {dep.get('contract')} is deployed on chain {dep.get('chain_id')} but anchor.chain "
                "is none; set it to ethereum to anchor",
            )
        return Check(
            "anchors",
            "warn",
            "external anchoring is not configured (anchor.chain: none); see docs/anchoring.md",
        )
    st = service.status()
    s = node.settings.anchor
    where = f"{st['chain']} {st['network'] or '?'} {st['contract'] or '?'}"
    warnings: list[str] = []
    records = service.records()
    uncovered = sorted(
        {r.tree_size for r in records if r.status == "dropped" and r.tree_size > st["anchored_size"]}
    )
    if uncovered:
        warnings.append(f"dropped by a reorganisation and not anchored again: sizes {uncovered}")
    if st["failures"]:
        warnings.append(
            f"{st['failures']} failed attempt(s) in a row (last: {st['last_error']}); "
            f"next try {st['next_attempt']}"
        )
    age = st["last_anchor_age_seconds"]
    overdue = (s.every_minutes or 24 * 60) * 60 * 2 + s.check_seconds
    if st["unanchored_entries"] and (age is None or age > overdue):
        since = "nothing anchored yet" if age is None else f"last anchoring {age / 60:.0f} min ago"
        warnings.append(f"{since}, {st['unanchored_entries']} entries wait; is the scheduler running?")
    pending_old = [r.tree_size for r in records if r.status == "pending" and _age(r.time) > overdue]
    if pending_old:
        warnings.append(f"pending for long: sizes {pending_old} (too few blocks, or a stuck transaction)")
    if live:
        backend = service.backend()
        info = getattr(backend, "info", None)
        if info is not None:
            chain = info()
            if not chain["account_is_owner"]:
                return Check(
                    "anchors",
                    "fail",
                    f"{where}: the node's account {chain['account']} is not the contract's owner "
                    f"{chain['owner']}; every anchoring will be refused (fix anchor.ethereum.key_file or "
                    "deploy again)",
                )
            if chain["balance_wei"] == 0:
                return Check(
                    "anchors", "fail", f"{where}: account {chain['account']} has no ether to pay gas"
                )
            if chain["latest_size"] < st["anchored_size"]:
                warnings.append(
                    f"the chain holds size {chain['latest_size']}, less than the anchored "
                    f"{st['anchored_size']}: a reorganisation the ledger.anchor job has not seen yet"
                )
            reach = f"RPC {chain['rpc']} at block {chain['head_block']}"
        else:
            reach = f"chain answers, latest size {backend.latest_size()}"
    else:
        reach = "chain not contacted (--quick)"
    if warnings:
        return Check("anchors", "warn", f"{where}: " + "; ".join(warnings))
    last = (
        f"last anchored size {st['anchored_size']} {age / 60:.0f} min ago"
        if age is not None
        else "nothing to anchor yet"
    )
    c = st["counts"]
    return Check(
        "anchors", "ok", f"{where}: {last}, {c['confirmed']} confirmed, {c['pending']} pending; {reach}"
    )


def _age(time_text: str) -> float:
    from datetime import UTC, datetime

    try:
        then = datetime.strptime(time_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return (datetime.now(UTC) - then).total_seconds()


def run_checks(settings: Settings, *, verify_ledger: bool = True) -> Iterator[Check]:
    """Every check in turn; a check that cannot even run reports ``fail`` with the reason."""
    if not Node.paths(settings.data_dir)["info"].exists():
        yield Check("node", "fail", f"{settings.data_dir} holds no node; run `appliance init`")
        return
    yield _guard("keys", lambda: _keys(settings))
    yield _guard("disk", lambda: _disk(settings))
    yield _guard("ledger", lambda: _ledger(settings, verify_ledger))
    try:
        node = Node.open(settings, readonly=True)
    except Exception as exc:  # noqa: BLE001 - the report says why the node does not open
        yield Check("node", "fail", f"the node does not open: {exc}")
        return
    try:
        yield _guard("store", lambda: _store(node))
        yield _guard("policy", lambda: _policy(node))
        yield _guard("scheduler", lambda: _jobs(node))
        yield _guard("privacy", lambda: _privacy(node))
        yield _guard("anchors", lambda: _anchors(node, verify_ledger))
    finally:
        node.close()


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
        return Check(name, "fail", f"{type(exc).__name__}: {exc}")


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == "fail" for c in checks) else 0
