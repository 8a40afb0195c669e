"""The CMS side of an RFC 3161 token: its parts, its signature, its signer and that signer's path.

asn1crypto reads the structures and cryptography checks the signatures; nothing here reads
DER by hand. The checks follow RFC 3161 and RFC 5652: the signed attributes hold the
TSTInfo's content type and digest, the ESS signing-certificate attribute names the signer
certificate, which must carry a critical extended key usage of timeStamping only and be
valid at the attested time. A trust anchor is reached through the certificates carried in
the token (and stored beside it), each checked as the issuer of the one below.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

MAX_DEPTH = 8
ESS_ATTRIBUTES = ("signing_certificate", "signing_certificate_v2")
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class TokenError(Exception):
    """A token that is malformed or does not verify; the message says why."""


# what asn1crypto and cryptography raise on a malformed structure, read lazily
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


@dataclass(frozen=True)
class ParsedToken:
    """The parts of a TimeStampToken that the checks need."""

    signer_info: Any               # cms.SignerInfo
    tst_info: Any                  # tsp.TSTInfo
    tst_der: bytes                 # the encapsulated TSTInfo as signed
    certificates: tuple[bytes, ...]  # DER of the certificates the token carries
    gen_time: datetime
    imprint: tuple[str, bytes]     # (hash algorithm, hashed message)


def parse_token(der: bytes) -> ParsedToken:
    """Return the parts of a DER TimeStampToken; raise TokenError when it is not one."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise TokenError("not CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TokenError("the signed content is not a TSTInfo")
        tst_der = bytes(encap["content"].contents)
        tst = tsp.TSTInfo.load(tst_der, strict=True)
        if len(signed["signer_infos"]) != 1:
            raise TokenError(f"{len(signed['signer_infos'])} signers, not one")
        certs = tuple(bytes(c.chosen.dump()) for c in signed["certificates"] or [] if c.name == "certificate")
        imprint = tst["message_imprint"]
        gen_time = tst["gen_time"].native
        if not isinstance(gen_time, datetime) or gen_time.tzinfo is None:
            raise TokenError("the token's time has no time zone (RFC 3161 requires UTC)")
        signer_info = signed["signer_infos"][0]
        signer_info.native   # parse it whole now: a malformed part fails here, not half-way
        return ParsedToken(signer_info, tst, tst_der, certs, gen_time,
                           (imprint["hash_algorithm"]["algorithm"].native, bytes(imprint["hashed_message"].native)))
    except MALFORMED as exc:
        raise TokenError(f"malformed token: {exc}") from None


def verify_signer(token: ParsedToken, extra: list[bytes],
                  anchors: list[x509.Certificate] | None) -> tuple[str, bool | None, str | None]:
    """Check the token's CMS signature and its signer; return (signer subject, trusted, why).

    `trusted` is None without anchors, else whether the signer chains to one (`why` says
    where the path broke). Raise TokenError when the token itself does not verify.
    """
    try:
        return _verify_signer(token, extra, anchors)
    except MALFORMED as exc:   # a part read only now (an attribute, the ESS list) is malformed
        raise TokenError(f"malformed token: {type(exc).__name__}: {exc}") from None


def _verify_signer(token: ParsedToken, extra: list[bytes],
                   anchors: list[x509.Certificate] | None) -> tuple[str, bool | None, str | None]:
    pool = _certificates(list(token.certificates) + extra)
    signer = _signer_certificate(token.signer_info, pool)
    attrs = _signed_attributes(token.signer_info)
    algorithm = token.signer_info["digest_algorithm"]["algorithm"].native
    if _digest(algorithm, token.tst_der) != attrs.get("message_digest"):
        raise TokenError("the TSTInfo does not match the signed message digest (altered token?)")
    if attrs.get("content_type") != "tst_info":
        raise TokenError("the signed content type is not TSTInfo")
    _check_signature(token.signer_info, signer)
    _check_ess(attrs, signer)
    _check_usage(signer, token.gen_time)
    subject = signer.subject.rfc4514_string()
    if anchors is None:
        return subject, None, None
    why = _path_to_anchor(signer, pool, anchors, token.gen_time)
    return subject, why is None, why


def _certificates(ders: list[bytes]) -> list[x509.Certificate]:
    found = []
    for der in ders:
        try:
            found.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise TokenError(f"an unreadable certificate ({exc})") from None
    return found


