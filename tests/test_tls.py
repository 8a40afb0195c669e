"""TLS evidence: an https capture records the server's chain, protocol and cipher.

The server is a local HTTPS site whose certificate comes from a test CA made by trustme
(root, intermediate, leaf); the capture trusts that root through --ca-bundle. What the
server itself saw of each connection (protocol, cipher) is the independent check of what
the WARC says, and `openssl ciphers -stdname` that of the IANA names.
"""
from __future__ import annotations

import base64
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from warcio.archiveiterator import ArchiveIterator

from archive import capture, verify
from archive.cli import main
from archive.errors import NoAnswer
from archive.write.tls import IANA_CIPHERS

PAGES = {"/": b'<html><head><title>TLS</title><link rel="stylesheet" href="/s.css"></head>'
              b"<body><p>over TLS</p></body></html>",
         "/s.css": b"body { color: black }"}


class HttpsSite:
    """A two-file site over HTTPS on 127.0.0.1, noting the TLS facts of every connection."""

    def __init__(self, folder: Path, maximum: ssl.TLSVersion | None = None):
        self.ca = trustme.CA()
        self.intermediate = self.ca.create_child_ca()
        self.cert = self.intermediate.issue_cert("127.0.0.1", "localhost")
        self.ca_path = folder / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if maximum is not None:
            context.maximum_version = maximum
        self.cert.configure_cert(context)
        self.seen: list[tuple[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.seen.append((self.connection.version(), self.connection.cipher()[0]))  # type: ignore[attr-defined]
                body = PAGES.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/css" if self.path.endswith(".css") else "text/html")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def chain_der(self) -> list[bytes]:
        """The certificates the server sends: leaf, then intermediate."""
        return [x509.load_pem_x509_certificate(p.bytes()).public_bytes(Encoding.DER)
                for p in self.cert.cert_chain_pems]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def https_site(tmp_path):
    site = HttpsSite(tmp_path)
    yield site
    site.close()


def records(folder: Path) -> list:
    found = []
    for warc in sorted((folder / "archive").glob("*.warc.gz")):
        with open(warc, "rb") as f:
            for record in ArchiveIterator(f):
                found.append((record.rec_type, record.rec_headers, record.content_stream().read()))
    return found


def all_of(headers, name: str) -> list[str]:
    return [v for k, v in headers.headers if k == name]


def fields(block: bytes) -> list[tuple[str, str]]:
    return [tuple(line.split(": ", 1)) for line in block.decode().split("\r\n") if line]  # type: ignore[misc]


def test_https_capture_records_tls_evidence(https_site, collection):
    snap = capture(https_site.url, collection, depth=0, ca_bundle=str(https_site.ca_path))
    got = records(snap.path)   # warcio reads every record, metadata too
    responses = [(h, b) for t, h, b in got if t == "response"]
    metadata = {h.get_header("WARC-Concurrent-To"): (h, b) for t, h, b in got if t == "metadata"}
    assert len(responses) == 2 == len(metadata) == len(https_site.seen)
    version, cipher = https_site.seen[0]
    assert version == "TLSv1.3"
    for headers, _ in responses:
        assert all_of(headers, "WARC-Protocol") == ["http/1.1", "tls/1.3"]
        assert headers.get_header("WARC-Cipher-Suite") == cipher   # TLS 1.3 names are IANA names
        meta, block = metadata[headers.get_header("WARC-Record-ID")]
        assert meta.get_header("Content-Type") == "application/warc-fields"
        assert meta.get_header("WARC-Date") == headers.get_header("WARC-Date")
        assert meta.get_header("WARC-Target-URI") == headers.get_header("WARC-Target-URI")
        listed = fields(block)
        assert ("protocol", "tls/1.3") in listed and ("cipher-suite", cipher) in listed
        chain = [base64.b64decode(v) for k, v in listed if k == "certificate"]
        assert chain == https_site.chain_der()   # the whole chain, leaf first, byte for byte
    report = verify(snap.path)
    assert report.ok, report.problems
    assert report.records == len(got)
    index = (snap.path / "indexes" / "index.cdx").read_text().splitlines()
    assert len(index) == 2   # metadata records are not replayable captures


def test_tls12_cipher_is_written_by_its_iana_name(tmp_path, collection):
    site = HttpsSite(tmp_path, maximum=ssl.TLSVersion.TLSv1_2)
    try:
        snap = capture(site.url, collection, depth=0, ca_bundle=str(site.ca_path))
    finally:
        site.close()
    version, cipher = site.seen[0]
    assert version == "TLSv1.2"
    stdnames = subprocess.run(["openssl", "ciphers", "-stdname", "ALL"], capture_output=True, text=True,
                              check=True).stdout
    iana = next(line.split()[0] for line in stdnames.splitlines() if line.split()[2] == cipher)
    assert IANA_CIPHERS[cipher] == iana
    response = next(h for t, h, _ in records(snap.path) if t == "response")
    assert all_of(response, "WARC-Protocol") == ["http/1.1", "tls/1.2"]
    assert response.get_header("WARC-Cipher-Suite") == iana


def test_the_capture_trusts_only_the_ca_given(https_site, collection):
    with pytest.raises(NoAnswer, match="tls-error"):
        capture(https_site.url, collection, depth=0)


def test_plain_http_has_no_tls_records(capture_page):
    snap = capture_page("/about.html")
    got = records(snap.path)
    assert "metadata" not in {t for t, _, _ in got}
    assert all(h.get_header("WARC-Protocol") is None for _, h, _ in got)


def test_cli_ca_bundle(https_site, collection, tmp_path, capsys):
    assert main(["capture", "-C", str(collection), "--depth", "0", "--ca-bundle", str(https_site.ca_path),
                 "--verify", https_site.url]) == 0
    assert "OK " in capsys.readouterr().out
    assert main(["capture", "-C", str(collection), "--ca-bundle", str(tmp_path / "none.pem"),
                 https_site.url]) == 2
    assert "--ca-bundle" in capsys.readouterr().err


def test_https_export_validates(https_site, collection, tmp_path):
    snap = capture(https_site.url, collection, depth=0, ca_bundle=str(https_site.ca_path))
    wacz = Path(__file__).resolve().parent.parent / ".venv-pywb" / "bin" / "wacz"
    if not wacz.exists():
        pytest.skip("py-wacz is installed by `make pywb`")
    dest = tmp_path / "tls.wacz"
    assert main(["export", str(snap.path), "--wacz", str(dest)]) == 0
    result = subprocess.run([wacz, "validate", "-f", dest], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "is valid" in result.stdout, result.stdout + result.stderr


def test_repair_keeps_the_metadata_record_after_the_last_response(https_site, collection, tmp_path):
    from archive.write.resume import repair

    snap = capture(https_site.url, collection, depth=0, ca_bundle=str(https_site.ca_path))
    warc = next((snap.path / "archive").glob("*.warc.gz"))
    whole = warc.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(whole + whole[:40])   # the start of a record the process died writing
    assert repair(cut) == len(whole)                   # everything up to the TLS record stays
    assert [t for t, _, _ in records_of(cut)][-2:] == ["response", "metadata"]


def records_of(path: Path) -> list:
    with open(path, "rb") as f:
        return [(r.rec_type, r.rec_headers, r.content_stream().read()) for r in ArchiveIterator(f)]
