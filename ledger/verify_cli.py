"""``appliance-verify``: the auditor's offline check of the ledger's evidence.

It runs without the appliance, its server or its dependencies (argparse, not
click: the standard library and ``cryptography`` only), so an auditor can
install it alone and trust a verdict that our node did not compute. Only
``bundle --rpc`` reaches out (to an Ethereum node of the auditor's choice), and
imports web3 for it then.

Exit status is the verdict, for scripts: 0 the evidence verifies, 1 it does
not (tampering, or the wrong log), 2 the input could not be used at all (and
stderr says how to fix it), 3 the evidence proves the log forked (it signed two
checkpoints that cannot both be true). The verdict is the first line of the
output; a format 2 bundle's report adds indented lines saying what was checked
(``--json``: one JSON object instead). No traceback escapes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from ledger import merkle
from ledger.bundle import (
    BUNDLE_FORMAT_V2,
    BundleReport,
    BundleUnusable,
    find_fork,
    load_bundle,
    verify_bundle,
)
from ledger.checkpoint import NoteVerifier, load_verifier, parse_checkpoint, verify_checkpoint
from ledger.errors import CheckpointInvalid
from ledger.witness import WitnessVerifier

__all__ = ["main"]

_PROG = "appliance-verify"
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_COUNT = re.compile(r"[0-9]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_EPILOG = f"""\
examples:
  {_PROG} checkpoint head.txt --pubkey log.vkey
  {_PROG} bundle evidence.json --pubkey log.pem
  {_PROG} bundle evidence.json --pubkey log.vkey --witness-key w1.vkey --witness-key w2.vkey \\
      --min-witnesses 1 --rpc https://eth.example:8545 --json
  {_PROG} fork a.ckpt b.ckpt --pubkey log.vkey [--path HEX,...]
  {_PROG} inclusion --leaf-hash 6e34...c19a --index 3 --size 8 --root 5f1b...07d2 \\
      --path 96a2...e0f1,4a1c...9b3e,d0e5...2c77
  {_PROG} consistency --old-size 4 --new-size 8 --old-root 0a7c...44e1 --new-root 5f1b...07d2 \\
      --path 9ab0...6f12,c4d3...8e01

Hashes are 64 hex characters (SHA-256); --path lists them comma-separated, leaf end first.
A public key file holds the log's C2SP verifier key (<name>+<key id>+<base64>), an Ed25519
PEM public key, or 64 hex characters of raw key; PEM and hex keys take the log's name from the
checkpoint or bundle origin.

A witness key (--witness-key) is a file holding a cosigner vkey (<name>+<key id>+<base64 of
0x04 and the key>) or the vkey itself; by default every witness given must have cosigned.

exit status: 0 valid, 1 invalid (the evidence does not verify), 2 unusable input,
3 fork (the log signed two checkpoints that cannot both be true)
"""


class _UsageError(Exception):
    """Input the tool cannot use; the message says what to change."""


class _Invalid(Exception):
    """The evidence does not verify; the message says which part failed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _hash(text: str) -> bytes:
    if not _HASH.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not 64 hex characters (a SHA-256 hash)")
    return bytes.fromhex(text.strip())


def _path(text: str) -> list[bytes]:
    return [_hash(h) for h in text.split(",")] if text.strip() else []


def _count(text: str) -> int:
    if not _COUNT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _ok(message: str) -> int:
    print(f"OK: {_one_line(message)}")
    return 0


def _invalid(message: str) -> int:
    print(f"INVALID: {_one_line(message)}")
    return 1


FORK = 3


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}; check the file name") from exc


def _verifier(path: str, origin: str) -> NoteVerifier:
    """The log's key; PEM and hex keys are named after ``origin``, which comes from the evidence."""
    data = _read(path)
    try:
        load_verifier(data, name="log.example")  # the key file itself must be usable
    except CheckpointInvalid as exc:
        raise _UsageError(f"--pubkey {path}: {exc}") from exc
    try:
        return load_verifier(data, name=origin)
    except CheckpointInvalid as exc:  # a tampered origin that no key can be named after
        raise _Invalid(f"origin {origin!r} cannot be the name of the log's key") from exc


def _when(ms: int) -> str:
    try:
        return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except OverflowError:
        return f"{ms} ms after the epoch"


