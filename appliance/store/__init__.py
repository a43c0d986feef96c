"""The customer data store: declared schema, sealed sensitive fields, events, transcripts, imports.

SQLAlchemy Core over SQLite (embedded default) or PostgreSQL (production); Alembic
migrations run at open. See docs/store.md.
"""

from __future__ import annotations

from appliance.store.crypto import FieldCipher, FieldKey, Keyring
from appliance.store.demo import DemoReport, load_demo
from appliance.store.errors import (
    FieldKeyError,
    ImportRejected,
    RecordInvalid,
    SchemaError,
    StoreError,
    StoreUnavailable,
    UnknownCustomer,
    UnknownSubject,
)
from appliance.store.importer import ImportReport, import_file
from appliance.store.schema import SCHEMA_FILE, CustomerSchema, FieldSpec
from appliance.store.store import Event, Message, RotationReport, Store, Transcript

__all__ = [
    "SCHEMA_FILE",
    "CustomerSchema",
    "DemoReport",
    "Event",
    "FieldCipher",
    "FieldKey",
    "FieldKeyError",
    "FieldSpec",
    "ImportRejected",
    "ImportReport",
    "Keyring",
    "Message",
    "RecordInvalid",
    "RotationReport",
    "SchemaError",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Transcript",
    "UnknownCustomer",
    "UnknownSubject",
    "import_file",
    "load_demo",
]
