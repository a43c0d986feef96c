"""Privacy-computing queries: aggregates and model scores over homomorphically encrypted columns.

The custodian's ``KeyRing`` holds CKKS, BFV and Paillier keys; the node encrypts columns
(``encrypt_column``, ``encrypt_paillier_column``) with the public contexts; the ``QueryEngine``, holding
only public contexts, computes a ``QueryPlan`` into an ``EncryptedResult``; the ``Custodian`` decrypts and
finishes it into a ``RawResult``, which the disclosure guards judge before anything is released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.privacy.columns import (
        EncryptedColumn,
        Kind,
        PaillierColumn,
        Segment,
        VisibleValue,
        decode_paillier,
        encrypt_column,
        encrypt_paillier_column,
        load_column,
    )
    from appliance.privacy.custodian import Custodian, RawGroup, RawResult, RawValue, group_label
    from appliance.privacy.engine import (
        Cell,
        EncryptedGroup,
        EncryptedRecord,
        EncryptedResult,
        EncryptedTerm,
        Finish,
        QueryEngine,
        WeightVector,
        plan_digest,
    )
    from appliance.privacy.errors import (
        BudgetExhausted,
        CiphertextInvalid,
        DisclosureRefused,
        KeyUnavailable,
        PrivacyError,
        QueryInvalid,
        QueryUnsupported,
        ResultUnsafe,
    )
    from appliance.privacy.keys import (
        PRODUCTION_PARAMETERS,
        BFVParameters,
        CKKSParameters,
        HEContext,
        HEParameters,
        KeyRing,
        PublicContexts,
        Scheme,
        SecretContexts,
    )
    from appliance.privacy.plan import AGGREGATES, Aggregate, Lookup, Noise, Predicate, QueryPlan

__all__ = [
    "AGGREGATES",
    "PRODUCTION_PARAMETERS",
    "Aggregate",
    "BFVParameters",
    "BudgetExhausted",
    "CKKSParameters",
    "Cell",
    "CiphertextInvalid",
    "Custodian",
    "DisclosureRefused",
    "EncryptedColumn",
    "EncryptedGroup",
    "EncryptedRecord",
    "EncryptedResult",
    "EncryptedTerm",
    "Finish",
    "HEContext",
    "HEParameters",
    "KeyRing",
    "KeyUnavailable",
    "Kind",
    "Lookup",
    "Noise",
    "PaillierColumn",
    "Predicate",
    "PrivacyError",
    "PublicContexts",
    "QueryEngine",
    "QueryInvalid",
    "QueryPlan",
    "QueryUnsupported",
    "RawGroup",
    "RawResult",
    "RawValue",
    "ResultUnsafe",
    "Scheme",
    "SecretContexts",
    "Segment",
    "VisibleValue",
    "WeightVector",
    "decode_paillier",
    "encrypt_column",
    "encrypt_paillier_column",
    "group_label",
    "load_column",
    "plan_digest",
]

# The submodules load on first use (PEP 562): importing ``appliance.privacy.errors`` (the HTTP layer
# maps its errors) must not pull tenseal, phe and pandas into every server worker at start-up.
_HOME = {
    "AGGREGATES": "appliance.privacy.plan",
    "Aggregate": "appliance.privacy.plan",
    "BFVParameters": "appliance.privacy.keys",
    "BudgetExhausted": "appliance.privacy.errors",
    "CKKSParameters": "appliance.privacy.keys",
    "Cell": "appliance.privacy.engine",
    "CiphertextInvalid": "appliance.privacy.errors",
    "Custodian": "appliance.privacy.custodian",
    "DisclosureRefused": "appliance.privacy.errors",
    "EncryptedColumn": "appliance.privacy.columns",
    "EncryptedGroup": "appliance.privacy.engine",
    "EncryptedRecord": "appliance.privacy.engine",
    "EncryptedResult": "appliance.privacy.engine",
    "EncryptedTerm": "appliance.privacy.engine",
    "Finish": "appliance.privacy.engine",
    "HEContext": "appliance.privacy.keys",
    "HEParameters": "appliance.privacy.keys",
    "KeyRing": "appliance.privacy.keys",
    "KeyUnavailable": "appliance.privacy.errors",
    "Kind": "appliance.privacy.columns",
    "Lookup": "appliance.privacy.plan",
    "Noise": "appliance.privacy.plan",
    "PRODUCTION_PARAMETERS": "appliance.privacy.keys",
    "PaillierColumn": "appliance.privacy.columns",
    "Predicate": "appliance.privacy.plan",
    "PrivacyError": "appliance.privacy.errors",
    "PublicContexts": "appliance.privacy.keys",
    "QueryEngine": "appliance.privacy.engine",
    "QueryInvalid": "appliance.privacy.errors",
    "QueryPlan": "appliance.privacy.plan",
    "QueryUnsupported": "appliance.privacy.errors",
    "RawGroup": "appliance.privacy.custodian",
    "RawResult": "appliance.privacy.custodian",
    "RawValue": "appliance.privacy.custodian",
    "ResultUnsafe": "appliance.privacy.errors",
    "Scheme": "appliance.privacy.keys",
    "SecretContexts": "appliance.privacy.keys",
    "Segment": "appliance.privacy.columns",
    "VisibleValue": "appliance.privacy.columns",
    "WeightVector": "appliance.privacy.engine",
    "decode_paillier": "appliance.privacy.columns",
    "encrypt_column": "appliance.privacy.columns",
    "encrypt_paillier_column": "appliance.privacy.columns",
    "group_label": "appliance.privacy.custodian",
    "load_column": "appliance.privacy.columns",
    "plan_digest": "appliance.privacy.engine",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'appliance.privacy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
