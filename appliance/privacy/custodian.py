"""The custodian: decrypts an ``EncryptedResult`` and finishes it (means, variances, scores).

Only the custodian holds secret contexts. It checks every ciphertext against the digest the engine
recorded and against the key id before decrypting, so an altered or swapped result fails with one opaque
``CiphertextInvalid`` instead of decrypting to a wrong number. Disclosure guards (minimum group size,
noise, rounding) are NOT applied here: ``RawResult`` goes to the guards before anything is released.

Finishing happens here because the engine cannot divide or take roots on ciphertexts: MEAN = sum / n,
VARIANCE = (sum of squares - sum^2 / n) / (n - 1) (the sample variance, pandas' default; the n/(n-1) bias
correction is applied here), STDDEV = its square root. A CKKS count is rounded to the integer it encodes;
one that is not within 0.01 of an integer means the ciphertext is not what the engine computed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.privacy.columns import VisibleValue, decode_paillier
from appliance.privacy.engine import Cell, EncryptedGroup, EncryptedResult, EncryptedTerm
from appliance.privacy.errors import CiphertextInvalid, KeyUnavailable
from appliance.privacy.keys import PublicContexts, SecretContexts

__all__ = ["Custodian", "RawGroup", "RawResult", "RawValue", "group_label"]

RawValue = float | int | tuple[int, ...] | None
_TAMPERED = (
    "the encrypted result fails its integrity check (altered, truncated or mixed up); recompute the query"
)


def group_label(group_by: tuple[str, ...], key: tuple[VisibleValue, ...]) -> str:
    """The string key of a group for the guards: ``all`` without GROUP BY, else ``region=EU&tier=2``."""
    if not group_by:
        return "all"
    return "&".join(f"{a}={'null' if v is None else v}" for a, v in zip(group_by, key, strict=True))


@dataclass(frozen=True)
class RawGroup:
    """One decrypted group: its key, its size (rows selected) and each output's value (None if empty)."""

    key: tuple[VisibleValue, ...]
    size: int
    values: Mapping[str, RawValue]


@dataclass(frozen=True)
class RawResult:
    """Decrypted, finished, NOT yet released: the guards decide what of this leaves the custodian."""

    key_id: str
    table: str
    plan_digest: str
    result_digest: str
    group_by: tuple[str, ...]
    outputs: tuple[str, ...]
    groups: tuple[RawGroup, ...]
    edges: Mapping[str, tuple[float, ...]]  # histogram outputs -> bucket edges
    lookup_column: str | None = None
    records: Mapping[int, float | int | None] | None = None

    def values(self) -> dict[str, dict[str, float | int | None]]:
        """group label -> output -> value, histograms flattened to one output per bucket
        (``histogram(age)[18,30)``): the shape ``guards.apply_guards`` takes."""
        out: dict[str, dict[str, float | int | None]] = {}
        for g in self.groups:
            row: dict[str, float | int | None] = {}
            for name in self.outputs:
                v = g.values.get(name)
                edges = self.edges.get(name)
                if edges is not None:
                    for i in range(len(edges) - 1):
                        label = f"{name}[{edges[i]:g},{edges[i + 1]:g})"
                        row[label] = None if not isinstance(v, tuple) else v[i]
                else:
                    assert not isinstance(v, tuple)
                    row[name] = v
            out[group_label(self.group_by, g.key)] = row
        return out

    def sizes(self) -> dict[str, int]:
        """group label -> rows in the group (what the minimum-group-size guard checks)."""
        return {group_label(self.group_by, g.key): g.size for g in self.groups}

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "table": self.table,
            "plan_sha256": self.plan_digest,
            "result_sha256": self.result_digest,
            "group_by": list(self.group_by),
            "groups": [
                {
                    "key": list(g.key),
                    "size": g.size,
                    "values": {k: list(v) if isinstance(v, tuple) else v for k, v in g.values.items()},
                }
                for g in self.groups
            ],
            "lookup_column": self.lookup_column,
            "records": None if self.records is None else {str(k): v for k, v in self.records.items()},
        }


