"""Masking profiles: which operator each role sees each entity type through, per region.

A profile file (``config/masking/profiles.yaml``) is untrusted input until validated: every entity
type, operator and parameter is checked at load and every error names the file, the profile and the
key, so a typo stops the node at start instead of silently masking nothing. What was loaded has a
version (the first 16 hex digits of SHA-256 over its canonical JSON); the node records it in the
ledger, so "which rules masked this transcript" is provable, and any change to the rules (not to
comments or layout) is a new version.

Regions: a profile for a role and a specific region (``EU``) overrides only the entity types it
lists, on top of the role's ``default``-region profile, which every role must have. ``region_groups``
let a country resolve to a group's profile (``DE`` → ``EU``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from appliance.keys import ROLES
from appliance.masking.entities import ENTITY_TYPES
from appliance.masking.errors import ProfileError, UnknownEntityType, UnknownProfile
from appliance.masking.operators import OPERATORS, Operator, create_operator

__all__ = ["DEFAULT_REGION", "Profile", "ProfileSet"]

DEFAULT_REGION = "default"
_REGION = re.compile(r"[A-Z][A-Z0-9_-]{1,15}")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,31}")


# --- the YAML input (pydantic: untrusted until validated) -------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorSpec(_Model):
    operator: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # ``US_SSN: tag`` is short for ``US_SSN: {operator: tag}``.
        return {"operator": data} if isinstance(data, str) else data


class ProfileModel(_Model):
    role: str
    region: str = DEFAULT_REGION
    description: str = ""
    default: OperatorSpec | None = None
    entities: dict[str, OperatorSpec] = Field(default_factory=dict)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if v != DEFAULT_REGION and not _REGION.fullmatch(v):
            raise ValueError(f"region {v!r} must be 'default' or an upper-case code such as CN, US, EU")
        return v


class ProfilesFile(_Model):
    aliases: dict[str, str] = Field(default_factory=dict)
    detokenize_roles: list[str] = Field(default_factory=list)
    region_groups: dict[str, list[str]] = Field(default_factory=dict)
    profiles: list[ProfileModel]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML would silently keep the last one."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}; keep one",
                key_node.start_mark,
            )
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- the loaded profiles (frozen values) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Profile:
    """One role's view in one region, with its operators built once (the hot path only looks them up)."""

    role: str
    region: str
    default: Operator[Any]
    operators: Mapping[str, Operator[Any]]  # every entity type the profile lists (after region merge)
    description: str = ""
    source: str = ""
    needs_subject: bool = field(init=False)

    def __post_init__(self) -> None:
        ops = [self.default, *self.operators.values()]
        object.__setattr__(self, "needs_subject", any(op.needs_subject for op in ops))

    @property
    def key(self) -> str:
        return f"{self.role}/{self.region}"

    def operator_for(self, entity_type: str) -> Operator[Any]:
        """The operator for ``entity_type``; types the profile does not list get its default."""
        return self.operators.get(entity_type, self.default)

    def describe(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "region": self.region,
            "default": self.default.describe(),
            "entities": {t: op.describe() for t, op in sorted(self.operators.items())},
        }


def _fail(source: str, where: str, message: str) -> ProfileError:
    return ProfileError(f"{source}: {where}: {message}")


def _profile_name(raw: Any, index: int) -> str:
    if isinstance(raw, Mapping):
        return f"profile {raw.get('role', '?')}/{raw.get('region', DEFAULT_REGION)}"
    return f"profiles[{index}]"


def _pydantic_error(source: str, data: Any, exc: ValidationError) -> ProfileError:
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "profiles" and isinstance(loc[1], int):
            raw = data.get("profiles", []) if isinstance(data, Mapping) else []
            where = _profile_name(raw[loc[1]] if loc[1] < len(raw) else None, loc[1]) + ", "
            loc = loc[2:]
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}{key}: unknown key; remove it or check its spelling")
        elif err["type"] == "missing":
            problems.append(f"{where}{key}: required key is missing; add it")
        elif err["type"] == "string_type" and isinstance(err.get("input"), bool):
            problems.append(
                f"{where}{key}: {err['msg']}, got {err['input']} (YAML reads unquoted yes/no/on/off as "
                'booleans: quote it, e.g. "NO")'
            )
        else:
            problems.append(f"{where}{key}: {err['msg']}")
    return ProfileError(f"{source}: " + "; ".join(problems))