def _inclusion(args: argparse.Namespace) -> int:
    if args.index >= args.size:
        raise _UsageError(f"--index {args.index} is not below --size {args.size}; leaves are numbered from 0")
    tree = f"the tree of size {args.size} with root {args.root.hex()}"
    root = merkle.root_from_inclusion(args.leaf_hash, args.index, args.size, args.path)
    if root == args.root:
        return _ok(f"leaf {args.leaf_hash.hex()} is at index {args.index} in {tree}")
    if root is None:
        return _invalid(f"--path has the wrong number of hashes for index {args.index} in {tree}")
    return _invalid(f"--path leads from the leaf to root {root.hex()}, not to {tree}")


def _consistency(args: argparse.Namespace) -> int:
    if args.old_size > args.new_size:
        raise _UsageError(f"--old-size {args.old_size} is larger than --new-size {args.new_size}")
    claim = f"the tree of size {args.old_size} is a prefix of the tree of size {args.new_size}"
    if merkle.verify_consistency(args.old_size, args.new_size, args.path, args.old_root, args.new_root):
        return _ok(claim)
    return _invalid(f"--path does not prove that {claim} (with the given roots)")


def _checkpoint(args: argparse.Namespace) -> int:
    text = _read(args.file)
    try:
        origin = parse_checkpoint(text).checkpoint.origin
    except CheckpointInvalid as exc:
        return _invalid(f"{args.file}: {exc}")
    verifier = _verifier(args.pubkey, origin)
    try:
        cp = verify_checkpoint(text, verifier).checkpoint
    except CheckpointInvalid as exc:
        return _invalid(f"{args.file}: {exc}")
    return _ok(
        f"checkpoint of {cp.origin} signed by {verifier.name}+{verifier.key_hash.hex()}: "
        f"size {cp.tree_size}, root {cp.root_hash.hex()}, time {_when(cp.timestamp_ms)}"
    )


def _witness_keys(values: Sequence[str]) -> list[WitnessVerifier]:
    keys = []
    for value in values:
        text = value
        if "+" not in value or Path(value).is_file():
            text = _read(value).decode("utf-8", "replace")
        try:
            keys.append(WitnessVerifier.from_vkey(text.strip()))
        except CheckpointInvalid as exc:
            raise _UsageError(f"--witness-key {value}: {exc}") from exc
    return keys


def _onchain(anchors: Sequence[dict[str, object]], rpc: str) -> dict[int, str | None]:
    """For each Ethereum anchor not dropped (by index in ``anchors``): None if the chain holds it, else
    why not. The Ethereum back end does the looking up; it is imported only now (it needs web3)."""
    if not re.match(r"https?://[^/\s]+", rpc):
        raise _UsageError(f"--rpc {rpc!r} is not an http(s)://host:port URL of an Ethereum node")
    try:
        from ledger.anchors.ethereum import check_onchain
    except ImportError as exc:
        raise _UsageError(
            f"--rpc needs web3, which this installation lacks ({exc}); install it or drop --rpc"
        ) from exc
    wanted = [
        i for i, a in enumerate(anchors) if a.get("chain") == "ethereum" and a.get("status") != "dropped"
    ]
    if not wanted:
        return {}
    results = check_onchain([dict(anchors[i]) for i in wanted], rpc)
    for _, why in results:
        if why is not None and why.startswith("RPC unreachable"):
            raise _UsageError(f"--rpc: {why}; the anchors were not checked on chain")
    return {i: why for i, (_, why) in zip(wanted, results, strict=True)}


def _anchor_line(a: dict[str, object]) -> str:
    block = a.get("block")
    return (
        f"{a['chain']} {a['network']} {a['contract']}: size {a['tree_size']} root {str(a['root'])[:16]}.. "
        f"tx {a['tx']} block {block if block is not None else '-'} ({a['status']})"
    )


