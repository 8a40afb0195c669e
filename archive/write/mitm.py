"""The capture's own certificate authority, for the browser's https through the recording proxy.

Made per capture with `cryptography`: an EC P-256 CA, one leaf key, and a leaf certificate per
host (DNS name or IP address in subjectAltName, RFC 5280 section 4.2.1.6) signed by the CA.
Only the capture's browser profile trusts it, through Chromium's
`--ignore-certificate-errors-spki-list` naming the leaf key's SPKI hash (base64 SHA-256 of the
DER SubjectPublicKeyInfo); nothing is added to a system or user trust store. Keys and
certificates live in `folder` (the capture's spool) and the folder is deleted on exit.
What the browser is shown is never evidence: the record of an https exchange is made by the
fetch layer's own TLS connection to the server (write/tls.py).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import shutil
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


class HostCerts:
    """`context(host)` is an `ssl.SSLContext` serving a certificate for `host` (cached);
    `chromium_args` the flag that makes the browser accept them. A context manager."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.not_before, self.not_after = now - DAY, now + 7 * DAY
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = _name("archive capture CA (this capture only)")
        self.ca_cert = (x509.CertificateBuilder().subject_name(self.ca_name).issuer_name(self.ca_name)
                        .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                        .not_valid_before(self.not_before).not_valid_after(self.not_after)
                        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                        .sign(self.ca_key, hashes.SHA256()))
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        spki = self.leaf_key.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        self.chromium_args = (f"--ignore-certificate-errors-spki-list="
                              f"{base64.b64encode(hashlib.sha256(spki).digest()).decode()}",)
        self.key_path = folder / "leaf-key.pem"
        self.key_path.touch(mode=0o600)
        self.key_path.write_bytes(self.leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.lock = threading.Lock()

    def context(self, host: str) -> ssl.SSLContext:
        """The server-side context for `host` (a DNS name or an IP address literal)."""
        with self.lock:
            if host not in self.contexts:
                self.contexts[host] = self._make(host)
            return self.contexts[host]

    def _make(self, host: str) -> ssl.SSLContext:
        try:
            alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alt = x509.DNSName(host)
        cert = (x509.CertificateBuilder().subject_name(_name(host[:64] or "host")).issuer_name(self.ca_name)
                .public_key(self.leaf_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(self.not_before).not_valid_after(self.not_after)
                .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        chain = self.folder / f"chain-{len(self.contexts)}.pem"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                          + self.ca_cert.public_bytes(serialization.Encoding.PEM))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, self.key_path)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> HostCerts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
