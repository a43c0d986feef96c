"""The node's witnesses, end to end against real witness servers: registry, pushes, cosigned heads.

No fakes: every witness here is ``appliance.server.witness`` over HTTP on 127.0.0.1, holding the
node's real verifier key; the node pushes with its real ledger and proofs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ServerEnv
from support.witness_server import RunningWitness, start_witness

from appliance.cli import cli
from appliance.errors import UnknownWitness, WitnessConfigError
from appliance.ledger_query import find_entries
from ledger.checkpoint import NoteSigner, NoteVerifier, parse_checkpoint, verify_checkpoint
from ledger.witness import WitnessSigner, verify_cosignature

ADMIN = "admin:test"


@pytest.fixture
def witnesses(tmp_path: Path, env: ServerEnv) -> Iterator[Callable[[str], RunningWitness]]:
    started: list[RunningWitness] = []

    def start(name: str) -> RunningWitness:
        w = start_witness(tmp_path / name.replace("/", "_"), name, [NoteVerifier.from_vkey(env.node.vkey)])
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


def _cosigned(env: ServerEnv) -> list[dict[str, object]]:
    return [e.details for _, e in find_entries(env.node.ledger, action="ledger.cosigned")]  # type: ignore[misc]


def test_witnesses_cosign_new_checkpoints(env: ServerEnv, witnesses: Callable[[str], RunningWitness]) -> None:
    node = env.node
    w1, w2 = witnesses("witness.example/w1"), witnesses("witness.example/w2")
    for w in (w1, w2):
        out = node.witnesses.add(w.url + "/", w.vkey, actor=ADMIN)
        assert out["url"] == w.url and out["job_scheduled"]
    added = find_entries(node.ledger, action="ledger.witness_added")
    assert [e.details["witness"] for _, e in added] == ["witness.example/w1", "witness.example/w2"]

    node.record(ADMIN, "test.note")
    signed = node.ledger.sign_checkpoint()
    result = node.witnesses.tick()
    assert sorted(result["cosigned"]) == ["witness.example/w1", "witness.example/w2"], result
    details = _cosigned(env)
    assert {d["tree_size"] for d in details} == {signed.checkpoint.tree_size}
    for d, w in zip(details, (w1, w2), strict=True):
        assert verify_cosignature(signed.text + str(d["cosignature"]) + "\n", w.vkey) == d["time"]

    # The head auditors fetch carries both cosignatures, and still verifies as the log's checkpoint.
    head = env.client.get("/v1/ledger/checkpoint", headers=env.auth("auditor")).get_json()
    assert head["tree_size"] == signed.checkpoint.tree_size
    assert sorted(c["name"] for c in head["cosignatures"]) == ["witness.example/w1", "witness.example/w2"]
    assert head["witnessed"] is None
    text = env.client.get(
        "/v1/ledger/checkpoint", headers={**env.auth("auditor"), "Accept": "text/plain"}
    ).get_data(as_text=True)
    assert text == head["note"]
    verify_checkpoint(text, NoteVerifier.from_vkey(node.vkey))
    assert verify_cosignature(text, w1.vkey) > 0 and verify_cosignature(text, w2.vkey) > 0

    # A checkpoint whose only news is the job's own ledger.cosigned entries is not pushed again.
    own = node.ledger.sign_checkpoint()
    assert own.checkpoint.tree_size == signed.checkpoint.tree_size + 2
    again = node.witnesses.tick()
    assert again["cosigned"] == [] and sorted(again["up_to_date"]) == [
        "witness.example/w1",
        "witness.example/w2",
    ]
    assert len(_cosigned(env)) == 2
    head = env.client.get("/v1/ledger/checkpoint", headers=env.auth("auditor")).get_json()
    assert head["cosignatures"] == [] and head["witnessed"]["tree_size"] == signed.checkpoint.tree_size

    # New entries: pushed with a consistency proof from the size each witness last cosigned.
    node.record(ADMIN, "test.note")
    grown = node.ledger.sign_checkpoint()
    assert sorted(node.witnesses.tick()["cosigned"]) == ["witness.example/w1", "witness.example/w2"]
    assert w1.witness.heads()[node.origin].tree_size == grown.checkpoint.tree_size
    status = {s["name"]: s for s in node.witnesses.status()}
    assert status["witness.example/w1"]["cosigned_size"] == grown.checkpoint.tree_size
    assert status["witness.example/w1"]["failures"] == 0


def test_anchoring_and_cosigning_do_not_feed_each_other(
    env: ServerEnv, witnesses: Callable[[str], RunningWitness]
) -> None:
    """An anchoring's ledger.anchored entry alone is no reason to push (and cosign, and anchor again...)."""
    from support.eth_chain import in_process_chain

    from appliance.anchoring import AnchorService

    node = env.node
    w = witnesses("witness.example/w1")
    node.witnesses.add(w.url, w.vkey, actor=ADMIN)
    node.ledger.sign_checkpoint()
    assert node.witnesses.tick()["cosigned"] == ["witness.example/w1"]
    node._anchoring = AnchorService(node, in_process_chain().anchor)
    assert node.anchoring.anchor_now()["anchored"] is not None  # appends ledger.anchored (system:anchor)
    node.ledger.sign_checkpoint()
    assert node.witnesses.tick()["up_to_date"] == ["witness.example/w1"]
    node.record(ADMIN, "test.note")
    node.ledger.sign_checkpoint()
    assert node.witnesses.tick()["cosigned"] == ["witness.example/w1"]