def _signer_certificate(signer_info: Any, pool: list[x509.Certificate]) -> x509.Certificate:
    sid = signer_info["sid"]
    for cert in pool:
        if sid.name == "issuer_and_serial_number":
            issuer = sid.chosen["issuer"].dump()
            if cert.serial_number == sid.chosen["serial_number"].native and \
                    cert.issuer.public_bytes() == issuer:
                return cert
        elif _key_identifier(cert) == sid.chosen.native:
            return cert
    raise TokenError("the signer's certificate is neither in the token nor stored with it")


def _key_identifier(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _signed_attributes(signer_info: Any) -> dict[str, Any]:
    attrs = signer_info["signed_attrs"]
    if not attrs:
        raise TokenError("no signed attributes (RFC 3161 requires them)")
    found: dict[str, Any] = {}
    for attr in attrs:
        name, value = attr["type"].native, attr["values"][0]
        found[name] = value if name in ESS_ATTRIBUTES else value.native   # ESS: read field by field
    return found


def _digest(algorithm: str, data: bytes) -> bytes:
    if algorithm not in HASHES:
        raise TokenError(f"unsupported digest algorithm {algorithm}")
    return hashlib.new(algorithm, data).digest()


def _check_signature(signer_info: Any, cert: x509.Certificate) -> None:
    # The signature covers the signed attributes as a SET OF, not in their [0] IMPLICIT form.
    signed = signer_info["signed_attrs"].untag().dump()
    algo = signer_info["signature_algorithm"]
    name = signer_info["digest_algorithm"]["algorithm"].native
    if name not in HASHES:
        raise TokenError(f"unsupported digest algorithm {name}")
    digest = HASHES[name]()
    signature = bytes(signer_info["signature"].native)
    key = cert.public_key()
    try:
        kind = algo.signature_algo
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), digest)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = algo["parameters"]
            pss_hash = HASHES[params["hash_algorithm"]["algorithm"].native]()
            key.verify(signature, signed, padding.PSS(padding.MGF1(pss_hash), params["salt_length"].native), pss_hash)
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(digest))
        else:
            raise TokenError(f"unsupported signature algorithm {kind} for this key")
    except InvalidSignature:
        raise TokenError("the CMS signature does not verify (altered token?)") from None
    except (ValueError, KeyError) as exc:
        raise TokenError(f"unusable signature ({exc})") from None


def _check_ess(attrs: dict[str, Any], cert: x509.Certificate) -> None:
    """The ESS signing-certificate attribute must name the signer certificate (RFC 3161, 5816)."""
    der = cert.public_bytes(Encoding.DER)
    if "signing_certificate_v2" in attrs:
        first = attrs["signing_certificate_v2"]["certs"][0]
        algorithm = first["hash_algorithm"]["algorithm"].native
        expected = bytes(first["cert_hash"].native)
    elif "signing_certificate" in attrs:
        algorithm, expected = "sha1", bytes(attrs["signing_certificate"]["certs"][0]["cert_hash"].native)
    else:
        raise TokenError("no ESS signing-certificate attribute names the signer")
    if _digest(algorithm, der) != expected:
        raise TokenError("the signing-certificate attribute names another certificate")


def _check_usage(cert: x509.Certificate, when: datetime) -> None:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TokenError("the signer certificate has no extended key usage (timeStamping required)") from None
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TokenError("the signer certificate's extended key usage is not critical timeStamping only")
    _check_validity(cert, when)


def _check_validity(cert: x509.Certificate, when: datetime) -> None:
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise TokenError(f"certificate {cert.subject.rfc4514_string()} was not valid at {when.isoformat()}")


def _path_to_anchor(cert: x509.Certificate, pool: list[x509.Certificate], anchors: list[x509.Certificate],
                    when: datetime) -> str | None:
    """Return None when `cert` reaches an anchor through `pool`, else where the path broke."""
    for _ in range(MAX_DEPTH):
        if cert in anchors or any(_issued(cert, a) for a in anchors):
            return None
        parent = next((c for c in pool if c != cert and _issued(cert, c) and _is_ca(c)), None)
        if parent is None:
            return (f"{cert.issuer.rfc4514_string()} is not among the TSA certificates given "
                    f"(--tsa-cert), nor reached through the certificates carried")
        try:
            _check_validity(parent, when)
        except TokenError as exc:
            return str(exc)
        cert = parent
    return "the certificate path is too long"


def _issued(child: x509.Certificate, parent: x509.Certificate) -> bool:
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
