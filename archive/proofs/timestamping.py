"""RFC 3161 trusted timestamps over a snapshot id, and their offline check.

The message imprint is the snapshot id itself (SHA-256 of datapackage.json), so anyone can
check a token without this program: `openssl ts -verify -digest <id> -in token.der
-token_in -CAfile tsa-root.pem`. Each token is kept in datapackage-digest.json:

    "timestamps": [{"token": "<base64 DER TimeStampToken (CMS ContentInfo)>",
                    "certificates": ["<base64 DER>", ...],   # the TSA chain the token carried
                    "hash": "sha256:<id>", "time": "<genTime, RFC 3339>", "tsa": "<URL asked>"}]

`time` and `hash` are for people; verify reads both from the token. ASN.1 is parsed by
asn1crypto and signatures are checked by cryptography. The certificates carried only build
the path to a trust anchor; trust itself comes from certificates the user gives.
"""
from __future__ import annotations

import base64
import http.client
import ipaddress
import re
import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

from asn1crypto import cms, core, tsp
from cryptography import x509

from archive.errors import ProofError
from archive.models import rfc3339

from .digest import TIMESTAMPS, load_digest, package_facts, snapshot_folder, write_digest
from .tsacheck import TokenError, parse_token, verify_signer

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY = 1 << 20


@dataclass(frozen=True)
class Stamped:
    """A token just added to a snapshot."""

    path: Path
    snapshot_id: str
    tsa: str
    time: str
    signer: str

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "id": self.snapshot_id, "tsa": self.tsa, "time": self.time,
                "signer": self.signer}


@dataclass(frozen=True)
class TokenCheck:
    """The offline check of one stored token."""

    ok: bool                    # imprint, CMS signature and signer's key usage all hold
    trusted: bool | None        # chains to a given anchor; None when no anchor was given
    why: str | None = None      # what failed (or why it is not trusted)
    time: str | None = None     # the attested time (genTime), RFC 3339 UTC
    signer: str | None = None   # the TSA certificate's subject
    tsa: str | None = None      # the URL it was asked of, as stored


def timestamp(snapshot: Path | str, collection: Path | str | None = None, *,
              tsa: str | Sequence[str], timeout: float = 30.0, proxy: str | None = None) -> list[Stamped]:
    """Ask each time-stamping authority in `tsa` for a token over the snapshot id, check it,
    and add it to the snapshot's datapackage-digest.json; return what was added. A TSA off
    loopback is asked through `proxy` when given (capture --proxy), else the environment's.

    Raises ProofError when a TSA cannot be reached or answers with no valid token (nothing
    is added then), SnapshotNotFound, NotASnapshot, StorageError.
    """
    urls = [tsa] if isinstance(tsa, str) else list(tsa)
    folder = snapshot_folder(snapshot, collection)
    snapshot_id, _created = package_facts(folder)
    entries = [(url, request_token(url, bytes.fromhex(snapshot_id), timeout, proxy)) for url in urls]
    doc = load_digest(folder)
    stored = doc.get(TIMESTAMPS)
    stored = stored if isinstance(stored, list) else []
    added = []
    for url, token in entries:
        entry, check = _entry(url, token, snapshot_id)
        stored.append(entry)
        added.append(Stamped(folder, snapshot_id, url, str(check.time), str(check.signer)))
    doc[TIMESTAMPS] = stored
    write_digest(folder, doc)
    return added