def test_a_witness_ahead_of_the_node_records_is_caught_up_from_its_size(
    env: ServerEnv, witnesses: Callable[[str], RunningWitness], tmp_path: Path
) -> None:
    """409 names the witness's size; the node retries once from there (its own status file was lost)."""
    node = env.node
    w = witnesses("witness.example/w1")
    node.witnesses.add(w.url, w.vkey, actor=ADMIN)
    node.ledger.sign_checkpoint()
    node.witnesses.tick()
    (node.settings.data_dir / "state" / "witnesses.json").unlink()
    node.record(ADMIN, "test.note")
    grown = node.ledger.sign_checkpoint()
    result = node.witnesses.tick()
    assert result["cosigned"] == ["witness.example/w1"], result
    assert w.witness.heads()[node.origin].tree_size == grown.checkpoint.tree_size


def test_an_unreachable_or_wrong_witness_is_reported_and_never_blocks(
    env: ServerEnv, witnesses: Callable[[str], RunningWitness]
) -> None:
    node = env.node
    down = witnesses("witness.example/down")
    node.witnesses.add(down.url, down.vkey, actor=ADMIN)
    down.close()
    impostor = witnesses("witness.example/other")  # answers, but with another key than configured
    node.witnesses.add(impostor.url, WitnessSigner.generate("witness.example/other").vkey(), actor=ADMIN)
    node.ledger.sign_checkpoint()
    result = node.witnesses.tick()
    assert result["cosigned"] == []
    assert "unreachable" in result["failed"]["witness.example/down"]
    assert "configured key" in result["failed"]["witness.example/other"]
    node.record(ADMIN, "test.note")  # the ledger goes on
    result = node.witnesses.tick()
    status = {s["name"]: s for s in node.witnesses.status()}
    assert status["witness.example/down"]["failures"] == 2
    assert "unreachable" in str(status["witness.example/down"]["last_error"])
    assert _cosigned(env) == []


def test_registry_refusals(env: ServerEnv, witnesses: Callable[[str], RunningWitness]) -> None:
    node = env.node
    w = witnesses("witness.example/w1")
    node.witnesses.add(w.url, w.vkey, actor=ADMIN)
    size = node.ledger.size
    with pytest.raises(WitnessConfigError, match="configured already"):
        node.witnesses.add(w.url, w.vkey, actor=ADMIN)
    with pytest.raises(WitnessConfigError, match="http"):
        node.witnesses.add("ftp://x.example", w.vkey, actor=ADMIN)
    with pytest.raises(WitnessConfigError, match="credentials"):
        node.witnesses.add("https://u:p@x.example", w.vkey, actor=ADMIN)
    with pytest.raises(WitnessConfigError, match="0x04"):
        node.witnesses.add(w.url, NoteSigner.generate("w.example").vkey(), actor=ADMIN)
    with pytest.raises(UnknownWitness, match=r"witness\.example/w1"):
        node.witnesses.remove("nobody", actor=ADMIN)
    assert node.ledger.refresh() == size, "refusals record nothing"
    node.witnesses.remove("witness.example/w1", actor=ADMIN)
    assert find_entries(node.ledger, action="ledger.witness_removed")
    assert node.witnesses.witnesses() == []
    assert node.witnesses.tick()["witnesses"] == 0


