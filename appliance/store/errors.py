"""Errors of the customer data store: one root, a few specific ones; no HTTP statuses here.

``appliance/server/errors.py`` maps them to problem+json; the CLI maps them to exit
code 2. Every message says what was wrong and what to do about it. Errors that
involve a secret (a field key, a ciphertext) are deliberately opaque.
"""

from __future__ import annotations

__all__ = [
    "FieldKeyError",
    "ImportRejected",
    "RecordInvalid",
    "SchemaError",
    "StoreError",
    "StoreUnavailable",
    "UnknownCustomer",
    "UnknownSubject",
]


class StoreError(Exception):
    """Root of the errors the store raises."""


class SchemaError(StoreError):
    """The declared customer schema (YAML) is unusable; the message names the field and the fix."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is not a store this version can use."""


class UnknownCustomer(StoreError):
    """No customer with that id (or external id)."""

    def __init__(self, ref: int | str) -> None:
        self.ref = ref
        super().__init__(f"no customer {ref!r} in the store; check the id (or import the customer first)")


class UnknownSubject(UnknownCustomer):
    """No customer with that id to pseudonymise or erase: it never existed or was already erased.

    The two cannot be told apart on purpose: after an erasure nothing in the store remembers the id.
    """

    def __init__(self, ref: int | str) -> None:
        super().__init__(ref)
        self.args = (
            f"no customer {ref!r} in the store: it never existed or was already erased; nothing was written",
        )


class FieldKeyError(StoreError):
    """A field key is missing or a protected value cannot be opened.

    One opaque message for every decryption failure (wrong key, altered or moved
    ciphertext) so that an attacker learns nothing from which one it was.
    """


class RecordInvalid(StoreError):
    """One record breaks the declared schema: which record, which field, why.

    ``index`` is the record's 0-based position in the call that was refused
    (None when validating one record on its own); nothing of that call was written.
    """

    def __init__(self, field: str | None, reason: str, index: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.index = index
        where = f"record {index}: " if index is not None else ""
        what = f"field {field}: " if field else ""
        super().__init__(f"{where}{what}{reason}; nothing was written")

    def at(self, index: int) -> RecordInvalid:
        """The same problem, placed at position ``index`` of a batch."""
        return RecordInvalid(self.field, self.reason, index)


class ImportRejected(StoreError):
    """A row of an import file is bad (or its batch could not be written).

    ``line`` is 1-based: the physical line for CSV (the header is line 1) and JSONL,
    the row number for Parquet (``unit`` says which). ``written`` counts the rows
    committed before the failure: 0 unless the database failed mid-import, because
    the whole file is checked before the first write.
    """

    def __init__(
        self,
        source: str,
        line: int,
        field: str | None,
        reason: str,
        *,
        unit: str = "line",
        written: int = 0,
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.reason = reason
        self.unit = unit
        self.written = written
        what = f"field {field}: " if field else ""
        tail = "nothing from this batch was written"
        if written:
            tail += f"; the {written} rows before it were imported (re-import the rest from {unit} {line})"
        super().__init__(f"{source} {unit} {line}: {what}{reason}; {tail}")
