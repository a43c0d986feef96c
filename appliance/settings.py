"""Typed settings: built-in defaults, then ``config/appliance.yaml``-style files, then env.

Precedence, lowest first: the defaults below (``config/appliance.yaml`` documents
them and a test keeps the two equal), a user file (``--config FILE`` or
``APPLIANCE_CONFIG``), then ``APPLIANCE_*`` environment variables, nested with
``__`` (``APPLIANCE_SERVER__PORT=9090``). Everything is validated at start-up;
a bad value fails with a message that names the key, where it came from and
how to fix it, before anything is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from appliance.errors import SettingsError

__all__ = ["DEFAULTS_FILE", "Settings", "SettingsError", "load_settings"]

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "appliance.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSettings(_Section):
    data_dir: Path = Field(Path("var/node"), description="where keys, ledger and state live")
    name: str = Field(
        "appliance",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="node name, part of the ledger origin",
    )


class RoleRateLimit(_Section):
    per_second: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=10_000_000)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(2, ge=1, le=64)
    threads: int = Field(8, ge=1, le=256)
    timeout: int = Field(30, ge=1, le=3600)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    rate_limit_per_second: float = Field(
        1000.0, ge=0, le=1_000_000, description="requests per second per API key and worker; 0: no limit"
    )
    rate_limit_burst: int = Field(2000, ge=1, le=10_000_000, description="requests one key may send at once")
    rate_limit_roles: dict[str, RoleRateLimit] = Field(
        {}, description="per-role overrides, e.g. {analyst: {per_second: 5, burst: 20}}"
    )
    failed_auth_per_minute: float = Field(
        30.0, ge=0, le=1_000_000, description="failed authentications per source address and worker; 0: off"
    )
    failed_auth_burst: int = Field(30, ge=1, le=1_000_000)
    tls_cert_file: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS only")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file (mode 0600)")
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle: require client certificates signed by it (mutual TLS)"
    )
    control_socket: Path | None = Field(
        None,
        description="gunicorn's control socket (gunicornc: worker status, reload), mode 0600; unset: none",
    )

    @field_validator("control_socket")
    @classmethod
    def _socket_path(cls, v: Path | None) -> Path | None:
        # The kernel's limit for a Unix socket path (sun_path) is 108 bytes with the terminating NUL.
        if v is not None and len(os.fsencode(v.expanduser().resolve())) > 107:
            raise ValueError(f"{v} is longer than a Unix socket path may be (107 bytes); use a shorter one")
        return v

    @field_validator("rate_limit_roles")
    @classmethod
    def _known_roles(cls, v: dict[str, RoleRateLimit]) -> dict[str, RoleRateLimit]:
        from appliance.keys import ROLES

        unknown = sorted(set(v) - set(ROLES))
        if unknown:
            raise ValueError(f"{', '.join(unknown)} are not roles; use some of {', '.join(ROLES)}")
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file (mutual TLS is TLS)")
        return self


class LedgerSettings(_Section):
    max_segment_bytes: int = Field(64 * 1_048_576, ge=65_536)
    checkpoint_interval_seconds: int = Field(60, ge=1, le=86_400)


class StoreSettings(_Section):
    url: str | None = Field(
        None, description="database URL; unset means sqlite:///<data_dir>/store.db (postgresql+psycopg://...)"
    )
    import_batch_rows: int = Field(500, ge=1, le=100_000)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class MetricsSettings(_Section):
    token_file: Path | None = Field(
        None,
        description="0600 file holding the bearer token Prometheus scrapes /metrics with (admin keys work "
        "too); unset: <data_dir>/keys/metrics.token once `appliance metrics token` has made it",
    )
    multiprocess_dir: Path | None = Field(
        None,
        description="where gunicorn workers and the scheduler keep their samples (emptied by `appliance "
        "serve`); unset: a new temporary directory per run",
    )
    state_cache_seconds: float = Field(
        10.0, ge=0, le=3600, description="ledger size and trigger counts are read at most this often"
    )


class MaskingSettings(_Section):
    profiles: Path | None = Field(
        None, description="masking profiles YAML; default: config/masking/profiles.yaml shipped with the node"
    )
    tenant: str = Field(
        "default",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="keys pseudonyms and tokens per tenant: the same value in two tenants never joins",
    )
    default_region: str = Field(
        "default", min_length=1, max_length=32, description="region used when a request names none"
    )
    max_text_chars: int = Field(
        100_000, ge=1_000, le=10_000_000, description="longest text one mask call accepts (code points)"
    )


class ProactiveSettings(_Section):
    playbooks: Path | None = Field(
        None, description="directory of playbook YAML files; default: config/playbooks shipped with the node"
    )
    webhook_url: str | None = Field(
        None, description="marketing ops' receiver (http(s)://...); unset: triggers wait for the pull API"
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=120)
    webhook_max_attempts: int = Field(8, ge=1, le=100)
    webhook_concurrency: int = Field(16, ge=1, le=256)
    webhook_backoff_seconds: float = Field(
        2.0, ge=0, le=3600, description="first retry delay, doubled per try"
    )
    webhook_backoff_cap_seconds: float = Field(3600.0, ge=0, le=86_400)
    delivery_interval_seconds: int = Field(10, ge=1, le=3600)
    delivery_batch: int = Field(1000, ge=1, le=100_000)
    misfire_grace_seconds: int = Field(300, ge=1, le=86_400, description="a run late by more is skipped")
    timezone: str = Field("UTC", description="time zone of the playbooks' cron schedules")
    job_history: int = Field(1000, ge=10, le=1_000_000, description="runs kept per job in the history")


class PrivacySettings(_Section):
    visible_attributes: list[str] = Field(
        ["region", "segment", "plan", "product"],
        description="categorical attributes the query engine may see: ciphertexts are segmented by them, "
        "so WHERE and GROUP BY on them need no encrypted masks; predicates on anything else are refused",
    )
    segment_by: list[str] = Field(
        ["region", "segment"],
        description="default attributes an encrypted column is segmented by (a subset of "
        "visible_attributes); each combination costs at least one ciphertext",
    )
    min_group_size: int = Field(10, ge=1, le=1_000_000, description="smaller groups are suppressed")
    decimals: int = Field(2, ge=0, le=12, description="released values are rounded to this many decimals")
    max_epsilon_per_query: float = Field(1.0, gt=0, le=100)
    max_delta_per_query: float = Field(1e-5, ge=0, lt=1)
    budget_epsilon: float = Field(10.0, gt=0, description="an analyst's total ε unless an admin grants more")
    budget_delta: float = Field(1e-4, ge=0, lt=1)
    auto_release: list[Literal["count", "sum", "mean", "variance", "stddev", "histogram", "dot", "score"]] = (
        Field(
            ["count", "sum", "mean", "variance", "stddev", "histogram"],
            description="aggregates the custodian service releases without an approval call when the guards "
            "pass; a query using any other (dot products, model scores) waits for POST .../approve",
        )
    )
    passphrase_file: Path | None = Field(
        None,
        description="file (mode 0600) holding the custodian's passphrase for the HE secret keys; unset: the "
        "secret keys are stored unencrypted with mode 0600",
    )


class EthereumAnchorSettings(_Section):
    rpc_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="JSON-RPC endpoint (http(s)://host:port/...); unset: the one `appliance anchor deploy` "
        "recorded in <data_dir>/anchor.json",
    )
    key_file: Path | None = Field(
        None,
        description="0600 file holding the account's private key (hex); unset: <data_dir>/keys/"
        "anchor-ethereum.key, which `appliance anchor deploy` installs",
    )
    contract: str | None = Field(
        None,
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="anchor contract address; unset: the one `appliance anchor deploy` recorded",
    )
    chain_id: int | None = Field(
        None, ge=1, description="refuse to anchor unless the endpoint serves this chain"
    )
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="limit on one RPC request")
    receipt_timeout_seconds: float = Field(
        120.0, gt=0, le=3600, description="how long one anchoring waits for its transaction to be mined"
    )


class FabricAnchorSettings(_Section):
    endpoint: str | None = Field(None, description="Fabric Gateway peer, host:port")
    channel: str | None = None
    chaincode: str | None = Field(None, description="name of the anchor chaincode on the channel")
    msp_id: str | None = Field(None, description="the organisation's MSP id, e.g. Org1MSP")
    cert_file: Path | None = Field(None, description="PEM X.509 certificate of the node's identity")
    key_file: Path | None = Field(None, description="PEM P-256 private key of that identity (mode 0600)")
    tls_ca_file: Path | None = Field(None, description="PEM CA of the peer's TLS certificate; unset: no TLS")
    tls_client_cert_file: Path | None = Field(
        None, description="PEM TLS client certificate, for peers that require client auth (mutual TLS)"
    )
    tls_client_key_file: Path | None = Field(None, description="its PEM private key (mode 0600)")
    tls_server_name: str | None = Field(
        None, description="host name the peer's TLS certificate names, when the endpoint uses another"
    )
    timeout_seconds: float = Field(30.0, gt=0, le=600)


class AnchorSettings(_Section):
    chain: Literal["none", "ethereum", "fabric"] = Field(
        "none", description="where signed checkpoints are anchored; none: nowhere (no ledger.anchor job)"
    )
    every_minutes: int = Field(
        60, ge=0, le=10_080, description="anchor this often when the log grew; 0: only by every_entries"
    )
    every_entries: int = Field(
        0, ge=0, description="also anchor once this many entries arrived since the last anchoring; 0: off"
    )
    check_seconds: int = Field(
        60, ge=1, le=3600, description="how often the ledger.anchor job looks (confirmations, due anchorings)"
    )
    confirmations: int = Field(12, ge=1, le=10_000, description="blocks on top before an anchor is confirmed")
    retry_backoff_seconds: float = Field(
        30.0, gt=0, le=86_400, description="first retry delay, doubled per try"
    )
    retry_backoff_cap_seconds: float = Field(3600.0, gt=0, le=86_400)
    ethereum: EthereumAnchorSettings = EthereumAnchorSettings()
    fabric: FabricAnchorSettings = FabricAnchorSettings()

    @model_validator(mode="after")
    def _some_schedule(self) -> AnchorSettings:
        if self.every_minutes == 0 and self.every_entries == 0:
            raise ValueError("every_minutes and every_entries are both 0, so nothing would ever be anchored")
        return self


class WitnessSettings(_Section):
    check_seconds: int = Field(
        60, ge=5, le=86_400, description="how often the ledger.witness job pushes checkpoints to witnesses"
    )
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="limit on one request to a witness")


class ConsoleSettings(_Section):
    session_minutes: int = Field(
        30, ge=1, le=1440, description="a console session ends after this many minutes without a request"
    )
    session_max_hours: int = Field(
        12, ge=1, le=168, description="and this many hours after sign-in however active it is"
    )
    max_form_bytes: int = Field(
        65_536, ge=1024, le=16 * 1_048_576, description="larger console form posts are refused with 413"
    )
    failed_signins_recorded_per_minute: int = Field(
        20,
        ge=0,
        le=10_000,
        description="failed sign-ins recorded in the ledger per minute and worker; all of them are logged",
    )


class Settings(BaseSettings):
    """All settings of one node."""

    model_config = SettingsConfigDict(
        env_prefix="APPLIANCE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    node: NodeSettings = NodeSettings()
    server: ServerSettings = ServerSettings()
    ledger: LedgerSettings = LedgerSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    masking: MaskingSettings = MaskingSettings()
    proactive: ProactiveSettings = ProactiveSettings()
    privacy: PrivacySettings = PrivacySettings()
    anchor: AnchorSettings = AnchorSettings()
    witness: WitnessSettings = WitnessSettings()
    console: ConsoleSettings = ConsoleSettings()
    metrics: MetricsSettings = MetricsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Env beats files (passed as init kwargs); no dotenv, no secrets dir.
        return env_settings, init_settings

    @property
    def data_dir(self) -> Path:
        return self.node.data_dir


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"settings file {path} cannot be read ({exc.strerror}); fix the path") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"settings file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of sections (node:, server:, ...)")
    return data


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Defaults ← defaults file ← user file ← overrides (tests) ← ``APPLIANCE_*`` env."""
    env = os.environ
    data: dict[str, Any] = {}
    if DEFAULTS_FILE.exists():
        data = _read_yaml(DEFAULTS_FILE)
    user = config or env.get("APPLIANCE_CONFIG")
    if user:
        data = _merge(data, _read_yaml(Path(user)))
    data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, env, user)) from None


def _explain(exc: ValidationError, env: Mapping[str, str], user: str | os.PathLike[str] | None) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        var = "APPLIANCE_" + "__".join(p.upper() for p in loc)
        if var in env:
            source = f"environment variable {var}={env[var]!r}"
        elif user:
            source = f"{user} or {DEFAULTS_FILE.name}"
        else:
            source = str(DEFAULTS_FILE.name)
        if err["type"] == "extra_forbidden":
            fix = (
                "remove it or check its spelling "
                "(sections: node, server, ledger, logging, masking, store, proactive, privacy, anchor)"
            )
            lines.append(f"setting {key} (from {source}) is not a known setting: {fix}")
        else:
            lines.append(f"setting {key} (from {source}): {err['msg']}; fix the value or set {var}")
    return "invalid settings:\n  " + "\n  ".join(lines)