def _report_lines(report: BundleReport, onchain: dict[int, str | None] | None) -> list[str]:
    lines = []
    cp = report.checkpoint
    if cp is not None:
        when = _when(cp.timestamp_ms)
        lines.append(f"checkpoint: {cp.origin} size {cp.tree_size} root {cp.root_hash.hex()} time {when}")
    lines.append(f"entries: {report.entries_checked} checked (inclusion, hash chain, canonical form)")
    for w in report.witnesses:
        if w.cosignature is not None:
            stamp = _when(w.cosignature.timestamp * 1000)
            lines.append(f"witness {w.witness}: cosigned at {stamp}")
        else:
            lines.append(f"witness {w.witness}: {w.problem}")
    for name in report.unknown_signatures:
        lines.append(f"signature by {name}: not checked (no --witness-key names it)")
    lines.append(f"consistency proofs: {report.consistency_checked} checked")
    for i, a in enumerate(report.anchors):
        where = "on chain: not checked (no --rpc)"
        if onchain is not None:
            if i in onchain:
                where = "on chain: ok" if onchain[i] is None else f"on chain: NOT FOUND ({onchain[i]})"
            else:
                where = "on chain: not checked (only Ethereum anchors that were not dropped are)"
        lines.append(f"anchor {_anchor_line(a)}; matches the signed checkpoint; {where}")
    if report.selection:
        chosen = ", ".join(f"{k}={v}" for k, v in report.selection.items() if v not in (None, []))
        lines.append(f"selection (as exported, not signed): {chosen or 'none'}")
    return lines


