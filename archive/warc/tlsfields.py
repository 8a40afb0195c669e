"""TLS evidence as a WARC holds it: the block of the `metadata` record beside an https response.

The record is of type application/warc-fields (WARC 1.1, section 7): one `name: value` line
each for the protocols, the IANA cipher suite, OpenSSL's name for it and every certificate the
server sent (base64 DER, leaf first), with each certificate's SHA-256 for a quick look-up.
"""
from __future__ import annotations

import base64
import hashlib

from archive.models import TlsInfo


def warc_fields(info: TlsInfo) -> bytes:
    """Return the block of the TLS metadata record (application/warc-fields).

    >>> info = TlsInfo(("http/1.1", "tls/1.3"), "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", (b"x",))
    >>> print(warc_fields(info).decode().replace("\\r", ""), end="")
    protocol: http/1.1
    protocol: tls/1.3
    cipher-suite: TLS_AES_256_GCM_SHA384
    openssl-cipher: TLS_AES_256_GCM_SHA384
    certificate: eA==
    certificate-sha256: 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881
    """
    lines = [f"protocol: {p}" for p in info.protocols]
    if info.cipher_suite:
        lines.append(f"cipher-suite: {info.cipher_suite}")
    lines.append(f"openssl-cipher: {info.openssl_cipher}")
    for der in info.certificates:   # leaf first, as the server sent them
        lines.append(f"certificate: {base64.b64encode(der).decode('ascii')}")
        lines.append(f"certificate-sha256: {hashlib.sha256(der).hexdigest()}")
    return "".join(line + "\r\n" for line in lines).encode("ascii")
