"""Signing keys and the WACZ `signedData` signature of a snapshot (anonymous mode).

A snapshot is signed by signing the text of its package digest, "sha256:<id>", with an
ECDSA P-384 key, as the WACZ signing spec's anonymous mode and ReplayWeb.page's check have
it: ECDSA with SHA-256 over the UTF-8 bytes of the `hash` string, the signature as raw r||s
(IEEE P1363, not the DER that `cryptography` gives), the public key as base64 DER
SubjectPublicKeyInfo, and `created` equal to datapackage.json's own `created`.

Private keys live outside every collection (the user's config folder by default, mode
0600), so that publishing a collection never publishes a key.
"""
from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from archive.errors import ProofError, UsageError
from archive.snapshot.package import DATAPACKAGE
from archive.version import __version__

from .digest import SIGNED_DATA, load_digest, package_facts, snapshot_folder, write_digest

KEY_NAME = "signing-key.pem"
CURVE = ec.SECP384R1()
FIELD_BYTES = 48          # P-384: r and s are 48 bytes each in the raw form


@dataclass(frozen=True)
class KeyInfo:
    """A signing key pair on disk: where the private key is and what its public half is."""

    path: Path
    public_key: str        # base64 DER SubjectPublicKeyInfo, as signedData carries it
    fingerprint: str       # "sha256:<hex>" of that DER

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "publicKey": self.public_key, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class Signed:
    """A snapshot that was just signed."""

    path: Path
    snapshot_id: str
    fingerprint: str
    created: str
    replaced: str | None = None   # the signer of the signature this one replaced (--force)

    def to_json(self) -> dict[str, str | None]:
        return {"path": str(self.path), "id": self.snapshot_id, "fingerprint": self.fingerprint,
                "created": self.created, "replaced": self.replaced}


