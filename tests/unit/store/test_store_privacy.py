"""The privacy queries' tables and the SQL privacy budget, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from appliance.privacy.errors import DisclosureRefused
from appliance.privacy.guards import PrivacyBudget
from appliance.store import StoreError
from appliance.store.privacy import UnknownQuery

PLAN = {"table": "customers", "select": [{"func": "count", "column": None, "as": "n"}]}


def test_queries_are_created_updated_listed_and_unknown_ones_refused(store):
    p = store.privacy
    a = p.create_query("key:aa", PLAN, "d" * 64, "SELECT COUNT(*) AS n FROM customers")
    b = p.create_query("key:bb", PLAN, "e" * 64, None)
    row = p.get_query(a)
    assert (row.status, row.analyst, row.sql, dict(row.plan)) == (
        "computing",
        "key:aa",
        "SELECT COUNT(*) AS n FROM customers",
        PLAN,
    )
    done = p.update_query(a, status="released", result_digest="f" * 64, released={"groups": {"": {"n": 12}}})
    assert done.status == "released" and done.released == {"groups": {"": {"n": 12}}}
    assert done.as_dict()["submitted"].endswith("Z")
    assert [q.id for q in p.list_queries()] == [b, a]
    assert [q.id for q in p.list_queries(analyst="key:aa")] == [a]
    assert [q.id for q in p.list_queries(status="computing")] == [b]
    with pytest.raises(UnknownQuery):
        p.get_query(999)
    with pytest.raises(UnknownQuery):
        p.update_query(999, status="failed")
    with pytest.raises(StoreError, match="status"):
        p.update_query(a, status="lost")
    with pytest.raises(StoreError, match="settable"):
        p.update_query(a, plan={})


def test_budget_charges_stay_within_the_limit_and_replays_are_refused(store):
    p = store.privacy
    assert p.spent("key:aa") == (0.0, 0.0)
    assert p.charge("key:aa", 0.4, 0.0, "q1", limit=(1.0, 1e-5)) == pytest.approx((0.4, 0.0))
    assert p.charge("key:aa", 0.5, 1e-6, "q2", limit=(1.0, 1e-5)) == pytest.approx((0.9, 1e-6))
    assert p.charge("key:aa", 0.2, 0.0, "q3", limit=(1.0, 1e-5)) is None  # would reach 1.1
    assert p.spent("key:aa") == pytest.approx((0.9, 1e-6))
    with pytest.raises(DisclosureRefused, match="already charged"):
        p.charge("key:aa", 0.01, 0.0, "q1", limit=(1.0, 1e-5))
    assert p.spent("key:bb") == (0.0, 0.0)
    assert p.allowance("key:aa") is None
    p.set_allowance("key:aa", 2.0, 1e-5, actor="key:admin")
    p.set_allowance("key:aa", 3.0, 1e-5, actor="key:admin")
    assert p.allowance("key:aa") == (3.0, 1e-5)
    budget = PrivacyBudget(p, (1.0, 1e-5))
    assert budget.limit("key:aa") == (3.0, 1e-5)


def test_concurrent_charges_never_overspend(store):
    """Eight threads race for a budget that pays for three charges: exactly three win."""
    p = store.privacy
    wins: list[str] = []
    errors: list[BaseException] = []

    def spend(i: int) -> None:
        try:
            if p.charge("key:race", 0.3, 0.0, f"race-{i}", limit=(1.0, 1e-5)) is not None:
                wins.append(f"race-{i}")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(wins) == 3
    assert p.spent("key:race")[0] == pytest.approx(0.9)
