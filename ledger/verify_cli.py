"""``appliance-verify``: the auditor's offline check of the ledger's evidence.

It runs without the appliance, its server or its dependencies (argparse, not
click: the standard library and ``cryptography`` only), so an auditor can
install it alone and trust a verdict that our node did not compute.

Exit status is the verdict, for scripts: 0 the evidence verifies, 1 it does
not (tampering, or the wrong log), 2 the input could not be used at all (and
stderr says how to fix it). Each verdict is one line; no traceback escapes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from ledger import merkle
from ledger.bundle import BundleUnusable, load_bundle, verify_bundle
from ledger.checkpoint import NoteVerifier, load_verifier, parse_checkpoint, verify_checkpoint
from ledger.errors import CheckpointInvalid

__all__ = ["main"]

_PROG = "appliance-verify"
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_COUNT = re.compile(r"[0-9]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_EPILOG = f"""\
examples:
  {_PROG} checkpoint head.txt --pubkey log.vkey
  {_PROG} bundle evidence.json --pubkey log.pem
  {_PROG} inclusion --leaf-hash 6e34...c19a --index 3 --size 8 --root 5f1b...07d2 \\
      --path 96a2...e0f1,4a1c...9b3e,d0e5...2c77
  {_PROG} consistency --old-size 4 --new-size 8 --old-root 0a7c...44e1 --new-root 5f1b...07d2 \\
      --path 9ab0...6f12,c4d3...8e01

Hashes are 64 hex characters (SHA-256); --path lists them comma-separated, leaf end first.
A public key file holds the log's C2SP verifier key (<name>+<key id>+<base64>), an Ed25519
PEM public key, or 64 hex characters of raw key; PEM and hex keys take the log's name from the
checkpoint or bundle origin.

exit status: 0 valid, 1 invalid (the evidence does not verify), 2 unusable input
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


def _bundle(args: argparse.Namespace) -> int:
    try:
        bundle = load_bundle(_read(args.file))
    except BundleUnusable as exc:
        raise _UsageError(f"{args.file}: {exc}") from exc
    report = verify_bundle(bundle, _verifier(args.pubkey, bundle["origin"]))
    return _ok(report.reason) if report.ok else _invalid(report.reason)


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
        "bundle", _bundle, "check an evidence bundle: checkpoint, entries, inclusion and consistency"
    )
    sub.add_argument("file", metavar="FILE", help="the evidence bundle (JSON) exported by the appliance")
    sub.add_argument("--pubkey", metavar="FILE", required=True, help="the log's public key")

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