def request_token(url: str, digest: bytes, timeout: float = 30.0, proxy: str | None = None) -> bytes:
    """Ask the TSA at `url` for a token over the SHA-256 `digest`; return the token's DER.

    Raises ProofError for no answer, a refusal, or a token that is not over `digest`.
    """
    nonce = secrets.randbits(63)
    query = tsp.TimeStampReq({"version": 1, "nonce": nonce, "cert_req": True, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest}}).dump()
    reply = _post(url, query, timeout, proxy)
    try:
        resp = _Reply.load(reply, strict=True)
        status = resp["status"]["status"].native
        text = " ".join(resp["status"]["status_string"].native or [])
        token = resp["time_stamp_token"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ProofError(url, f"the answer is not an RFC 3161 reply ({exc})") from None
    if status not in ("granted", "granted_with_mods") or not token:
        raise ProofError(url, f"the TSA refused: {status}{': ' + text if text else ''}")
    try:
        tst = parse_token(token.dump()).tst_info
    except TokenError as exc:
        raise ProofError(url, f"unusable token: {exc}") from None
    if tst["nonce"].native != nonce:
        raise ProofError(url, "the token does not answer this request (nonce differs)")
    return bytes(token.dump())


class _Reply(core.Sequence):   # type: ignore[misc]
    """TimeStampResp (RFC 3161 section 2.4.2) with the token optional, as the RFC has it:
    a refusal carries only its status (asn1crypto's own class requires the token)."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def _proxied(url: str) -> bool:
    """Whether a query to `url` may go through a proxy (capture's --proxy, or the environment's
    http_proxy, https_proxy and no_proxy, as urllib reads them): a TSA elsewhere is often
    reachable only through one; a TSA on this machine never is (a proxy knows nothing of its
    loopback). This machine is what the connection would reach: localhost and *.localhost
    (RFC 6761, 6.3), a loopback or unspecified address in any form the resolver takes
    (inet_aton(3): 127.1, 2130706433, 0x7f000001; IPv4-mapped IPv6), percent-escapes decoded
    as urllib decodes them."""
    try:
        host = urllib.parse.unquote(urllib.parse.urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:   # no URL to speak of: asked as it is, and refused in one line
        return False
    if host in ("", "localhost") or host.endswith(".localhost"):
        return False
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return True   # a name: where it leads is the resolver's, as for any client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (address.is_loopback or address.is_unspecified)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A TSA answers the query itself (RFC 3161, 3.4): a redirect is refused as an answer
    (urllib would carry the query's headers, a proxy's credentials among them, to wherever it
    points, past the choice of proxy made for the TSA)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _through(request: urllib.request.Request, proxy: str) -> None:
    """Send `request` through `proxy` ("[http://][user:password@]host:port", capture's --proxy),
    whatever the environment's no_proxy says: as the capture's own requests. Its credentials
    go as Basic (RFC 7617) in Proxy-Authorization, on a CONNECT for an https:// TSA.

    Raises ProofError (naming no credential) for a proxy that is not such a URL."""
    try:
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port == 0:
            raise ValueError   # (.port raises it too, for a port that is not one)
    except ValueError:
        raise ProofError(request.full_url, "--proxy is not a proxy URL (http://[user:password@]host:port)") from None
    if parts.username is not None:
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        request.add_header("Proxy-Authorization", "Basic " + base64.b64encode(pair.encode()).decode("ascii"))
    request.set_proxy(parts.netloc.rpartition("@")[2], parts.scheme)


def _without_credentials(text: str) -> str:
    """`text` (an error message) with the password of any user:password@ in it left out: a
    malformed proxy variable is echoed by urllib's message whole."""
    return _CREDENTIALS.sub(r"\1:...@", text)


_CREDENTIALS = re.compile(r"([^\s/@:'\"]*):[^\s@'\"]*@")


def _post(url: str, query: bytes, timeout: float, proxy: str | None = None) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise ProofError(url, "a TSA is asked over http:// or https://")
    outside = _proxied(url)
    environment: dict[str, str] | None = None if outside and not proxy else {}   # None: the environment's
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(environment), _NoRedirect())
    try:   # (ProofError, raised by _through, is none of the errors caught here)
        request = urllib.request.Request(url, data=query, method="POST",
                                         headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE})
        if outside and proxy:
            _through(request, proxy)
        with opener.open(request, timeout=timeout) as answer:
            ctype = answer.headers.get("Content-Type", "")
            data: bytes = answer.read(MAX_REPLY + 1)
    except urllib.error.HTTPError as exc:
        raise ProofError(url, f"the TSA answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = _without_credentials(str(getattr(exc, "reason", exc) or type(exc).__name__))
        raise ProofError(url, f"no answer from the TSA ({reason})") from None
    if len(data) > MAX_REPLY:
        raise ProofError(url, "the TSA's answer is too large")
    if ctype and REPLY_TYPE not in ctype:
        raise ProofError(url, f"the TSA answered {ctype}, not {REPLY_TYPE}")
    return data


def _entry(url: str, token: bytes, snapshot_id: str) -> tuple[dict[str, Any], TokenCheck]:
    """Return the stored form of a fresh token, and its check; raise ProofError when it fails."""
    parsed = parse_token(token)
    entry = {"token": base64.b64encode(token).decode("ascii"),
             "certificates": [base64.b64encode(c).decode("ascii") for c in parsed.certificates],
             "hash": f"sha256:{snapshot_id}", "tsa": url}
    check = check_entry(entry, snapshot_id, None)
    if not check.ok:
        raise ProofError(url, f"the TSA's token does not verify: {check.why}")
    entry["time"] = str(check.time)
    return entry, check


def check_entry(entry: Any, snapshot_id: str, anchors: list[x509.Certificate] | None) -> TokenCheck:
    """Check one stored timestamp entry against the snapshot id, offline.

    With `anchors`, the signer must chain to one of them through the certificates carried.
    """
    tsa = entry.get("tsa") if isinstance(entry, dict) else None
    try:
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            raise TokenError("the entry has no token")
        token = base64.b64decode(entry["token"], validate=True)
        extra = [base64.b64decode(c, validate=True) for c in entry.get("certificates") or []]
        parsed = parse_token(token)
    except (TokenError, ValueError, TypeError) as exc:
        return TokenCheck(False, None, f"unreadable token ({exc})", tsa=tsa)
    when = rfc3339(parsed.gen_time.astimezone(timezone.utc))
    imprint = parsed.imprint
    if imprint != ("sha256", bytes.fromhex(snapshot_id)):
        found = f"{imprint[0]}:{imprint[1].hex()}"
        return TokenCheck(False, None, f"the token is over another digest ({found}, not sha256:{snapshot_id})",
                          when, tsa=tsa)
    try:
        signer, trusted, why = verify_signer(parsed, extra, anchors)
    except TokenError as exc:
        return TokenCheck(False, None, str(exc), when, tsa=tsa)
    return TokenCheck(True, trusted, why, when, signer, tsa)


def load_anchors(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Return the certificates in `paths` (PEM, several to a file, or DER); raise ProofError."""
    anchors: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ProofError(str(path), exc.strerror or str(exc)) from None
        try:
            anchors += x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data \
                else [x509.load_der_x509_certificate(data)]
        except ValueError as exc:
            raise ProofError(str(path), f"holds no certificate ({exc})") from None
    return anchors