def _load_yaml(path: Path) -> ProfilesFile:
    source = str(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ProfileError(
            f"{source}: cannot read the masking profile file ({exc.strerror}); check the path"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{source}: not UTF-8 text ({exc.reason}); save the file as UTF-8") from exc
    loader = _UniqueKeyLoader(text)
    loader.name = source  # YAML errors then point at the file, not "<unicode string>"
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: expected a mapping with a `profiles:` list at the top level")
    try:
        return ProfilesFile.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(source, data, exc) from exc


def _check_type(source: str, where: str, entity_type: str) -> None:
    if entity_type not in ENTITY_TYPES:
        close = difflib.get_close_matches(entity_type, sorted(ENTITY_TYPES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UnknownEntityType(
            f"{source}: {where}: unknown entity type {entity_type!r}{hint}; "
            f"use one of: {', '.join(sorted(ENTITY_TYPES))}"
        )


def _build_operator(source: str, where: str, spec: OperatorSpec) -> Operator[Any]:
    if spec.operator not in OPERATORS:
        close = difflib.get_close_matches(spec.operator, sorted(OPERATORS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _fail(
            source,
            where,
            f"unknown operator {spec.operator!r}{hint}; use one of: {', '.join(sorted(OPERATORS))}",
        )
    try:
        return create_operator(spec.operator, spec.params)
    except ProfileError as exc:
        raise _fail(source, where, str(exc)) from exc


@dataclass(frozen=True, slots=True)
class _Declared:
    """One profile as written, with its operators built and the file it came from."""

    model: ProfileModel
    source: str
    default: Operator[Any] | None
    operators: Mapping[str, Operator[Any]]


class ProfileSet:
    """Every loaded profile, the role aliases and who may de-tokenise; immutable once built."""

    def __init__(
        self,
        declared: Iterable[_Declared],
        *,
        aliases: Mapping[str, str],
        detokenize_roles: Iterable[str],
        region_groups: Mapping[str, Iterable[str]],
        sources: Iterable[str],
    ) -> None:
        self._declared = tuple(sorted(declared, key=lambda d: (d.model.role, d.model.region)))
        self.aliases: Mapping[str, str] = MappingProxyType(dict(aliases))
        self.detokenize_roles: frozenset[str] = frozenset(detokenize_roles)
        self.region_groups: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {g: tuple(sorted(members)) for g, members in region_groups.items()}
        )
        self._region_of = {m: g for g, members in self.region_groups.items() for m in members}
        self.sources = tuple(sources)
        self._profiles = self._merge()
        self.roles: tuple[str, ...] = tuple(sorted({role for role, _ in self._profiles}))
        self._canonical = json.dumps(
            self._canonical_obj(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        self.version: str = hashlib.sha256(self._canonical).hexdigest()[:16]

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> ProfileSet:
        """Load and validate one profile file."""
        return cls._from_files([Path(path)])

    @classmethod
    def from_dir(cls, path: str | Path) -> ProfileSet:
        """Load every ``*.yaml``/``*.yml`` in ``path`` as one set (e.g. a base file plus a regional one)."""
        directory = Path(path)
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        if not files:
            raise ProfileError(f"{directory}: no *.yaml masking profile files found; add profiles.yaml")
        return cls._from_files(files)

    @classmethod
    def _from_files(cls, paths: list[Path]) -> ProfileSet:
        declared: dict[tuple[str, str], _Declared] = {}
        aliases: dict[str, tuple[str, str]] = {}  # alias -> (role, source)
        group_of: dict[str, tuple[str, str]] = {}  # member -> (group, source)
        groups: dict[str, set[str]] = {}
        detok: set[str] = set()
        for path in paths:
            source = str(path)
            model = _load_yaml(path)
            for i, pm in enumerate(model.profiles):
                d = cls._declare(source, i, pm)
                key = (pm.role, pm.region)
                if key in declared:
                    raise _fail(
                        source,
                        f"profile {pm.role}/{pm.region}",
                        f"declared twice (also in {declared[key].source}); keep one",
                    )
                declared[key] = d
            for alias, role in model.aliases.items():
                if alias in aliases and aliases[alias][0] != role:
                    raise _fail(source, f"aliases.{alias}", f"conflicts with {aliases[alias][1]}; keep one")
                aliases[alias] = (role, source)
            for group, members in model.region_groups.items():
                if not _REGION.fullmatch(group):
                    raise _fail(
                        source, f"region_groups.{group}", "a group name is an upper-case code such as EU"
                    )
                for member in members:
                    if not _REGION.fullmatch(member):
                        raise _fail(
                            source, f"region_groups.{group}", f"{member!r} is not an upper-case region code"
                        )
                    if member in group_of and group_of[member][0] != group:
                        raise _fail(
                            source,
                            f"region_groups.{group}",
                            f"{member} is also in group {group_of[member][0]} ({group_of[member][1]}); "
                            "a region may belong to one group",
                        )
                    group_of[member] = (group, source)
                    groups.setdefault(group, set()).add(member)
            for role in model.detokenize_roles:
                if role not in ROLES:
                    raise _fail(
                        source, "detokenize_roles", f"{role!r} is not a role; use some of: {', '.join(ROLES)}"
                    )
                detok.add(role)
        sources = [str(p) for p in paths]
        where_all = ", ".join(sources)
        roles = {role for role, _ in declared}
        for role in sorted(roles):
            if (role, DEFAULT_REGION) not in declared:
                regions = sorted(r for ro, r in declared if ro == role)
                raise ProfileError(
                    f"{where_all}: role {role!r} has profiles only for {', '.join(regions)}; add a profile "
                    f"with `role: {role}` and `region: default` (used wherever no regional one applies)"
                )
            base = declared[(role, DEFAULT_REGION)]
            if base.default is None:
                raise _fail(
                    base.source,
                    f"profile {role}/default",
                    "no `default` operator; add e.g. `default: tag` (it masks the types the profile omits)",
                )
        for alias, (role, source) in aliases.items():
            if not _ALIAS.fullmatch(alias):
                raise _fail(source, f"aliases.{alias}", "an alias is a lower-case name such as bot")
            if alias in roles:
                raise _fail(source, f"aliases.{alias}", f"{alias!r} has its own profiles; remove the alias")
            if role not in roles:
                raise _fail(
                    source,
                    f"aliases.{alias}",
                    f"points to {role!r}, which has no profile; use one of: {', '.join(sorted(roles))}",
                )
        return cls(
            declared.values(),
            aliases={a: r for a, (r, _) in aliases.items()},
            detokenize_roles=detok,
            region_groups=groups,
            sources=sources,
        )

    @staticmethod
    def _declare(source: str, index: int, pm: ProfileModel) -> _Declared:
        where = f"profile {pm.role}/{pm.region}"
        if pm.role not in ROLES:
            close = difflib.get_close_matches(pm.role, ROLES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _fail(
                source,
                f"profiles[{index}] ({where})",
                f"role {pm.role!r} is not a role of the node{hint}; use one of: {', '.join(ROLES)}",
            )
        default = _build_operator(source, f"{where}, default", pm.default) if pm.default else None
        operators: dict[str, Operator[Any]] = {}
        for entity_type, spec in pm.entities.items():
            _check_type(source, f"{where}, entities.{entity_type}", entity_type)
            operators[entity_type] = _build_operator(source, f"{where}, entities.{entity_type}", spec)
        return _Declared(pm, source, default, MappingProxyType(operators))

    def _merge(self) -> Mapping[tuple[str, str], Profile]:
        base = {d.model.role: d for d in self._declared if d.model.region == DEFAULT_REGION}
        out: dict[tuple[str, str], Profile] = {}
        for d in self._declared:
            b = base[d.model.role]
            default = d.default or b.default
            assert default is not None  # checked at load: every default-region profile has one
            operators = dict(b.operators) if d is not b else {}
            operators.update(d.operators)
            out[(d.model.role, d.model.region)] = Profile(
                role=d.model.role,
                region=d.model.region,
                default=default,
                operators=MappingProxyType(operators),
                description=d.model.description or b.model.description,
                source=d.source,
            )
        return MappingProxyType(out)

    # -- queries -----------------------------------------------------------------------------------

    @property
    def profiles(self) -> tuple[Profile, ...]:
        """Every (role, region) profile, regional ones already merged over their role's default."""
        return tuple(self._profiles.values())

    def canonical(self) -> bytes:
        """The loaded profiles as canonical JSON (sorted keys, no spaces, UTF-8): what ``version`` hashes.

        Profiles appear as written (regional ones unmerged) with every operator parameter filled in,
        so spelling out a default does not change the version, but changing what it masks does.
        """
        return self._canonical

    def _canonical_obj(self) -> dict[str, Any]:
        return {
            "aliases": dict(self.aliases),
            "detokenize_roles": sorted(self.detokenize_roles),
            "region_groups": {g: list(m) for g, m in self.region_groups.items()},
            "profiles": [
                {
                    "role": d.model.role,
                    "region": d.model.region,
                    "description": d.model.description,
                    "default": d.default.describe() if d.default else None,
                    "entities": {t: op.describe() for t, op in sorted(d.operators.items())},
                }
                for d in self._declared
            ],
        }

    def role_of(self, role: str) -> str:
        """The role whose profiles ``role`` uses (``bot`` → ``agent``); UnknownProfile if none."""
        name = role.strip().lower()
        name = self.aliases.get(name, name)
        if name not in self.roles:
            aliases = ", ".join(f"{a} → {r}" for a, r in sorted(self.aliases.items()))
            raise UnknownProfile(
                f"no masking profile for role {role!r}; profiles exist for: {', '.join(self.roles)}"
                + (f" (aliases: {aliases})" if aliases else "")
                + "; add one to the masking profiles or use one of these roles"
            )
        return name

    def resolve(self, role: str, region: str | None = None) -> Profile:
        """The profile for ``role`` in ``region``: the region's, else its group's (DE → EU), else default."""
        name = self.role_of(role)
        if region and region != DEFAULT_REGION:
            code = region.strip().upper()
            for candidate in (code, self._region_of.get(code)):
                if candidate is not None and (name, candidate) in self._profiles:
                    return self._profiles[(name, candidate)]
        return self._profiles[(name, DEFAULT_REGION)]

    def may_detokenize(self, role: str) -> bool:
        """Whether ``role`` may de-tokenise; aliases are not followed (a bot never inherits that right)."""
        return role.strip().lower() in self.detokenize_roles

    def __repr__(self) -> str:
        return f"ProfileSet(version={self.version!r}, profiles={[p.key for p in self.profiles]})"