def default_key_path() -> Path:
    """Return the default private key file: $XDG_CONFIG_HOME/archive/, else ~/.config/archive/."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "archive" / KEY_NAME


def fingerprint(spki_der: bytes) -> str:
    """Return the fingerprint of a public key: "sha256:" and the hex SHA-256 of its DER SPKI."""
    return "sha256:" + hashlib.sha256(spki_der).hexdigest()


def new_key(path: Path | str | None = None, *, overwrite: bool = False,
            collection: Path | str | None = None) -> KeyInfo:
    """Create an ECDSA P-384 key pair: the private key at `path` (mode 0600), the public
    key beside it as PATH.pub; return its KeyInfo.

    Raises UsageError for a path inside `collection` (it would be published with it),
    ProofError when the file exists (unless `overwrite`) or cannot be written.
    """
    path = Path(path) if path is not None else default_key_path()
    if collection is not None and _inside(path, Path(collection)):
        raise UsageError(f"{path} is inside the collection {collection}: a published collection "
                         f"would publish the private key; keep it elsewhere")
    key = ec.generate_private_key(CURVE)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if overwrite:
            path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(path, 0o600)   # whatever the umask said
        _public_path(path).write_bytes(_public_pem(key.public_key()))
    except FileExistsError:
        raise ProofError(str(path), "a key exists there already (replace it explicitly)") from None
    except OSError as exc:
        raise ProofError(str(path), exc.strerror or str(exc)) from None
    return _info(path, key.public_key())


def key_info(path: Path | str | None = None) -> KeyInfo:
    """Return the KeyInfo of the private key at `path` (default: the config folder's)."""
    path = Path(path) if path is not None else default_key_path()
    return _info(path, load_private_key(path).public_key())


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Return the P-384 private key stored at `path`; raise ProofError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProofError(str(path), "no signing key there (make one with: archive keys new)") from None
    except OSError as exc:
        raise ProofError(str(path), exc.strerror or str(exc)) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ProofError(str(path), f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != CURVE.name:
        raise ProofError(str(path), "not an ECDSA P-384 key (WACZ signatures need one)")
    return key


def sign(snapshot: Path | str, collection: Path | str | None = None, *,
         key: Path | str | None = None, replace: bool = False) -> Signed:
    """Sign a snapshot folder (path, id or id prefix): write `signedData` into its
    datapackage-digest.json; return what was signed. The snapshot id does not change.

    The WACZ signing spec gives a package one `signedData` object, not a list, so a
    signature by another key (or one that cannot be read) is replaced only with `replace`;
    signing again with the same key is allowed.
    Raises ProofError (no usable key, or signed by another key), SnapshotNotFound,
    NotASnapshot, StorageError.
    """
    private = load_private_key(Path(key) if key is not None else default_key_path())
    folder = snapshot_folder(snapshot, collection)
    snapshot_id, created = package_facts(folder)
    if not created:   # the WACZ signature binds the package's creation time: there must be one
        raise ProofError(str(folder), f"{DATAPACKAGE} has no created time for the signature to bind")
    doc = load_digest(folder)
    ours = fingerprint(_spki(private.public_key()))
    earlier = signer_of(doc[SIGNED_DATA]) if SIGNED_DATA in doc else None
    if earlier == f"key {ours}":
        earlier = None   # signed again by the same key: nothing of anyone else's is lost
    if earlier is not None and not replace:
        raise ProofError(str(folder), f"already signed by {earlier}; a WACZ package holds one signature: "
                                      "--force replaces it")
    doc[SIGNED_DATA] = signed_data(f"sha256:{snapshot_id}", created, private)
    write_digest(folder, doc)
    return Signed(folder, snapshot_id, ours, created, earlier)


def signer_of(signed: Any) -> str:
    """Name who made a signedData object: "key sha256:<hex>" (anonymous mode), the domain
    (domain-name mode), or "an unreadable signature" (whether or not it verifies)."""
    if isinstance(signed, dict) and isinstance(signed.get("publicKey"), str):
        try:
            return "key " + fingerprint(base64.b64decode(signed["publicKey"], validate=True))
        except ValueError:
            pass
    elif isinstance(signed, dict) and "domainCert" in signed:
        # ascii(): the name comes from the package; no control character of it reaches a terminal
        return f"the domain certificate of {ascii(str(signed.get('domain'))[:200])}"
    return "an unreadable signature"


def signed_data(hash_text: str, created: str, private: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """Return the anonymous-mode signedData object for the digest text `hash_text`."""
    der_signature = private.sign(hash_text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der_signature)
    raw = r.to_bytes(FIELD_BYTES, "big") + s.to_bytes(FIELD_BYTES, "big")
    return {"hash": hash_text, "created": created, "software": f"archive {__version__}",
            "signature": base64.b64encode(raw).decode("ascii"),
            "publicKey": base64.b64encode(_spki(private.public_key())).decode("ascii")}


def check_signature(signed: Any) -> tuple[str | None, str | None]:
    """Check a signedData object's signature over its own `hash`.

    Return (fingerprint of its public key, None) when it verifies, else (fingerprint or
    None, why not): the caller compares `hash` and `created` with the package.
    """
    if not isinstance(signed, dict) or not all(isinstance(signed.get(k), str)
                                               for k in ("hash", "signature", "publicKey")):
        return None, "signedData lacks hash, signature or publicKey"
    try:
        der = base64.b64decode(signed["publicKey"], validate=True)
        public = serialization.load_der_public_key(der)
        raw = base64.b64decode(signed["signature"], validate=True)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return None, f"unreadable publicKey or signature ({exc})"
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != CURVE.name:
        return fingerprint(der), "the public key is not ECDSA P-384"
    if len(raw) != 2 * FIELD_BYTES:
        return fingerprint(der), f"the signature is {len(raw)} bytes, not a raw P-384 r||s of 96"
    r, s = int.from_bytes(raw[:FIELD_BYTES], "big"), int.from_bytes(raw[FIELD_BYTES:], "big")
    try:
        public.verify(encode_dss_signature(r, s), signed["hash"].encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return fingerprint(der), "bad signature: it does not verify with the key it names"
    return fingerprint(der), None


def trusted_fingerprints(paths: list[Path]) -> set[str]:
    """Return the fingerprints of the keys in `paths` (public or private PEM, or base64 SPKI
    as signedData gives it); raise ProofError for a file that holds no key."""
    found = set()
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ProofError(str(path), exc.strerror or str(exc)) from None
        found.add(fingerprint(_spki(_public_key_from(data, path))))
    return found


def _public_key_from(data: bytes, path: Path) -> Any:
    attempts = (lambda: serialization.load_pem_public_key(data),
                lambda: serialization.load_pem_private_key(data, password=None).public_key(),
                lambda: serialization.load_der_public_key(data),
                lambda: serialization.load_der_public_key(base64.b64decode(data.strip(), validate=True)))
    for attempt in attempts:
        try:
            return attempt()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    raise ProofError(str(path), "holds no public or private key (PEM, DER or base64 SPKI)")


def _info(path: Path, public: ec.EllipticCurvePublicKey) -> KeyInfo:
    der = _spki(public)
    return KeyInfo(path, base64.b64encode(der).decode("ascii"), fingerprint(der))


def _spki(public: Any) -> bytes:
    return bytes(public.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def _public_pem(public: Any) -> bytes:
    return bytes(public.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def _public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _inside(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents
