"""Privacy-computing queries: aggregates and model scores over homomorphically encrypted columns.

The custodian's ``KeyRing`` holds CKKS, BFV and Paillier keys; the node encrypts columns
(``encrypt_column``, ``encrypt_paillier_column``) with the public contexts; the ``QueryEngine``, holding
only public contexts, computes a ``QueryPlan`` into an ``EncryptedResult``; the ``Custodian`` decrypts and
finishes it into a ``RawResult``, which the disclosure guards judge before anything is released.
"""

from __future__ import annotations

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
