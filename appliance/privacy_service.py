"""Privacy-computing queries in the node: keys, encrypted columns, the query life cycle, the ledger.

The pieces live in :mod:`appliance.privacy` (keys, columns, engine, custodian, guards); this module
composes them over the store and the ledger, in the roles of the design:

* the **engine** side computes over ciphertexts with the PUBLIC contexts only, read from
  ``<data_dir>/privacy/public`` (a copy of the key ring without a single secret file);
* the **custodian** side opens the secret keys (``<data_dir>/privacy/keys``, sealed with the passphrase
  from ``privacy.passphrase_file`` or stored 0600) only to decrypt a result, and releases only what
  the disclosure guards let out: automatically for the aggregates in ``privacy.auto_release``,
  otherwise after ``approve``.

A query's life: ``query.submitted`` (plan digest) → ``query.computed`` (digest of the encrypted
result) → ``query.approved`` (when approval was needed) → ``query.released`` (digest of what was
released, the ε spent) or ``query.refused`` (the guard's reason). Each is a ledger entry appended
before the state is reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from appliance._details import plain as _plain
from appliance.privacy import (
    Custodian,
    EncryptedColumn,
    KeyRing,
    PaillierColumn,
    PublicContexts,
    QueryEngine,
    QueryPlan,
    encrypt_column,
    encrypt_paillier_column,
    load_column,
    plan_digest,
)
from appliance.privacy.errors import DisclosureRefused, KeyUnavailable, PrivacyError, QueryInvalid
from appliance.privacy.guards import GuardSettings, PrivacyBudget, apply_guards, preflight
from appliance.privacy.sql import parse_sql
from appliance.store.privacy import QueryRow

if TYPE_CHECKING:
    from appliance.node import Node

__all__ = ["TABLES", "PrivacyService"]

log = logging.getLogger("appliance.privacy")

#: Tables analysts can query: the customer store's customers (plain fields only).
TABLES = ("customers",)
_ACTOR = "system:privacy"
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class ColumnInfo:
    """What anyone may know about an encrypted column (no values)."""

    table: str
    name: str
    scheme: str
    kind: str
    key_id: str
    rows: int
    ciphertexts: int
    bound: float | None
    buckets: tuple[float, ...] | None
    visible: tuple[str, ...]
    bytes_on_disk: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.name,
            "scheme": self.scheme,
            "kind": self.kind,
            "key_id": self.key_id,
            "rows": self.rows,
            "ciphertexts": self.ciphertexts,
            "bound": self.bound,
            "buckets": list(self.buckets) if self.buckets is not None else None,
            "visible_attributes": list(self.visible),
            "bytes": self.bytes_on_disk,
        }


class PrivacyService:
    """The node's privacy-computing queries (``node.privacy``)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.settings = node.settings.privacy
        root = node.settings.data_dir / "privacy"
        self.keys_dir = root / "keys"
        self.public_dir = root / "public"
        self.columns_dir = root / "columns"
        self.results_dir = root / "results"
        self.weights_dir = root / "weights"
        self.guard_settings = GuardSettings(
            min_group_size=self.settings.min_group_size,
            decimals=self.settings.decimals,
            max_epsilon_per_query=self.settings.max_epsilon_per_query,
            max_delta_per_query=self.settings.max_delta_per_query,
            default_budget=(self.settings.budget_epsilon, self.settings.budget_delta),
        )
        self.budget = PrivacyBudget(node.store.privacy, self.guard_settings.default_budget)
        self._lock = threading.Lock()
        self._columns: dict[tuple[str, str], tuple[float, EncryptedColumn | PaillierColumn]] = {}
        self._publics: dict[str, PublicContexts] = {}

    # -- keys (custodian / admin) --------------------------------------------------------------------
    def _passphrase(self) -> bytes | None:
        path = self.settings.passphrase_file
        if path is None:
            return None
        try:
            mode = path.stat().st_mode & 0o077
            if mode:
                raise KeyUnavailable(f"privacy.passphrase_file {path} is readable by others; chmod 600 it")
            data = path.read_bytes().strip()
        except OSError as exc:
            raise KeyUnavailable(
                f"privacy.passphrase_file {path} cannot be read ({exc.strerror}); fix the path"
            ) from exc
        if not data:
            raise KeyUnavailable(f"privacy.passphrase_file {path} is empty; write the passphrase into it")
        return data

    @property
    def has_keys(self) -> bool:
        return (self.keys_dir / "CURRENT").exists()

    def _ring(self) -> KeyRing:
        if not self.has_keys:
            raise KeyUnavailable(
                "this node has no privacy keys yet; the custodian creates them: `appliance privacy keygen`"
            )
        return KeyRing.open(self.keys_dir)

    def _public_ring(self) -> KeyRing:
        """The engine's copy of the ring: public files only, re-exported when the ring has changed.

        Keygen and rotation always make a new current key id, so comparing the two CURRENT files
        is the whole check (one small read per call, no listing of key ids).
        """
        ring = self._ring()
        marker = self.public_dir / "CURRENT"
        current = marker.read_text().strip() if marker.exists() else ""
        if current != ring.current_key_id:
            tmp = self.public_dir.with_name("public.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            ring.export_public(tmp)
            shutil.rmtree(self.public_dir, ignore_errors=True)
            tmp.rename(self.public_dir)
        return KeyRing.open(self.public_dir)

    def _public(self, key_id: str | None = None) -> PublicContexts:
        """The engine's public contexts of ``key_id`` (default: current), loaded and checked once.

        Loading them reads and hashes ~50 MB of Galois keys; a key id's public files never change,
        so they are kept for the life of the node (keygen and rotate only add key ids).
        """
        ring = self._public_ring()
        kid = key_id or ring.current_key_id
        cached = self._publics.get(kid)
        if cached is None:
            cached = ring.public(kid)
            self._publics[kid] = cached
        return cached

    def keygen(self, *, actor: str) -> dict[str, Any]:
        """Create the CKKS, BFV and Paillier keys (custodian); recorded as ``privacy.keys_created``."""
        with self._lock:
            if self.has_keys:
                raise KeyUnavailable(
                    f"{self.keys_dir} already holds privacy keys; rotate them with `appliance privacy rotate`"
                )
            ring = KeyRing.generate(self.keys_dir, self._passphrase())
            info = ring.info()
            self._public_ring()
        receipt = self._node.record(actor, "privacy.keys_created", details=_public_info(info))
        return {**_public_info(info), "ledger_seq": receipt.seq}

    def rotate(self, *, actor: str) -> dict[str, Any]:
        """A new current key id; columns stay readable under their old key id until re-encrypted."""
        with self._lock:
            ring = self._ring()
            old = ring.current_key_id
            new = ring.rotate(self._passphrase())
            self._public_ring()
            info = ring.info(new)
        receipt = self._node.record(
            actor, "privacy.keys_rotated", details={**_public_info(info), "previous": old}
        )
        return {**_public_info(info), "previous": old, "ledger_seq": receipt.seq}

    def key_info(self) -> dict[str, Any]:
        ring = self._ring()
        return {"current": ring.current_key_id, "keys": [_public_info(ring.info(k)) for k in ring.key_ids()]}

    # -- encrypted columns (admin) --------------------------------------------------------------------
    def _column_dir(self, table: str, column: str) -> Path:
        _check_table(table)
        if not column or set(column) - _NAME_OK:
            raise QueryInvalid(f"{column!r} is not a column name (lower_snake_case)")
        return self.columns_dir / table / column

    def _source(
        self, table: str, column: str, segment_by: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Row ids, values (NaN = null) and the segmenting attributes of a plain field of ``table``."""
        _check_table(table)
        schema = self._node.store.schema
        spec = schema.field(column)
        if spec is None:
            plain = sorted(
                f.name for f in schema.fields if not f.encrypted and f.type in ("int", "number", "bool")
            )
            raise QueryInvalid(f"{table} has no field {column!r}; numeric plain fields: {', '.join(plain)}")
        if spec.encrypted:
            raise QueryInvalid(
                f"{column} is {spec.sensitivity} (sealed with a field key); privacy queries compute on plain "
                "analytics fields (internal or public) only"
            )
        if spec.type not in ("int", "number", "bool"):
            raise QueryInvalid(
                f"{column} is a {spec.type} field; only int, number and bool fields can be encrypted"
            )
        hidden = [a for a in segment_by if a not in self.settings.visible_attributes]
        if hidden:
            raise QueryInvalid(
                f"cannot segment by {', '.join(hidden)}: the engine may only see "
                f"{', '.join(self.settings.visible_attributes)} (privacy.visible_attributes)"
            )
        visible = [a for a in segment_by if a != "region"]
        frame = self._node.store.proactive.customers_frame([column, *visible])
        raw = frame[column]
        if spec.type == "bool":
            values = raw.map({"true": 1.0, "false": 0.0}).astype("float64").to_numpy()
        else:
            values = np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=np.float64)
        attrs = {"region": frame["region"].to_numpy(dtype=object)} if "region" in segment_by else {}
        for a in visible:
            attrs[a] = frame[a].to_numpy(dtype=object)
        return frame.index.to_numpy(dtype=np.int64), values, attrs

    def encrypt(
        self,
        table: str,
        column: str,
        *,
        scheme: str = "ckks",
        kind: str = "value",
        buckets: Sequence[float] | None = None,
        bound: float | None = None,
        segment_by: Sequence[str] | None = None,
        actor: str,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Encrypt a column of the store, or append the rows added since (same key id and layout).

        ``segment_by`` (default ``privacy.segment_by``): the visible attributes its ciphertexts are
        grouped by; WHERE and GROUP BY on them cost nothing, on other attributes they are refused.
        Every combination present takes at least one ciphertext (~330 kB), so segment by what
        analysts group by, not by everything.
        """
        directory = self._column_dir(table, column)
        if scheme not in ("ckks", "bfv", "paillier"):
            raise QueryInvalid(
                f"scheme {scheme!r} is unknown; use ckks (real numbers), bfv (exact integers) or paillier"
            )
        if bound is not None and not (isinstance(bound, int | float) and math.isfinite(bound) and bound > 0):
            raise QueryInvalid(
                f"bound must be a positive finite number (a bound on |value|), or none; got {bound!r}"
            )
        t0 = time.perf_counter()
        segment_by = list(segment_by if segment_by is not None else self.settings.segment_by)
        ids, values, visible = self._source(table, column, segment_by)
        if progress:
            progress(f"read {len(ids):,} rows of {table}.{column}")
        public = self._public()
        with self._lock:
            existing = self._load(table, column) if (directory / "manifest.json").exists() else None
            appended: int | None = None  # None: encrypted anew
            new = (
                ~np.isin(ids, existing.row_ids)
                if isinstance(existing, EncryptedColumn)
                else np.ones(len(ids), dtype=bool)
            )
            col: EncryptedColumn | PaillierColumn
            if scheme == "paillier":
                paillier = encrypt_paillier_column(public, column, values, ids)
                if directory.exists():
                    shutil.rmtree(directory)
                paillier.save(directory)
                col = paillier
            elif (
                isinstance(existing, EncryptedColumn)
                and existing.key_id == public.key_id
                and (existing.scheme, existing.kind) == (scheme, kind)
                and sorted(existing.visible) == sorted(visible)
                and (buckets is None or tuple(float(b) for b in buckets) == existing.buckets)
                and (bound is None or float(bound) == float(existing.bound))
                # new rows with nulls need a validity mask the column does not have: encrypt anew
                and (existing.nullable or not np.isnan(values[new]).any())
                # rows gone from the store (erased subjects) cannot be taken out of packed ciphertexts
                and bool(np.isin(existing.row_ids, ids).all())
            ):
                appended = int(new.sum())
                col = existing
                if appended:
                    col = existing.append(
                        public, values[new], ids[new], {k: v[new] for k, v in visible.items()}
                    )
                    col.save(directory, public)
            else:
                col = encrypt_column(
                    public,
                    column,
                    values,
                    ids,
                    visible,
                    scheme,  # type: ignore[arg-type]
                    kind,  # type: ignore[arg-type]
                    buckets,
                    bound=bound,
                )
                if directory.exists():
                    shutil.rmtree(directory)
                col.save(directory, public)
            self._columns.pop((table, column), None)
        info = self._info(table, column)
        details = {**info.as_dict(), "appended": appended}
        details.pop("bound", None)  # a magnitude; the ledger keeps digests and counts only
        details["seconds"] = round(time.perf_counter() - t0, 3)
        receipt = self._node.record(actor, "privacy.column_encrypted", details=_plain(details))
        return {**info.as_dict(), "appended": details["appended"], "ledger_seq": receipt.seq}

    def _load(self, table: str, column: str) -> EncryptedColumn | PaillierColumn:
        directory = self._column_dir(table, column)
        manifest = directory / "manifest.json"
        if not manifest.exists():
            known = ", ".join(c.name for c in self.columns()) or "none yet"
            raise QueryInvalid(
                f"{table}.{column} is not encrypted (encrypted columns: {known}); an admin encrypts it with "
                f"`appliance privacy encrypt --table {table} --column {column}`"
            )
        stamp = manifest.stat().st_mtime_ns
        cached = self._columns.get((table, column))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        key_id = json.loads(manifest.read_text())["key_id"]
        col = load_column(directory, self._public(key_id))
        self._columns[(table, column)] = (stamp, col)
        return col

    def _info(self, table: str, column: str) -> ColumnInfo:
        col = self._load(table, column)
        directory = self._column_dir(table, column)
        size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        if isinstance(col, PaillierColumn):
            return ColumnInfo(
                table,
                column,
                "paillier",
                "record",
                col.key_id,
                len(col.records),
                len(col.records),
                None,
                None,
                (),
                size,
            )
        return ColumnInfo(
            table,
            column,
            col.scheme,
            col.kind,
            col.key_id,
            col.rows,
            col.ciphertext_count,
            col.bound,
            col.buckets,
            col.visible,
            size,
        )

    def columns(self, table: str = "customers") -> list[ColumnInfo]:
        base = self.columns_dir / table
        if not base.is_dir():
            return []
        return [self._info(table, d.name) for d in sorted(base.iterdir()) if (d / "manifest.json").exists()]

    def refresh_columns(self, *, actor: str, table: str = "customers") -> list[str]:
        """After an erasure: take rows the store no longer has out of encrypted columns and weights.

        A packed CKKS/BFV ciphertext cannot lose one slot, so a column that holds a removed row is
        encrypted anew from the store with its own scheme, kind, buckets, bound and segmentation (each
        recorded as ``privacy.column_encrypted``); weight vectors are rewritten without the removed ids
        (``privacy.weights_pruned``). Returns the names of what was rewritten.
        """
        columns, vectors = self.columns(table), self.weight_vectors()
        if not columns and not vectors:
            return []
        current = self._node.store.proactive.customers_frame([]).index.to_numpy(dtype=np.int64)
        done: list[str] = []
        for info in columns:
            col = self._load(table, info.name)
            ids = (
                col.row_ids
                if isinstance(col, EncryptedColumn)
                else np.fromiter(col.records, dtype=np.int64, count=len(col.records))
            )
            if np.isin(ids, current).all():
                continue
            self.encrypt(
                table,
                info.name,
                scheme=info.scheme,
                kind=info.kind if info.scheme != "paillier" else "value",
                buckets=info.buckets,
                bound=info.bound,
                segment_by=list(info.visible),
                actor=actor,
            )
            done.append(f"{table}.{info.name}")
        for vector in vectors:
            ids, w = self._weights(vector["name"])
            keep = np.isin(ids, current)
            if keep.all():
                continue
            tmp = self.weights_dir / f".{vector['name']}.npz"
            with open(tmp, "wb") as fh:
                np.savez(fh, ids=ids[keep].astype(np.int64), weights=w[keep])
            tmp.replace(self.weights_dir / f"{vector['name']}.npz")
            kept = ids[keep].astype("<i8").tobytes() + w[keep].astype("<f8").tobytes()
            self._node.record(
                actor,
                "privacy.weights_pruned",
                details={
                    "name": vector["name"],
                    "rows": int(keep.sum()),
                    "removed": int((~keep).sum()),
                    "sha256": hashlib.sha256(kept).hexdigest(),
                },
            )
            done.append(f"weights.{vector['name']}")
        return done

    # -- DOT weight vectors ----------------------------------------------------------------------------
    def set_weights(
        self,
        name: str,
        row_ids: Sequence[int] | np.ndarray,
        weights: Sequence[float] | np.ndarray,
        *,
        actor: str,
    ) -> dict[str, Any]:
        """Store a named plaintext weight vector (one weight per customer) for ``DOT(column, 'name')``."""
        if not name or set(name) - _NAME_OK or len(name) > 64:
            raise QueryInvalid(
                f"{name!r} is not a weight vector name (lower_snake_case, up to 64 characters)"
            )
        ids = np.asarray(row_ids)
        w = np.asarray(weights, dtype=np.float64)
        if ids.ndim != 1 or ids.shape != w.shape or not np.issubdtype(ids.dtype, np.integer):
            raise QueryInvalid("weights: give one integer customer id per weight (two lists of equal length)")
        if len(np.unique(ids)) != len(ids):
            raise QueryInvalid("weights: a customer id appears twice; give each customer one weight")
        if not np.isfinite(w).all():
            raise QueryInvalid("weights: every weight must be a finite number")
        self._check_spread(name, w)
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.weights_dir / f".{name}.npz"
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=ids.astype(np.int64), weights=w)
        tmp.replace(self.weights_dir / f"{name}.npz")
        digest = hashlib.sha256(ids.astype("<i8").tobytes() + w.astype("<f8").tobytes()).hexdigest()
        receipt = self._node.record(
            actor, "privacy.weights_stored", details={"name": name, "rows": len(ids), "sha256": digest}
        )
        return {"name": name, "rows": len(ids), "sha256": digest, "ledger_seq": receipt.seq}

    def weight_vectors(self) -> list[dict[str, Any]]:
        if not self.weights_dir.is_dir():
            return []
        out = []
        for path in sorted(self.weights_dir.glob("*.npz")):
            ids, w = self._weights(path.stem)
            out.append({"name": path.stem, "rows": len(ids), "nonzero": int(np.count_nonzero(w))})
        return out

    def _weights(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        path = self.weights_dir / f"{name}.npz"
        if set(name) - _NAME_OK or not path.is_file():
            known = (
                ", ".join(p.stem for p in sorted(self.weights_dir.glob("*.npz")))
                if self.weights_dir.is_dir()
                else ""
            )
            raise QueryInvalid(
                f"no weight vector named {name!r} (stored: {known or 'none'}); store one with PUT "
                f"/v1/privacy/weights/{name} or `appliance privacy weights {name} FILE.csv`"
            )
        with np.load(path) as data:
            return data["ids"], data["weights"]

    def _check_spread(self, name: str, w: np.ndarray) -> None:
        """Weights that single out a few customers would read their values one DOT at a time."""
        nonzero = int(np.count_nonzero(w))
        if nonzero < self.settings.min_group_size:
            raise DisclosureRefused(
                f"weights {name!r} are non-zero for {nonzero} customer(s); a DOT must spread over at least "
                f"{self.settings.min_group_size} (privacy.min_group_size), or it reads single records"
            )

    # -- queries (analyst → engine → custodian) -------------------------------------------------------
    def parse(self, sql: str | None = None, query: Mapping[str, Any] | None = None) -> QueryPlan:
        if (sql is None) == (query is None):
            raise QueryInvalid(
                "give the query either as SQL (`sql`) or as JSON (`query`), not both or neither"
            )
        plan = parse_sql(sql) if sql is not None else QueryPlan.from_dict(query)  # type: ignore[arg-type]
        _check_table(plan.table)
        return plan

    def _engine(self, plan: QueryPlan) -> QueryEngine:
        visible = tuple(self.settings.visible_attributes)
        needed = [c for c in plan.columns if c not in visible]
        columns = {name: self._load(plan.table, name) for name in needed}
        if not columns and plan.lookup is None:
            # COUNT(*) alone: any encrypted column segmented by the attributes the query uses gives
            # the plaintext segment sizes (counts need no ciphertext).
            wanted = {*plan.group_by, *(p.column for p in plan.where)}
            for info in self.columns(plan.table):
                if info.scheme != "paillier" and wanted <= set(info.visible):
                    columns[info.name] = self._load(plan.table, info.name)
                    break
            else:
                raise QueryInvalid(
                    f"counting by {', '.join(sorted(wanted)) or 'nothing'} needs an encrypted column of "
                    f"{plan.table} segmented by those attributes; encrypt one (`appliance privacy encrypt "
                    "--column ... --segment-by ...`)"
                )
        key_ids = {c.key_id for c in columns.values()}
        if len(key_ids) > 1:
            raise QueryInvalid(
                f"the query's columns are under different key ids ({', '.join(sorted(key_ids))}); re-encrypt "
                "them under the current key (`appliance privacy encrypt ...`)"
            )
        public = self._public(key_ids.pop() if key_ids else None)
        weights: dict[str, Any] = {}
        for a in plan.aggregates:
            if a.func != "dot":
                continue
            if a.weights_ref is not None:
                weights[a.weights_ref] = self._weights(a.weights_ref)
                self._check_spread(a.weights_ref, weights[a.weights_ref][1])
            elif a.weights is not None:
                self._check_spread(a.name, np.asarray(a.weights, dtype=np.float64))
        return QueryEngine(public, columns, visible, table=plan.table, weights=weights)

    def _bounds(self, plan: QueryPlan) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        for name in plan.columns:
            if name in self.settings.visible_attributes:
                continue
            col = self._load(plan.table, name)
            if isinstance(col, EncryptedColumn):
                b = float(col.bound)
                out[name] = (0.0, 1.0) if col.kind == "flag" else (-b, b)
        return out

    def _weight_bounds(self, plan: QueryPlan) -> dict[str, float]:
        return {
            a.weights_ref: float(np.abs(self._weights(a.weights_ref)[1]).max(initial=0.0))
            for a in plan.aggregates
            if a.func == "dot" and a.weights_ref is not None
        }

    def submit(
        self,
        *,
        actor: str,
        sql: str | None = None,
        query: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> QueryRow:
        """Parse, record, compute over ciphertexts, and release what the guards allow (or wait)."""
        plan = self.parse(sql, query)
        store = self._node.store.privacy
        digest = plan_digest(plan)
        # Refuse early what the guards would refuse anyway (noise over the maximum, no budget left),
        # and unknown columns: before anything is recorded or computed.
        engine = self._engine(plan)
        if plan.noise is not None:
            preflight(
                plan,
                self.guard_settings,
                bounds=self._bounds(plan),
                weight_bounds=self._weight_bounds(plan),
                budget=self.budget,
                analyst=actor,
            )
        qid = store.create_query(actor, plan.as_dict(), digest, sql)
        self._node.record(
            actor, "query.submitted", details={"query": qid, "plan_sha256": digest}, request_id=request_id
        )
        try:
            result = engine.compute(plan)
        except PrivacyError as exc:
            store.update_query(qid, status="refused", error=str(exc))
            self._node.record(_ACTOR, "query.refused", details={"query": qid, "reason": type(exc).__name__})
            raise
        except Exception as exc:  # recorded as failed, never left "computing"; the edge answers 500
            store.update_query(qid, status="failed", error=type(exc).__name__)
            self._node.record(_ACTOR, "query.failed", details={"query": qid, "reason": type(exc).__name__})
            raise
        data = result.to_bytes()
        self.results_dir.mkdir(parents=True, exist_ok=True)
        (self.results_dir / f"{qid}.json").write_bytes(data)
        rdigest = hashlib.sha256(data).hexdigest()
        store.update_query(qid, status="computing", key_id=result.key_id, result_digest=rdigest)
        self._node.record(
            _ACTOR,
            "query.computed",
            details={"query": qid, "result_sha256": rdigest, "key_id": result.key_id},
        )
        if self._auto(plan):
            return self._release(qid, plan, actor)
        return store.update_query(qid, status="awaiting_approval")

    def _auto(self, plan: QueryPlan) -> bool:
        if plan.lookup is not None:
            return False
        return all(a.func in self.settings.auto_release for a in plan.aggregates)

    def approve(self, query_id: int, *, actor: str, request_id: str | None = None) -> QueryRow:
        """The custodian's explicit release of a query waiting for approval."""
        store = self._node.store.privacy
        row = store.get_query(query_id)
        # One approval wins: the status moves from awaiting_approval in a single conditional UPDATE.
        if not store.claim(query_id, "awaiting_approval", "computing", approved_by=actor):
            now = store.get_query(query_id).status
            raise DisclosureRefused(f"query {query_id} is {now}, not awaiting approval; nothing to approve")
        self._node.record(actor, "query.approved", details={"query": query_id}, request_id=request_id)
        return self._release(query_id, QueryPlan.from_dict(row.plan), row.analyst)

    def _release(self, qid: int, plan: QueryPlan, analyst: str) -> QueryRow:
        store = self._node.store.privacy
        row = store.get_query(qid)
        try:
            data = (self.results_dir / f"{qid}.json").read_bytes()
        except OSError as exc:
            raise KeyUnavailable(
                f"the encrypted result of query {qid} is missing; submit the query again"
            ) from exc
        if hashlib.sha256(data).hexdigest() != row.result_digest:
            from appliance.privacy.errors import CiphertextInvalid

            store.update_query(qid, status="failed", error="the stored encrypted result fails its digest")
            self._node.record(_ACTOR, "query.failed", details={"query": qid, "reason": "CiphertextInvalid"})
            raise CiphertextInvalid(
                f"the encrypted result of query {qid} was altered after it was computed; submit it again"
            )
        from appliance.privacy import EncryptedResult

        result = EncryptedResult.from_bytes(data)
        if plan.lookup is not None:
            released = self._lookup_release(result)
        else:
            try:
                ring = self._ring()
                custodian = Custodian(ring.secret(result.key_id, self._passphrase()))
                raw = custodian.decrypt(result)
            except PrivacyError as exc:
                # The custodian cannot open it (keys, passphrase, a damaged result): the query stays
                # unreleased and says why; a fixed custodian can release it by approving it.
                store.update_query(qid, status="awaiting_approval", error=str(exc))
                self._node.record(_ACTOR, "query.held", details={"query": qid, "reason": type(exc).__name__})
                raise
            try:
                out = apply_guards(
                    _raw_values(raw),
                    raw.sizes(),
                    plan,
                    self.guard_settings,
                    np.random.default_rng(secrets.randbits(128)),
                    bounds=self._bounds(plan),
                    weight_bounds=self._weight_bounds(plan),
                    budget=self.budget,
                    analyst=analyst,
                    query_id=f"query-{qid}",
                )
            except DisclosureRefused as exc:
                store.update_query(qid, status="refused", error=str(exc))
                self._node.record(
                    _ACTOR, "query.refused", details={"query": qid, "reason": type(exc).__name__}
                )
                raise
            released = out.as_dict()
        released_digest = _digest(released)
        self._node.record(
            _ACTOR,
            "query.released",
            details={
                "query": qid,
                "released_sha256": released_digest,
                "epsilon": str(released.get("epsilon", 0)),
                "delta": str(released.get("delta", 0)),
                "suppressed": len(released.get("suppressed", [])),
            },
        )
        return store.update_query(qid, status="released", released=released)

    def _lookup_release(self, result: Any) -> dict[str, Any]:
        """Paillier values go out still encrypted, with the public key: usable, not visible."""
        ring = self._public(result.key_id)
        pk = ring.paillier
        return {
            "lookup_column": result.lookup_column,
            "paillier_public_key": {"n": str(pk.n)},
            "records": {str(r.row_id): json.loads(r.term.data) for r in result.records},
        }

    def get(self, query_id: int, *, actor: str, role: str) -> QueryRow:
        row = self._node.store.privacy.get_query(query_id)
        if role == "analyst" and row.analyst != actor:
            from appliance.store.privacy import UnknownQuery

            raise UnknownQuery(f"no privacy query {query_id} of yours")
        return row

    def budget_of(self, analyst: str) -> dict[str, Any]:
        limit = self.budget.limit(analyst)
        spent = self.budget.spent(analyst)
        return {
            "analyst": analyst,
            "epsilon": {"limit": limit[0], "spent": spent[0], "left": max(0.0, limit[0] - spent[0])},
            "delta": {"limit": limit[1], "spent": spent[1], "left": max(0.0, limit[1] - spent[1])},
        }

    def grant(self, analyst: str, epsilon: float, delta: float, *, actor: str) -> dict[str, Any]:
        self._node.store.privacy.set_allowance(analyst, epsilon, delta, actor=actor)
        self._node.record(
            actor,
            "privacy.budget_granted",
            details={"analyst": analyst, "epsilon": str(epsilon), "delta": str(delta)},
        )
        return self.budget_of(analyst)


def _raw_values(raw: Any) -> dict[str, dict[str, Any]]:
    """group label -> output -> value, a histogram as its list of bucket counts (the guards' shape)."""
    from appliance.privacy import group_label

    return {
        group_label(raw.group_by, g.key): {
            name: list(v) if isinstance(v, tuple) else v for name, v in g.values.items()
        }
        for g in raw.groups
    }


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise QueryInvalid(f"table {table!r} is unknown; privacy queries run over: {', '.join(TABLES)}")


def _public_info(info: Mapping[str, Any]) -> dict[str, Any]:
    return _plain(
        {k: v for k, v in info.items() if k in ("key_id", "created", "parameters", "params", "current")}
    )
