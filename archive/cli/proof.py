"""The proof commands: `archive keys new|show`, `archive sign`, `archive timestamp`.

Registered through COMMAND_MODULES; like every command, each command unpacks its
arguments, makes one library call and prints the result. Verification of proofs is part of
`archive verify` (--trust, --tsa-cert).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archive.errors import ProofError
from archive.models import Snapshot

from .common import command, printable, write_json


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the keys, sign and timestamp subcommands to the `archive` parser."""
    keys = command(sub, common, "keys", _cmd_keys, "make or show the signing key pair",
                   "Make or show the ECDSA P-384 key pair that signs snapshots. It lives outside every "
                   "collection: $XDG_CONFIG_HOME/archive/ (or ~/.config/archive/) unless --key says where.")
    keys.add_argument("action", choices=("new", "show"))
    keys.add_argument("--key", type=Path, metavar="PATH", help="the private key file (PATH.pub: the public key)")
    keys.add_argument("--force", action="store_true", help="replace an existing key (its signatures stay "
                                                           "valid but name the old key)")

    sign = command(sub, common, "sign", _cmd_sign, "sign a snapshot (WACZ signedData)",
                   "Sign a snapshot's package digest with your key; the signature goes into its "
                   "datapackage-digest.json. The id does not change.")
    sign.add_argument("snapshot", metavar="SNAPSHOT", help="folder, id or unique id prefix")
    sign.add_argument("--key", type=Path, metavar="PATH", help="the private key (default: the config folder's)")
    sign.add_argument("--force", action="store_true",
                      help="replace a signature by another key (a package holds one signature)")

    stamp = command(sub, common, "timestamp", _cmd_timestamp, "get an RFC 3161 timestamp of a snapshot",
                    "Ask a time-stamping authority for a token over the snapshot id; it goes into "
                    "datapackage-digest.json with the TSA's certificates.")
    stamp.add_argument("snapshot", metavar="SNAPSHOT", help="folder, id or unique id prefix")
    stamp.add_argument("--tsa", action="append", required=True, metavar="URL",
                       help="the time-stamping authority's URL (repeatable: one token from each)")
    stamp.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")


def _cmd_keys(args: argparse.Namespace) -> int:
    from archive.proofs.signing import key_info, new_key
    from archive.snapshot.store import Collection

    if args.action == "new":
        info = new_key(args.key, overwrite=args.force, collection=Collection(args.collection).root)
    else:
        info = key_info(args.key)
    if args.format == "json":
        write_json(info.to_json())
        return 0
    sys.stdout.write(f"key         {info.path}\npublic key  {info.path}.pub\n"
                     f"fingerprint {info.fingerprint}\npublicKey   {info.public_key}\n")
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    from archive.proofs.signing import sign

    signed = sign(args.snapshot, args.collection, key=args.key, replace=args.force)
    if args.format == "json":
        write_json(signed.to_json())
    else:
        replaced = f" (replacing the signature by {printable(signed.replaced)})" if signed.replaced else ""
        sys.stdout.write(f"signed {signed.path} sha256:{signed.snapshot_id} with key {signed.fingerprint}"
                         f"{replaced}\n")
    return 0


def _cmd_timestamp(args: argparse.Namespace) -> int:
    from archive.proofs.timestamping import timestamp

    stamps = timestamp(args.snapshot, args.collection, tsa=args.tsa, timeout=args.timeout)
    if args.format == "json":
        write_json([s.to_json() for s in stamps])
        return 0
    for s in stamps:
        sys.stdout.write(f"timestamped {s.path} sha256:{s.snapshot_id}: {s.time} by {s.signer} ({s.tsa})\n")
    return 0


def check_proof_options(sign: bool, key: Path | None, tsa: list[str]) -> None:
    """Before a capture: fail now on a key that cannot sign or a TSA that is not a URL."""
    if sign:
        from archive.proofs.signing import default_key_path, load_private_key
        load_private_key(Path(key) if key is not None else default_key_path())
    for url in tsa:
        if not url.startswith(("http://", "https://")):
            raise ProofError(url, "a TSA is asked over http:// or https://")


def prove(snap: Snapshot, sign: bool, key: Path | None, tsa: list[str],
          proxy: str | None = None) -> tuple[list[dict[str, Any]], ProofError | None]:
    """Sign and/or timestamp a fresh capture (capture --sign/--tsa, a TSA off loopback asked
    through capture's --proxy); return what was added and the proof that could not be made
    (the snapshot stays, without it)."""
    added: list[dict[str, Any]] = []
    try:
        if sign:
            from archive.proofs.signing import sign as sign_snapshot
            signed = sign_snapshot(snap.path, key=key)
            added.append({"kind": "signature", "fingerprint": signed.fingerprint,
                          "summary": f"signed with key {signed.fingerprint}"})
        if tsa:
            from archive.proofs.timestamping import timestamp
            for s in timestamp(snap.path, tsa=tsa, proxy=proxy):
                added.append({"kind": "timestamp", "time": s.time, "tsa": s.tsa, "signer": s.signer,
                              "summary": f"timestamped {s.time} by {s.signer} ({s.tsa})"})
    except ProofError as exc:
        return added, exc
    return added, None