def _bundle(args: argparse.Namespace) -> int:
    try:
        bundle = load_bundle(_read(args.file))
    except BundleUnusable as exc:
        raise _UsageError(f"{args.file}: {exc}") from exc
    witnesses = _witness_keys(args.witness_key)
    if args.min_witnesses is not None and args.min_witnesses > len(witnesses):
        raise _UsageError(
            f"--min-witnesses {args.min_witnesses} but only {len(witnesses)} --witness-key given"
        )
    verifier = _verifier(args.pubkey, bundle["origin"])
    report = verify_bundle(bundle, verifier, witnesses=witnesses, min_witnesses=args.min_witnesses)
    onchain: dict[int, str | None] | None = None
    verdict = report.ok
    reason = report.reason
    if report.ok and args.rpc:
        onchain = _onchain(report.anchors, args.rpc)
        bad = [(i, why) for i, why in onchain.items() if why is not None]
        if bad:
            verdict = False
            i, why = bad[0]
            reason = f"anchors[{i}] is not on chain as recorded: {why}"
        else:
            reason += f"; anchors found on chain: {len(onchain)}"
    code = 0 if verdict else FORK if report.fork is not None else 1
    if args.json:
        out = report.as_dict() | {"ok": verdict, "reason": reason, "exit_status": code}
        out["anchors"] = [
            {**a, "onchain": None if onchain is None or i not in onchain else (onchain[i] or "ok")}
            for i, a in enumerate(report.anchors)
        ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return code
    if report.fork is not None:
        print(_one_line(report.fork.describe()))
        for label, signed in (("A", report.fork.a), ("B", report.fork.b)):
            print(f"  checkpoint {label}, signed by the log:")
            for line in signed.text.rstrip("\n").split("\n"):
                print(f"    {line}")
        return FORK
    if verdict:
        _ok(reason)
    else:
        _invalid(reason)
    if bundle["format"] == BUNDLE_FORMAT_V2 or witnesses:
        for line in _report_lines(report, onchain):
            print(f"  {line}")
    return code


def _fork(args: argparse.Namespace) -> int:
    texts = [_read(args.a), _read(args.b)]
    try:
        origin = parse_checkpoint(texts[0]).checkpoint.origin
    except CheckpointInvalid as exc:
        return _invalid(f"{args.a}: {exc}")
    verifier = _verifier(args.pubkey, origin)
    signed = []
    for name, text in zip((args.a, args.b), texts, strict=True):
        try:
            signed.append(verify_checkpoint(text, verifier))
        except CheckpointInvalid as exc:
            return _invalid(f"{name}: {exc} (only checkpoints the log signed can prove a fork)")
    a, b = sorted(signed, key=lambda s: s.checkpoint.tree_size)
    fork = find_fork(a, b, args.path)
    if fork is not None:
        print(_one_line(fork.describe()))
        for label, s in (("A", fork.a), ("B", fork.b)):
            print(f"  checkpoint {label}, signed by the log:")
            for line in s.text.rstrip("\n").split("\n"):
                print(f"    {line}")
        return FORK
    ca, cb = a.checkpoint, b.checkpoint
    if ca.tree_size == cb.tree_size:
        return _ok(f"no fork: both checkpoints are of size {ca.tree_size} with root {ca.root_hash.hex()}")
    if args.path is None:
        raise _UsageError(
            f"the checkpoints have sizes {ca.tree_size} and {cb.tree_size}: give --path, the consistency "
            f"proof between them (on the node: appliance ledger prove --from {ca.tree_size} --size "
            f"{cb.tree_size})"
        )
    if merkle.verify_consistency(ca.tree_size, cb.tree_size, args.path, ca.root_hash, cb.root_hash):
        return _ok(f"no fork: size {ca.tree_size} is a prefix of size {cb.tree_size}")
    return _invalid(
        f"--path does not reproduce the root of size {cb.tree_size}, so it proves nothing either way; "
        "ask the log for the consistency proof"
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description="Verify the appliance ledger's checkpoints and proofs offline, without the server.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    sub = command(
        "checkpoint", _checkpoint, "check a signed checkpoint (tree head) and print its size and root"
    )
    sub.add_argument("file", metavar="FILE", help="the checkpoint note, as the log published it")
    sub.add_argument("--pubkey", metavar="FILE", required=True, help="the log's public key")

    sub = command(
        "bundle",
        _bundle,
        "check an evidence bundle: checkpoint, entries, inclusion, consistency, cosignatures, anchors",
    )
    sub.add_argument("file", metavar="FILE", help="the evidence bundle (JSON) exported by the appliance")
    sub.add_argument("--pubkey", metavar="FILE", required=True, help="the log's public key")
    sub.add_argument(
        "--witness-key",
        metavar="K",
        action="append",
        default=[],
        help="a witness you trust: file or vkey (repeatable); its cosignature is required",
    )
    sub.add_argument(
        "--min-witnesses",
        type=_count,
        metavar="N",
        help="require N of the --witness-key cosignatures (default: all)",
    )
    sub.add_argument(
        "--rpc", metavar="URL", help="also check the Ethereum anchors on this node's chain (web3)"
    )
    sub.add_argument("--json", action="store_true", help="the report as one JSON object")

    sub = command("fork", _fork, "check whether two signed checkpoints prove that the log forked")
    sub.add_argument("a", metavar="A", help="a checkpoint note signed by the log")
    sub.add_argument("b", metavar="B", help="another one")
    sub.add_argument("--pubkey", metavar="FILE", required=True, help="the log's public key")
    sub.add_argument(
        "--path", type=_path, metavar="HEX,...", help="consistency proof between them, when the sizes differ"
    )

    sub = command("inclusion", _inclusion, "check that a leaf is in a tree (RFC 6962 / RFC 9162 audit path)")
    sub.add_argument("--leaf-hash", type=_hash, required=True, metavar="HEX", help="SHA-256(0x00 || entry)")
    sub.add_argument("--index", type=_count, required=True, metavar="I", help="the leaf's index (its seq)")
    sub.add_argument("--size", type=_count, required=True, metavar="N", help="the tree size")
    sub.add_argument("--root", type=_hash, required=True, metavar="HEX", help="the root hash at size N")
    sub.add_argument(
        "--path", type=_path, required=True, metavar="HEX,...", help="the audit path ('' for a tree of one)"
    )

    sub = command("consistency", _consistency, "check that an older tree is a prefix of a newer one")
    sub.add_argument("--old-size", type=_count, required=True, metavar="M")
    sub.add_argument("--new-size", type=_count, required=True, metavar="N")
    sub.add_argument("--old-root", type=_hash, required=True, metavar="HEX", help="the root at size M")
    sub.add_argument("--new-root", type=_hash, required=True, metavar="HEX", help="the root at size N")
    sub.add_argument("--path", type=_path, required=True, metavar="HEX,...", help="the consistency proof")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool and return its exit status (the console script passes it to ``sys.exit``)."""
    try:
        args = _parser().parse_args(argv)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except _Invalid as exc:
        return _invalid(str(exc))
    except _UsageError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help exits through argparse; the status is still ours to return
        return int(exc.code or 0)


if __name__ == "__main__":
    sys.exit(main())
