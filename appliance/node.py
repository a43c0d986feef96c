"""The node: builds the services once from Settings and wires them together.

Every capability reaches the ledger through :meth:`Node.record` ("decide, then
append the decision"); a failed append raises, so the request that caused it
fails rather than acting unrecorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance import metrics
from appliance.errors import NodeError
from appliance.keys import (
    ROLES,
    ApiKeyStore,
    KeyFileError,
    Pseudonymizer,
    load_signer,
    read_secret,
    write_secret,
)
from appliance.masking import MaskingError, MaskingService
from appliance.policy_registry import PolicyRegistry, PublishedVersion
from appliance.settings import Settings
from appliance.store import Store, StoreError, load_demo
from ledger import Ledger, Receipt
from ledger.checkpoint import NoteSigner

log = logging.getLogger("appliance.node")

if TYPE_CHECKING:
    from appliance.anchoring import AnchorService
    from appliance.privacy_service import PrivacyService
    from appliance.proactive import ProactiveService
    from appliance.subjects import SubjectService
    from appliance.witnesses import WitnessService

__all__ = ["InitResult", "Node", "NodeError"]

_FORMAT = "appliance-node/1"
#: The shipped policy library, published as the first version by ``appliance init``.
DEFAULT_POLICIES = Path(__file__).resolve().parent.parent / "config" / "policies"


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    origin: str
    vkey: str
    api_keys: Mapping[str, str]  # role -> token, shown once


class Node:
    """One running appliance node (one per process; gunicorn workers each open one)."""

    def __init__(
        self,
        settings: Settings,
        info: Mapping[str, Any],
        ledger: Ledger,
        keys: ApiKeyStore,
        pseudonyms: Pseudonymizer,
        signer: NoteSigner,
        store: Store,
        masking: MaskingService,
    ) -> None:
        self.settings = settings
        self.info = dict(info)
        self.ledger = ledger
        self.keys = keys
        # Customers are pseudonymised with their own subject keys from the store (crypto-shredding).
        self.pseudonyms = pseudonyms.with_subjects(store.subjects)
        self._signer = signer
        self.store = store
        self.masking = masking
        # Derived once: the declared schema does not change while the node runs.
        self._masking_fields: dict[str, str | None] = {
            "id": None,
            "external_id": None,
            "region": None,
            "created": None,
            **{spec.name: spec.entity for spec in store.schema.fields},
        }
        p = self.paths(settings.data_dir)
        self.policy = PolicyRegistry(p["policy"], p["policy_key"], p["policy_pub"])
        # Search queries and telemetry codes are stored with identifiers replaced by type tags.
        store.event_text_filter = self.mask_event_text
        self._proactive: ProactiveService | None = None
        self._privacy: PrivacyService | None = None
        self._subjects: SubjectService | None = None
        # Tokens of erased subjects are refused by de-tokenisation.
        masking.token_revoked = store.subjects.token_revoked
        self._anchoring: AnchorService | None = None
        self._witnesses: WitnessService | None = None

    # -- layout --------------------------------------------------------------------------
    @staticmethod
    def paths(data_dir: Path) -> dict[str, Path]:
        keys = data_dir / "keys"
        return {
            "info": data_dir / "node.json",
            "ledger": data_dir / "ledger",
            "signing": keys / "signing.key",
            "pseudonym": keys / "pseudonym.key",
            "api_keys": keys / "api_keys.json",
            "vkey": data_dir / "ledger.pub",
            "demo_keys": data_dir / "demo-api-keys.json",
            "field_keys": keys / "field.keys",
            "masking_key": keys / "masking.key",
            "policy_key": keys / "policy-signing.key",
            "policy_pub": data_dir / "policy.pub",
            "policy": data_dir / "policy",
            "state": data_dir / "state",
            "store_db": data_dir / "store.db",
            "webhook_secret": keys / "webhook.secret",
            "models": data_dir / "models",
        }

    @staticmethod
    def store_url(settings: Settings) -> str:
        """``store.url``, or SQLite in the data dir when it is unset (an absolute path: cwd may change)."""
        if settings.store.url:
            return settings.store.url
        return f"sqlite:///{Node.paths(settings.data_dir)['store_db'].resolve()}"

    @staticmethod
    def exists(settings: Settings) -> bool:
        return Node.paths(settings.data_dir)["info"].exists()

    @classmethod
    def init(cls, settings: Settings, *, demo: bool = False) -> InitResult:
        """Create a node: data dir (0700), keys (0600), one API key per role, empty ledger."""
        data_dir = settings.data_dir
        p = cls.paths(data_dir)
        if p["info"].exists():
            raise NodeError(f"{data_dir} already holds a node; nothing was changed (use another data dir)")
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        node_id = secrets.token_hex(8)
        origin = f"appliance.local/{settings.node.name}/{node_id}"
        signer = NoteSigner.generate(origin)
        write_secret(p["signing"], (signer.skey() + "\n").encode("ascii"))
        write_secret(p["pseudonym"], secrets.token_bytes(32))
        write_secret(p["masking_key"], secrets.token_bytes(32))
        write_secret(p["webhook_secret"], secrets.token_bytes(32))
        PolicyRegistry.create_key(p["policy_key"], p["policy_pub"])
        keys = ApiKeyStore.create(p["api_keys"])
        Ledger.create(str(p["ledger"]), origin)
        p["vkey"].write_text(signer.vkey() + "\n", encoding="ascii")
        try:
            Store.create(cls.store_url(settings), p["field_keys"]).close()
        except StoreError as exc:
            raise NodeError(f"the customer store cannot be created: {exc}") from exc
        tokens: dict[str, str] = {}
        issued = []
        for role in ROLES:
            key, token = keys.issue(role, label="created by init")
            tokens[role] = token
            issued.append(key)
        if demo:
            write_secret(p["demo_keys"], (json.dumps(tokens, indent=1) + "\n").encode())
        info = {
            "format": _FORMAT,
            "node_id": node_id,
            "origin": origin,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "demo": demo,
        }
        with cls.open(settings, _info=info) as node:
            node.record(
                "system:init",
                "node.initialised",
                details={"node_id": node_id, "origin": origin, "vkey": signer.vkey(), "demo": demo},
            )
            for key in issued:
                node.record("system:init", "apikey.created", details={"key_id": key.key_id, "role": key.role})
            node._record_profiles()
            if DEFAULT_POLICIES.is_dir():
                node.publish_policy(DEFAULT_POLICIES, actor="system:init")
            if demo:
                report = load_demo(node.store)
                node.record("system:init", "store.demo_loaded", details=report.as_dict())
                node._train_demo_models()
                node._demo_privacy()
            node.ledger.sign_checkpoint()
        # node.json last: its presence means "initialised completely".
        tmp = p["info"].with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, p["info"])
        return InitResult(data_dir, origin, signer.vkey(), tokens)

    @classmethod
    def open(
        cls, settings: Settings, *, readonly: bool = False, _info: Mapping[str, Any] | None = None
    ) -> Node:
        """Open an initialised node; errors name the missing piece and the command that fixes it."""
        p = cls.paths(settings.data_dir)
        info = _info
        if info is None:
            try:
                info = json.loads(p["info"].read_text(encoding="utf-8"))
            except FileNotFoundError as exc:
                raise NodeError(f"no node in {settings.data_dir}; run `appliance init` first") from exc
            except (OSError, ValueError) as exc:
                raise NodeError(f"{p['info']} is unreadable ({exc}); restore it from a backup") from exc
        if info.get("format") != _FORMAT:
            raise NodeError(f"{p['info']} is not an {_FORMAT} file")
        try:
            signer = load_signer(p["signing"], info["origin"])
            pseudonyms = Pseudonymizer(read_secret(p["pseudonym"]))
            masking_key = read_secret(p["masking_key"])
        except KeyFileError as exc:
            raise NodeError(str(exc)) from exc
        m = settings.masking
        try:
            masking = MaskingService.build(
                masking_key,
                tenant=m.tenant,
                profiles=m.profiles,
                default_region=m.default_region,
                max_text_chars=m.max_text_chars,
            )
        except MaskingError as exc:
            raise NodeError(f"masking cannot start: {exc}") from exc
        try:
            store = Store.open(cls.store_url(settings), p["field_keys"])
        except StoreError as exc:
            raise NodeError(f"the customer store cannot be opened: {exc}") from exc
        try:
            ledger = Ledger.open(
                str(p["ledger"]),
                signer=signer,
                readonly=readonly,
                max_segment_bytes=settings.ledger.max_segment_bytes,
            )
        except BaseException:
            store.close()
            raise
        node = cls(settings, info, ledger, ApiKeyStore(p["api_keys"]), pseudonyms, signer, store, masking)
        if not readonly and _info is None:  # init records them itself, after node.initialised
            try:
                node._record_profiles()
            except BaseException:
                node.close()
                raise
            node.subjects.recover_quietly()  # an erasure a crash interrupted: finish or undo it
        return node

    def _record_profiles(self) -> None:
        """Record each masking profile version once, the first time any process of this node loads it.

        A marker file created with O_EXCL makes "once" hold across gunicorn workers starting together;
        the marker is removed again if the entry cannot be appended, so the next start retries.
        """
        version = self.masking.version
        state = self.paths(self.settings.data_dir)["state"]
        state.mkdir(mode=0o700, exist_ok=True)
        marker = state / f"masking-profiles-{version}"
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        os.close(fd)
        try:
            self.record(
                "system:node",
                "masking.profiles_loaded",
                details={
                    "version": version,
                    "sha256": hashlib.sha256(self.masking.profiles.canonical()).hexdigest(),
                    "source": str(self.settings.masking.profiles or "config/masking/profiles.yaml"),
                },
            )
        except BaseException:
            marker.unlink(missing_ok=True)
            raise

    def publish_policy(self, source: Path, *, actor: str, request_id: str | None = None) -> PublishedVersion:
        """Validate, sign and store a library directory, make it live, and record ``policy.published``."""
        version, new = self.policy.publish(source)
        self.record(
            actor,
            "policy.published",
            details={**version.as_dict(), "new": new},
            request_id=request_id,
        )
        return version

    def rollback_policy(self, vid: str, *, actor: str, request_id: str | None = None) -> PublishedVersion:
        previous = self.policy.live_id()
        version = self.policy.rollback(vid)
        self.record(
            actor,
            "policy.rolled_back",
            details={**version.as_dict(), "previous": previous},
            request_id=request_id,
        )
        return version

    def record_reply_check(
        self,
        actor: str,
        text: str,
        decision: Any,
        *,
        region: str,
        industry: str,
        channel: str,
        request_id: str | None = None,
    ) -> Receipt:
        """Record a reply decision: rule ids and version, and a keyed digest of the text, never the text."""
        return self.record(
            actor,
            "reply.checked",
            details={
                "decision": decision.decision,
                "rules": sorted({f.rule for f in decision.findings}),
                "policy_version": decision.policy_version,
                "region": region,
                "industry": industry,
                "channel": channel,
                "text": self.pseudonyms.pseudonym("text", text),
            },
            request_id=request_id,
        )

    def mask_event_text(self, text: str) -> str:
        """``<CN_MOBILE>`` for every identifier in an event's text: keywords survive, values do not."""
        findings = sorted(self.masking.analyze(text), key=lambda f: f.start)
        out, last = [], 0
        for f in findings:
            if f.start < last:
                continue
            out.append(text[last : f.start])
            out.append(f"<{f.type}>")
            last = f.end
        out.append(text[last:])
        return "".join(out)[:256]

    @property
    def proactive(self) -> ProactiveService:
        """Playbooks, models and delivery; built on first use (playbooks load from disk then)."""
        if self._proactive is None:
            from appliance.proactive import ProactiveService

            p = self.paths(self.settings.data_dir)
            self._proactive = ProactiveService.build(self, self.settings.proactive.playbooks, p["models"])
        return self._proactive

    @property
    def privacy(self) -> PrivacyService:
        """Keys, encrypted columns and privacy queries; built on first use (tenseal loads then)."""
        if self._privacy is None:
            from appliance.privacy_service import PrivacyService

            self._privacy = PrivacyService(self)
        return self._privacy

    @property
    def subjects(self) -> SubjectService:
        """Data subjects: pseudonyms, and erasure by crypto-shredding (``appliance subject erase``)."""
        if self._subjects is None:
            from appliance.subjects import SubjectService

            self._subjects = SubjectService(self)
        return self._subjects

    @property
    def anchoring(self) -> AnchorService:
        """Anchoring of signed checkpoints (``anchor`` settings); the chain is contacted on first use."""
        if self._anchoring is None:
            from appliance.anchoring import AnchorService

            self._anchoring = AnchorService(self)
        return self._anchoring

    @property
    def witnesses(self) -> WitnessService:
        """The witnesses cosigning this node's checkpoints (``appliance witness add``); used on demand."""
        if self._witnesses is None:
            from appliance.witnesses import WitnessService

            self._witnesses = WitnessService(self)
        return self._witnesses

    @property
    def webhook_secret(self) -> bytes:
        """The key signing webhooks to marketing ops (created on first use for nodes older than it)."""
        path = self.paths(self.settings.data_dir)["webhook_secret"]
        if not path.exists():
            try:
                write_secret(path, secrets.token_bytes(32))
            except FileExistsError:
                pass
        return read_secret(path)

    def masking_fields(self) -> dict[str, str | None]:
        """How a stored customer record is masked: declared fields by entity type, core columns shown."""
        return dict(self._masking_fields)

    # -- services -------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return str(self.info["origin"])

    @property
    def vkey(self) -> str:
        return self._signer.vkey()

    def record(
        self,
        actor: str,
        action: str,
        subject: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Receipt:
        """Append one entry durably; raises (and the caller's request fails) if it cannot."""
        started = time.perf_counter()
        try:
            receipt = self.ledger.append(actor, action, subject, details, request_id)
        except Exception:
            metrics.append_failed()
            raise
        metrics.entry_appended(actor, action, details, time.perf_counter() - started)
        return receipt

    def _train_demo_models(self) -> None:
        """A demo node's model playbooks get a live model trained on the demo history, so their
        scheduled runs work from the first day (a real node trains once it has history of its own)."""
        from predictors.errors import PredictorError

        for name, pb in sorted(self.proactive.playbooks.items()):
            if pb.model is None or not pb.enabled:
                continue
            try:
                self.proactive.train_and_publish(name, actor="system:init", threads=2)
            except PredictorError as exc:
                log.warning("demo: playbook %s has no model yet: %s", name, exc)

    def _demo_privacy(self) -> None:
        """A demo node gets HE keys and encrypted columns, so analysts can query from the start."""
        privacy = self.privacy
        privacy.keygen(actor="system:init")
        privacy.encrypt("customers", "balance", actor="system:init")
        privacy.encrypt(
            "customers", "monthly_spend", buckets=(0, 500, 1000, 2000, 5000, 1e6), actor="system:init"
        )
        privacy.encrypt("customers", "marketing_consent", kind="flag", actor="system:init")

    @staticmethod
    def read_demo_keys(data_dir: Path) -> dict[str, str]:
        """Role → token of a demo node (``init --demo``), or {}; a secret like any other."""
        path = Node.paths(data_dir)["demo_keys"]
        if not path.exists():
            return {}
        return dict(json.loads(read_secret(path)))

    def close(self) -> None:
        try:
            if self._proactive is not None:
                self._proactive.close()
            self.ledger.close()
        finally:
            self.store.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