class Custodian:
    """Decrypts results made under any of the key ids it holds secret contexts for."""

    def __init__(self, secret: SecretContexts | Iterable[SecretContexts]) -> None:
        if isinstance(secret, PublicContexts):
            secret = [secret]  # type: ignore[list-item]  # refused just below, with the reason
        keys = [secret] if isinstance(secret, SecretContexts) else list(secret)
        for k in keys:
            if not isinstance(k, SecretContexts) or not k.ckks.is_private():
                raise KeyUnavailable(
                    "the custodian decrypts with secret contexts (KeyRing.secret(key_id, passphrase)); "
                    "public contexts cannot decrypt"
                )
        self._keys = {k.key_id: k for k in keys}

    def decrypt(self, result: EncryptedResult) -> RawResult:
        keys = self._keys.get(result.key_id)
        if keys is None:
            raise KeyUnavailable(
                f"the result was computed under key id {result.key_id}; open that key id's secret contexts "
                f"(KeyRing.secret({result.key_id!r}, passphrase)); this custodian holds {sorted(self._keys)}"
            )
        digest = result.digest
        if result.lookup_column is not None:
            records = {r.row_id: self._record(keys, r.term) for r in result.records}
            return RawResult(
                result.key_id,
                result.table,
                result.plan_digest,
                digest,
                (),
                result.outputs,
                (),
                {},
                result.lookup_column,
                records,
            )
        edges: dict[str, tuple[float, ...]] = {}
        groups = []
        for g in result.groups:
            groups.append(self._group(keys, g))
            for c in g.cells:
                if c.finish == "histogram":
                    edges[c.output] = c.edges
        return RawResult(
            result.key_id,
            result.table,
            result.plan_digest,
            digest,
            result.group_by,
            result.outputs,
            tuple(groups),
            edges,
        )

    # --- internals -------------------------------------------------------------------------------

    def _open(self, keys: SecretContexts, term: EncryptedTerm) -> float | int:
        """The number a rotation-summed ciphertext holds (every slot holds it; a few are compared)."""
        if hashlib.sha256(term.data).hexdigest() != term.digest or term.scheme not in ("ckks", "bfv"):
            raise CiphertextInvalid(_TAMPERED)
        ctx = keys.scheme(term.scheme)
        try:
            (ct,) = ctx.ciphertexts_from_bytes([term.data])
        except CiphertextInvalid as exc:
            raise CiphertextInvalid(_TAMPERED) from exc
        slots = ctx.decrypt(ct)
        probe = slots[[0, len(slots) // 3, len(slots) // 2, len(slots) - 1]]
        if term.scheme == "bfv":
            if not np.all(probe == probe[0]):
                raise CiphertextInvalid(_TAMPERED)
            return int(probe[0])
        v = float(probe[0])
        # the slots differ by noise only: ~1e5 in integer units (rms), so 2^21 is ~20 standard deviations
        if not np.all(np.abs(probe - v) <= 1e-6 * abs(v) + 2.0**21 / ct.scale):
            raise CiphertextInvalid(_TAMPERED)
        return v

    def _record(self, keys: SecretContexts, term: EncryptedTerm) -> float | int | None:
        if hashlib.sha256(term.data).hexdigest() != term.digest or term.scheme != "paillier":
            raise CiphertextInvalid(_TAMPERED)
        try:
            doc = json.loads(term.data)
            c, e = int(doc["c"]), int(doc["e"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CiphertextInvalid(_TAMPERED) from exc
        n2 = keys.paillier_public.nsquare
        if not 0 < c < n2:
            raise CiphertextInvalid(_TAMPERED)
        return decode_paillier(keys.paillier_private, c, e)

    def _group(self, keys: SecretContexts, g: EncryptedGroup) -> RawGroup:
        plain = {tid: self._open(keys, term) for tid, term in g.terms}

        def number(cell: Cell, role: str) -> float | int:
            v = cell.input(role)
            if isinstance(v, str):
                if v not in plain:
                    raise CiphertextInvalid(_TAMPERED)
                return plain[v]
            if v is None:
                raise CiphertextInvalid(_TAMPERED)
            return v

        def count(cell: Cell, role: str = "count") -> int:
            return _as_count(number(cell, role))

        if isinstance(g.size, str):
            if g.size not in plain:
                raise CiphertextInvalid(_TAMPERED)
            size = _as_count(plain[g.size])
        else:
            size = int(g.size)
        values: dict[str, RawValue] = {}
        for cell in g.cells:
            if size == 0:  # an empty group: nothing was computed for it
                values[cell.output] = 0 if cell.finish == "count" else None
            else:
                values[cell.output] = _finish(cell, number, count)
        return RawGroup(g.key, size, values)


def _as_count(v: float | int) -> int:
    if isinstance(v, int):
        return v
    r = round(v)
    if abs(v - r) > 0.01:
        raise CiphertextInvalid(_TAMPERED)
    return int(r)


def _finish(cell: Cell, number: Any, count: Any) -> RawValue:
    if cell.finish == "value":
        v: float | int = number(cell, "value")
        return v
    if cell.finish == "count":
        return int(count(cell))
    if cell.finish == "histogram":
        return tuple(count(cell, f"b{i}") for i in range(len(cell.edges) - 1))
    n = count(cell)
    if cell.finish == "score":
        total = number(cell, "score") + float(number(cell, "bias")) * n
        if float(number(cell, "mean")):
            return None if n == 0 else float(total) / n
        return float(total) if isinstance(total, float) else total
    if n == 0:
        return None
    s = number(cell, "sum")
    if cell.finish == "mean":
        return float(s) / n
    if n < 2:
        return None
    ss = number(cell, "sumsq")
    if isinstance(s, int) and isinstance(ss, int):  # BFV: exact until the one division
        var = (n * ss - s * s) / (n * (n - 1))
    else:
        var = (float(ss) - float(s) * float(s) / n) / (n - 1)
    var = max(var, 0.0)
    return var if cell.finish == "variance" else math.sqrt(var)