# -- HTTP ----------------------------------------------------------------------------------------------------
def test_witness_routes(env: ServerEnv, witnesses: Callable[[str], RunningWitness]) -> None:
    w = witnesses("witness.example/w1")
    resp = env.client.post(
        "/v1/ledger/witnesses", headers=env.auth("admin"), json={"url": w.url, "vkey": w.vkey}
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert env.node.ledger.entry(resp.get_json()["ledger_seq"]).action == "ledger.witness_added"
    listed = env.client.get("/v1/ledger/witnesses", headers=env.auth("auditor")).get_json()["witnesses"]
    assert [(x["name"], x["vkey"], x["cosigned_size"]) for x in listed] == [("witness.example/w1", w.vkey, 0)]
    env.problem(
        env.client.post(
            "/v1/ledger/witnesses", headers=env.auth("admin"), json={"url": w.url, "vkey": "/etc/passwd"}
        ),
        422,
        "witness-refused",
    )
    env.problem(
        env.client.post("/v1/ledger/witnesses", headers=env.auth("admin"), json={"url": w.url}),
        422,
        "invalid-body",
    )
    delete = lambda key_id: env.client.delete(f"/v1/ledger/witnesses/{key_id}", headers=env.auth("admin"))  # noqa: E731
    env.problem(delete("00000000"), 404, "unknown-witness")
    env.problem(delete("nobody"), 400, "invalid-parameter")
    gone = delete(listed[0]["key_id"])
    assert gone.status_code == 200 and gone.get_json()["name"] == "witness.example/w1"
    assert env.client.get("/v1/ledger/witnesses", headers=env.auth("auditor")).get_json() == {"witnesses": []}


# -- CLI -----------------------------------------------------------------------------------------------------
@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("APPLIANCE_NODE__DATA_DIR", str(tmp_path / "node"))
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    return invoke


def test_cli_add_push_head_list_remove(run: Callable[..., Result], tmp_path: Path) -> None:
    run("init")
    vkey = (tmp_path / "node" / "ledger.pub").read_text().strip()
    w = start_witness(tmp_path / "w", "witness.example/cli", [NoteVerifier.from_vkey(vkey)])
    try:
        run("witness", "push", code=2)  # none configured yet
        (tmp_path / "w.vkey").write_text(w.vkey + "\n")
        out = run("witness", "add", w.url, str(tmp_path / "w.vkey")).output
        assert "added witness witness.example/cli" in out
        assert "configured already" in run("witness", "add", w.url, w.vkey, code=2).output
        assert (
            "neither a witness key" in run("witness", "add", w.url, str(tmp_path / "missing"), code=2).output
        )
        assert "must be http" in run("witness", "add", "localhost:1", w.vkey, code=2).output
        jobs = {j["id"]: j for j in json.loads(run("jobs", "list", "--json").output)}
        assert jobs["ledger.witness"]["scheduled"], "stored for a running scheduler to pick up"
        assert "cosigned: witness.example/cli" in run("witness", "push").output
        head = json.loads(run("ledger", "head").output)["checkpoint"]
        assert [c["name"] for c in head["cosignatures"]] == ["witness.example/cli"]
        assert verify_cosignature(head["note"], w.vkey) > 0
        listed = json.loads(run("witness", "list", "--json").output)
        assert listed[0]["cosigned_size"] == parse_checkpoint(head["note"]).checkpoint.tree_size
        assert "witness.example/cli" in run("witness", "list").output
        run("witness", "remove", "witness.example/cli")
        assert "no witness named" in run("witness", "remove", "witness.example/cli", code=2).output
        assert "no witnesses" in run("witness", "list").output
    finally:
        w.close()
