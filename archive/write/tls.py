"""TLS evidence of an https exchange: the server's certificate chain, protocol and cipher.

Read from the connection's socket when the response arrives (tap.py), carried on the
Exchange, and written by archive.warc (writer.py, tlsfields.py) as `WARC-Protocol` /
`WARC-Cipher-Suite` on the response (IIPC WARC extensions: "tls/1.3", the IANA cipher suite
name) and as a `metadata` record of type application/warc-fields beside it. The chain is as
the server sent it, leaf first: evidence of which certificate the server presented, not a
judgement of it.

The peer's whole chain is public in `ssl` from Python 3.13 (get_unverified_chain); 3.10
to 3.12 have the same call on the private `_sslobj`, used here without pyOpenSSL. Where
neither exists only the leaf certificate is recorded.
"""
from __future__ import annotations

import ssl
from typing import Any

from archive.models import TlsInfo

ENCODING_DER = 2   # _ssl.ENCODING_DER: what Certificate.public_bytes takes for DER

PROTOCOLS = {"TLSv1": "tls/1.0", "TLSv1.1": "tls/1.1", "TLSv1.2": "tls/1.2", "TLSv1.3": "tls/1.3",
             "SSLv3": "ssl/3", "SSLv2": "ssl/2"}
# OpenSSL's names of the TLS 1.2 and older suites a client may negotiate, and their IANA
# names (`openssl ciphers -stdname`). TLS 1.3 suites have their IANA names in OpenSSL already.
IANA_CIPHERS = {
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "DHE-RSA-AES256-GCM-SHA384": "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "DHE-RSA-CHACHA20-POLY1305": "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "DHE-RSA-AES128-GCM-SHA256": "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "ECDHE-RSA-AES256-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "DHE-RSA-AES256-SHA256": "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    "ECDHE-ECDSA-AES128-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "DHE-RSA-AES128-SHA256": "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "DHE-RSA-AES256-SHA": "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "DHE-RSA-AES128-SHA": "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-SHA256": "TLS_RSA_WITH_AES_256_CBC_SHA256",
    "AES128-SHA256": "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
    "AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA",
}


def iana_cipher(openssl_name: str) -> str | None:
    """Return the IANA name of a cipher suite OpenSSL names, or None when unknown.

    >>> iana_cipher("ECDHE-RSA-AES128-GCM-SHA256"), iana_cipher("TLS_AES_256_GCM_SHA384")
    ('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384')
    """
    if openssl_name.startswith("TLS_"):
        return openssl_name
    return IANA_CIPHERS.get(openssl_name)


def tls_info(sock: Any, http_version: int | None = None) -> TlsInfo | None:
    """Return the TLS facts of a connected socket, or None when it is not TLS."""
    version = getattr(sock, "version", None)
    cipher = getattr(sock, "cipher", None)
    if not callable(version) or not callable(cipher):
        return None
    try:
        protocol, suite = version(), cipher()
    except (OSError, ValueError):
        return None
    if not protocol or not suite:
        return None
    http = {10: "http/1.0", 11: "http/1.1"}.get(http_version or 0)
    protocols = tuple(p for p in (http, PROTOCOLS.get(protocol, protocol.lower())) if p)
    return TlsInfo(protocols=protocols, cipher_suite=iana_cipher(suite[0]), openssl_cipher=suite[0],
                   certificates=_chain(sock))


def _chain(sock: Any) -> tuple[bytes, ...]:
    """Return the certificates the server sent, DER, leaf first."""
    getter = getattr(sock, "get_unverified_chain", None) or \
        getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
            return tuple(c if isinstance(c, bytes) else c.public_bytes(ENCODING_DER) for c in chain)
        except (OSError, ValueError, AttributeError, ssl.SSLError):
            pass
    try:
        leaf = sock.getpeercert(binary_form=True)
    except (OSError, ValueError, AttributeError):
        return ()
    return (leaf,) if leaf else ()
