"""Fuzzing the live API from its own ``/openapi.json`` with schemathesis: no 5xx, no schema violations.

A real ``appliance serve`` (gunicorn, two workers) on 127.0.0.1 serves a small node with a few
customers. Every operation of the document is called with generated requests, valid and invalid
(schemathesis' positive and negative modes), once with a key of a role the operation allows (the
admin's wherever the admin may) and once as an agent, who mostly gets 403s, which must be documented
problems too. Each response must:

* not be a server error (no 5xx at all: a 503 here means a route failed on input it was given);
* use a status the document lists for the operation, with the content type it lists;
* have a body that validates against the documented schema (problem+json for errors).

Bounded so that it runs in a couple of minutes: few examples per operation, no deadline, a fixed
seed (derandomized hypothesis), no shrinking. A failure is a bug in the route that answered: fix
it there, with a regression test next to that route's own tests.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from support.live_server import BIN, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROLES = ("admin", "agent", "supervisor", "analyst", "custodian", "auditor", "ops")
SEED = 20_251_124
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]
#: Per run: with allowed keys every example reaches a route; the agent's run mostly meets 403s.
SETTINGS = {
    "allowed": settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    ),
    "agent": settings(
        max_examples=4,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    ),
}


def _rate_limits_off() -> dict[str, str]:
    """Per-key rate limits would turn the fuzzing into a 429 test; lift them when the node has them."""
    from appliance.settings import ServerSettings

    fields = ServerSettings.model_fields
    env = {}
    for name, value in (
        ("rate_limit_per_second", "100000"),
        ("rate_limit_burst", "100000"),
        ("failed_auth_per_minute", "100000"),
        ("failed_auth_burst", "100000"),
    ):
        if name in fields:
            env[f"APPLIANCE_SERVER__{name.upper()}"] = value
    return env


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("fuzz") / "node"
    env = dict(os.environ, APPLIANCE_NODE__DATA_DIR=str(data), **_rate_limits_off())
    subprocess.run([BIN / "appliance", "init"], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [BIN / "appliance", "store", "demo", "--customers", "40", "--seed", "7"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "40 customers" in out.stdout
    keys = {}
    for role in ROLES:
        made = subprocess.run(
            [BIN / "appliance", "keys", "create", role, "--label", "fuzz"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        keys[role] = made.stdout.strip().splitlines()[-1]
    with serve(env, log=data.parent / "server.log", args=("--workers", "2", "--no-scheduler")) as live:
        yield {"base": live.base, "keys": keys, "log": live.log, "data": data}


@pytest.fixture(scope="module")
def api(live: dict[str, Any]) -> Any:
    """The document as the server serves it: every operation in it gets fuzzed.

    Security parameters are not generated: each run sends its own key, so that negative cases break
    the request, not the authentication (a 401 for every mangled header would hide the routes).
    """
    config = SchemathesisConfig.from_dict(
        {"seed": SEED, "generation": {"deterministic": True, "with-security-parameters": False}}
    )
    return schemathesis.openapi.from_url(live["base"] + "/openapi.json", config=config, timeout=10)


def _runner(
    op: Any, mode: GenerationMode, config: settings, base: str, token: str, seen: Counter[Any]
) -> Any:
    headers = {"Authorization": f"Bearer {token}"}

    @config
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=60)
        seen[(op.label, response.status_code)] += 1

    return run


def _fuzz(api: Any, live: dict[str, Any], run_as: str) -> tuple[list[str], Counter[tuple[str, int]]]:
    """Every operation in both generation modes; one line per failing operation and mode, and the
    statuses seen per operation (so the test can tell a run that reached the routes from one that did not).

    ``run_as="allowed"``: each operation with a key of a role it allows (the admin's where it may), so
    the generated input reaches the route; otherwise every operation with that role's key.
    """
    failures: list[str] = []
    seen: Counter[tuple[str, int]] = Counter()
    operations = [r.ok() for r in api.get_all_operations()]
    assert len(operations) > 30, "the document lost its operations"
    doc = api.raw_schema
    for op in operations:
        roles = doc["paths"][op.path][op.method.lower()].get("x-roles") or ["admin"]
        role = run_as if run_as != "allowed" else ("admin" if "admin" in roles else roles[0])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _runner(op, mode, SETTINGS[run_as], live["base"], live["keys"][role], seen)
            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, op.label  # nothing to get wrong: no input at all
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, all reported at the end
                lines = str(exc).strip().splitlines()
                failures.append(f"{op.label} as {role} [{mode.value}]: {' | '.join(lines[:10])}")
    return failures, seen


@pytest.mark.parametrize("run_as", ["allowed", "agent"])
def test_fuzz(api: Any, live: dict[str, Any], run_as: str) -> None:
    failures, seen = _fuzz(api, live, run_as)
    assert not failures, f"{len(failures)} failing operation(s):\n" + "\n".join(failures)
    reached = {label for (label, status), _ in seen.items() if 200 <= status < 300}
    if run_as == "allowed":  # the calls got through to the routes, not only to their validation
        assert len(reached) > 20, sorted(seen.items())
    else:
        assert {"POST /v1/mask/text", "POST /v1/mask/records"} <= reached
        refused = {label for (label, status), _ in seen.items() if status == 403}
        assert {"GET /v1/admin/backups", "POST /v1/admin/backups"} <= refused


def test_the_document_lists_the_error_statuses_the_server_uses(live: dict[str, Any]) -> None:
    """Checked directly too, so a generator change that drops them fails here and not only in fuzzing."""
    doc = requests.get(live["base"] + "/openapi.json", timeout=10).json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"400", "404", "409", "413", "422", "503"} <= codes, (method, path, sorted(codes))
            if op["security"]:
                assert {"401", "403", "429"} <= codes, (method, path)
            for code in codes - {"200", "201", "204"}:
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in op["responses"][code]["content"], (
                        method,
                        path,
                        code,
                    )
    json.dumps(doc)
