"""A real RFC 3161 time-stamping authority on 127.0.0.1: `openssl ts -reply` behind HTTP.

A test CA (its own root) issues the TSA certificate, whose extended key usage is critical
timeStamping, as RFC 3161 requires. Every key and certificate is made here, per test run.
"""
from __future__ import annotations

import subprocess
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(folder: Path, common: str = "Test Root CA") -> tuple[Path, object, x509.Certificate]:
    """Write a self-signed CA certificate as PEM; return (path, key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = folder / f"{common.replace(' ', '-').lower()}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_tsa_cert(folder: Path, ca_key: object, ca_cert: x509.Certificate, *, eku_critical: bool = True,
                  usage: tuple = (ExtendedKeyUsageOID.TIME_STAMPING,)) -> tuple[Path, Path]:
    """Write a TSA certificate and its RSA key issued by the CA; return (cert path, key path)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("Test TSA")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(usage)), critical=eku_critical)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .sign(ca_key, hashes.SHA256()))   # type: ignore[arg-type]
    cert_path, key_path = folder / "tsa.pem", folder / "tsa.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TSA:
    """`openssl ts -reply` served over HTTP on 127.0.0.1; `url` is where to POST queries."""

    def __init__(self, **cert_options: object):
        self._tmp = tempfile.TemporaryDirectory(prefix="tsa-")
        self.dir = Path(self._tmp.name)
        self.ca_path, ca_key, ca_cert = make_ca(self.dir)
        self.cert_path, self.key_path = make_tsa_cert(self.dir, ca_key, ca_cert, **cert_options)  # type: ignore[arg-type]
        (self.dir / "serial").write_text("01\n")
        self.config = self.dir / "tsa.cnf"
        self.config.write_text(TSA_CONFIG.format(dir=self.dir))
        self.queries = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, query: bytes) -> bytes:
        """Return openssl's reply to a DER query (the signer certificate and CA in it)."""
        with self.lock:   # openssl writes the serial file
            self.queries += 1
            query_path = self.dir / f"q{self.queries}.tsq"
            query_path.write_bytes(query)
            out = subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.config), "-queryfile", str(query_path),
                 "-signer", str(self.cert_path), "-inkey", str(self.key_path), "-chain", str(self.ca_path)],
                capture_output=True, timeout=30, check=True)
        return out.stdout

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body, status = tsa.reply(query), 200
                except subprocess.CalledProcessError:
                    body, status = b"bad query", 400
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._tmp.cleanup()
