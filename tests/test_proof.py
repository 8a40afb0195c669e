"""Proof of capture: signing keys, WACZ signedData, RFC 3161 timestamps, checked by verify.

Signatures are checked again with openssl and asn1crypto, and tokens with `openssl ts
-verify`, so the tests do not only agree with themselves. The TSA is tests/tsa.py: openssl
behind HTTP on 127.0.0.1.
"""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from asn1crypto.algos import DSASignature
from cryptography.x509.oid import ExtendedKeyUsageOID
from ports import proxy_environment
from tsa import TSA, make_ca

from archive import verify
from archive.cli import main
from archive.errors import ProofError, UsageError
from archive.proofs.signing import default_key_path, key_info, load_private_key, new_key, sign, signed_data
from archive.proofs.timestamping import request_token, timestamp
from archive.proofs.tsacheck import parse_token
from archive.snapshot.package import DIGEST_FILE


@pytest.fixture(scope="module")
def tsa():
    server = TSA()
    yield server
    server.close()


@pytest.fixture
def snap(demo_snapshot, tmp_path) -> Path:
    """A copy of the demo snapshot in a collection of its own, free to change."""
    dest = tmp_path / "snapshots" / demo_snapshot.path.name
    shutil.copytree(demo_snapshot.path, dest)
    return dest


@pytest.fixture
def key(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return new_key().path


def digest_doc(folder: Path) -> dict:
    return json.loads((folder / DIGEST_FILE).read_text())


def write_doc(folder: Path, doc: dict) -> None:
    (folder / DIGEST_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def snapshot_id(folder: Path) -> str:
    return hashlib.sha256((folder / "datapackage.json").read_bytes()).hexdigest()


# -- keys --------------------------------------------------------------------------------------
def test_new_key_lives_in_the_config_folder_private(key, tmp_path):
    assert key == tmp_path / "config" / "archive" / "signing-key.pem" == default_key_path()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()
    pub = key.with_name(key.name + ".pub")
    out = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-noout", "-text"],
                         capture_output=True, text=True, check=True).stdout
    assert "384 bit" in out and "P-384" in out
    old = key_info(key).fingerprint
    with pytest.raises(ProofError, match="exists there already"):
        new_key()
    assert key_info(key).fingerprint == old
    assert new_key(overwrite=True).fingerprint != old


def test_a_key_inside_the_collection_is_refused(tmp_path):
    with pytest.raises(UsageError, match="inside the collection"):
        new_key(tmp_path / "snapshots" / "key.pem", collection=tmp_path / "snapshots")


def test_cli_keys_new_and_show(tmp_path, capsys):
    path = tmp_path / "k" / "my.pem"
    assert main(["keys", "new", "--key", str(path), "-C", str(tmp_path / "c")]) == 0
    made = capsys.readouterr().out
    assert main(["keys", "show", "--key", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["fingerprint"] in made and shown["fingerprint"].startswith("sha256:")
    assert main(["keys", "new", "--key", str(path)]) == 2
    assert capsys.readouterr().err.startswith("archive: error: ")


# -- signatures --------------------------------------------------------------------------------
def test_signed_data_is_the_wacz_anonymous_form(snap, key, tmp_path):
    before = snapshot_id(snap)
    signed = sign(snap, key=key)
    assert signed.snapshot_id == before == snapshot_id(snap)   # the id does not change
    doc = digest_doc(snap)
    data = doc["signedData"]
    created = json.loads((snap / "datapackage.json").read_text())["created"]
    assert doc["hash"] == data["hash"] == f"sha256:{before}"
    assert data["created"] == created
    assert set(data) == {"hash", "created", "software", "signature", "publicKey"}
    raw = base64.b64decode(data["signature"])
    assert len(raw) == 96                                       # raw r||s of P-384, not DER
    # check it with openssl: the SPKI as a PEM key, r||s turned into DER by asn1crypto
    pem = tmp_path / "pub.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\n" + data["publicKey"] + "\n-----END PUBLIC KEY-----\n")
    (tmp_path / "sig.der").write_bytes(DSASignature.from_p1363(raw).dump())
    (tmp_path / "msg").write_bytes(data["hash"].encode("utf-8"))
    ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pem), "-signature",
                         str(tmp_path / "sig.der"), str(tmp_path / "msg")], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    assert verify(snap).ok


def test_verify_a_signature_untrusted_trusted_and_by_another_key(snap, key, tmp_path, capsys):
    sign(snap, key=key)
    fingerprint = key_info(key).fingerprint
    assert main(["verify", str(snap)]) == 0
    out = capsys.readouterr().out
    assert f"signature valid, signer not trusted: key {fingerprint}" in out
    assert main(["verify", str(snap), "--trust", str(key.with_name(key.name + ".pub"))]) == 0
    assert f"signature valid, signer trusted: key {fingerprint}" in capsys.readouterr().out
    other = new_key(tmp_path / "other.pem").path
    assert main(["verify", str(snap), "--trust", str(other)]) == 1
    assert "signed by a key not given with --trust" in capsys.readouterr().out


def _resigned(signed: dict, key: Path, **changes: str) -> None:
    """Sign other values with the right key: the signature holds, the binding does not."""
    fresh = signed_data(changes.get("hash", signed["hash"]), changes.get("created", signed["created"]),
                        load_private_key(key))
    signed.update(fresh)


@pytest.mark.parametrize("damage, reason", [
    (lambda d, k: d.update(signature=base64.b64encode(bytes(96)).decode()), "bad signature"),
    (lambda d, k: d.update(hash="sha256:" + "0" * 64), "bad signature"),
    (lambda d, k: _resigned(d, k, hash="sha256:" + "0" * 64), "over another package"),
    (lambda d, k: _resigned(d, k, created="2001-01-01T00:00:00Z"), "not datapackage.json's"),
    (lambda d, k: d.update(publicKey="bm90IGEga2V5"), "unreadable publicKey"),
])
def test_a_damaged_signature_fails_verification(snap, key, damage, reason, capsys):
    sign(snap, key=key)
    doc = digest_doc(snap)
    damage(doc["signedData"], key)
    write_doc(snap, doc)
    report = verify(snap)
    assert not report.ok
    assert any(reason in p.what for p in report.problems), report.problems
    assert main(["verify", str(snap)]) == 1
    assert reason in capsys.readouterr().out


def test_trust_without_a_signature_fails(snap, key):
    report = verify(snap, trust=[key])
    assert [p.what for p in report.problems] == ["not signed, but --trust asks for a signature"]


def test_sign_without_a_key_is_one_line_exit_2(snap, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing"))
    assert main(["sign", str(snap)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "archive keys new" in err


# -- timestamps --------------------------------------------------------------------------------
def token_of(folder: Path, n: int = 0) -> bytes:
    return base64.b64decode(digest_doc(folder)["timestamps"][n]["token"])


def test_timestamp_token_verifies_here_and_with_openssl(snap, tsa, tmp_path, capsys):
    assert main(["timestamp", str(snap), "--tsa", tsa.url]) == 0
    assert "by CN=Test TSA" in capsys.readouterr().out
    entry = digest_doc(snap)["timestamps"][0]
    assert set(entry) == {"token", "certificates", "hash", "time", "tsa"}
    sid = snapshot_id(snap)
    assert entry["hash"] == f"sha256:{sid}" and entry["tsa"] == tsa.url
    token = tmp_path / "token.der"
    token.write_bytes(token_of(snap))
    ok = subprocess.run(["openssl", "ts", "-verify", "-digest", sid, "-in", str(token), "-token_in",
                         "-CAfile", str(tsa.ca_path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    assert main(["verify", str(snap)]) == 0
    assert "timestamp valid, TSA not trusted (no --tsa-cert given): attested time " + entry["time"] \
        in capsys.readouterr().out
    assert main(["verify", str(snap), "--tsa-cert", str(tsa.ca_path)]) == 0
    assert f"timestamp valid, TSA trusted: attested time {entry['time']}" in capsys.readouterr().out


def test_an_untrusted_root_is_rejected(snap, tsa, tmp_path, capsys):
    timestamp(snap, tsa=tsa.url)
    other, _, _ = make_ca(tmp_path, "Another Root")
    assert main(["verify", str(snap), "--tsa-cert", str(other)]) == 1
    out = capsys.readouterr().out
    assert "timestamp 0 not trusted: CN=Test Root CA is not among the TSA certificates given" in out
    token = tmp_path / "token.der"
    token.write_bytes(token_of(snap))
    refused = subprocess.run(["openssl", "ts", "-verify", "-digest", snapshot_id(snap), "-in", str(token),
                              "-token_in", "-CAfile", str(other)], capture_output=True, text=True)
    assert refused.returncode != 0   # openssl agrees


def test_a_token_over_another_digest_is_rejected(snap, tsa):
    timestamp(snap, tsa=tsa.url)
    doc = digest_doc(snap)
    other = request_token(tsa.url, hashlib.sha256(b"another package").digest())
    doc["timestamps"][0]["token"] = base64.b64encode(other).decode()
    write_doc(snap, doc)
    report = verify(snap, tsa_certs=[tsa.ca_path])
    assert [p.what.split(" (")[0] for p in report.problems] == ["timestamp 0 invalid: the token is over another digest"]


def _altered(token: bytes, where: str) -> bytes:
    data = bytearray(token)
    if where == "content":   # one digit of the attested time, inside the signed TSTInfo
        gen = parse_token(token).tst_info["gen_time"].dump()   # tag, length, "YYYYmmddHHMMSSZ"
        at = token.find(gen) + len(gen) - 2                    # the last digit of the seconds
        data[at] = ord("1") if data[at] != ord("1") else ord("2")
    else:                    # the last byte of the signature
        data[-1] ^= 0x01
    return bytes(data)


@pytest.mark.parametrize("where, reason", [("content", "does not match the signed message digest"),
                                           ("signature", "CMS signature does not verify")])
def test_an_altered_token_is_rejected(snap, tsa, tmp_path, where, reason):
    timestamp(snap, tsa=tsa.url)
    doc = digest_doc(snap)
    altered = _altered(token_of(snap), where)
    doc["timestamps"][0]["token"] = base64.b64encode(altered).decode()
    write_doc(snap, doc)
    report = verify(snap, tsa_certs=[tsa.ca_path])
    assert not report.ok and reason in report.problems[0].what, report.problems
    (tmp_path / "t.der").write_bytes(altered)
    refused = subprocess.run(["openssl", "ts", "-verify", "-digest", snapshot_id(snap), "-in",
                              str(tmp_path / "t.der"), "-token_in", "-CAfile", str(tsa.ca_path)],
                             capture_output=True, text=True)
    assert refused.returncode != 0   # openssl agrees


def test_a_tsa_whose_key_usage_is_not_critical_gives_no_token(snap):
    lax = TSA(eku_critical=False)   # openssl itself refuses to sign with it
    try:
        with pytest.raises(ProofError, match="the TSA answered HTTP 400"):
            timestamp(snap, tsa=lax.url)
    finally:
        lax.close()
    assert "timestamps" not in digest_doc(snap)   # nothing added


@pytest.mark.parametrize("options", [{"eku_critical": False},
                                     {"usage": (ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING)},
                                     {"usage": (ExtendedKeyUsageOID.CODE_SIGNING,)}])
def test_a_signer_without_critical_timestamping_only_is_rejected(tmp_path, options):
    from datetime import datetime, timezone

    from cryptography import x509
    from tsa import make_tsa_cert

    from archive.proofs.tsacheck import TokenError, _check_usage

    _, ca_key, ca_cert = make_ca(tmp_path)
    cert_path, _ = make_tsa_cert(tmp_path, ca_key, ca_cert, **options)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    with pytest.raises(TokenError, match="not critical timeStamping only"):
        _check_usage(cert, datetime.now(timezone.utc))


def test_an_unreachable_tsa_is_one_line_exit_2(snap, capsys):
    assert main(["timestamp", str(snap), "--tsa", "http://127.0.0.1:9/tsa", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archive: error: http://127.0.0.1:9/tsa: no answer from the TSA")
    assert "timestamps" not in digest_doc(snap)


def test_tsa_cert_without_a_timestamp_fails(snap, tsa):
    report = verify(snap, tsa_certs=[tsa.ca_path])
    assert [p.what for p in report.problems] == ["no timestamp, but --tsa-cert asks for one"]


# -- capture, export -------------------------------------------------------------------------------
def test_capture_signs_and_timestamps(site, collection, key, tsa, capsys):
    assert main(["capture", "-C", str(collection), "--depth", "0", "--sign", "--tsa", tsa.url,
                 "--verify", "--json", site.main_url + "/about.html"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["kind"] for p in out["proofs"]] == ["signature", "timestamp"]
    assert [(p["kind"], p["ok"]) for p in out["verify"]["proofs"]] == [("signature", True), ("timestamp", True)]
    folder = Path(out["path"])
    assert verify(folder, trust=[key], tsa_certs=[tsa.ca_path]).ok


def test_a_signed_timestamped_export_is_reproducible_and_valid(snap, key, tsa, tmp_path):
    sign(snap, key=key)
    timestamp(snap, tsa=tsa.url)
    first, second = tmp_path / "a.wacz", tmp_path / "b.wacz"
    assert main(["export", str(snap), "--wacz", str(first)]) == 0
    assert main(["export", str(snap), "--wacz", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    report = verify(first, trust=[key], tsa_certs=[tsa.ca_path])
    assert report.ok and [p.trusted for p in report.proofs] == [True, True]
    wacz = Path(__file__).resolve().parent.parent / ".venv-pywb" / "bin" / "wacz"
    if not wacz.exists():
        pytest.skip("py-wacz is installed by `make pywb`")
    result = subprocess.run([wacz, "validate", "-f", first], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "is valid" in result.stdout, result.stdout + result.stderr
    assert "Has signature" in result.stdout   # py-wacz saw signedData and its created matched


def test_the_tsa_fixture_uses_critical_timestamping(tsa):
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(tsa.cert_path.read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_the_library_api(snap, key, tsa):
    import archive

    assert archive.sign(snap, key=key).snapshot_id == snapshot_id(snap)
    assert archive.timestamp(snap, tsa=[tsa.url, tsa.url])[1].tsa == tsa.url
    report = archive.verify(snap, trust=[key], tsa_certs=[tsa.ca_path])
    assert report.ok and [p.kind for p in report.proofs] == ["signature", "timestamp", "timestamp"]


def test_a_domain_certificate_signature_is_reported_not_checked(snap, capsys):
    doc = digest_doc(snap)   # the spec's other mode, as authsign writes it: not ours to judge
    doc["signedData"] = {"hash": doc["hash"], "signature": "AA==", "domain": "example.org",
                         "domainCert": "-----BEGIN CERTIFICATE-----\n...", "created": "x"}
    write_doc(snap, doc)
    assert main(["verify", str(snap)]) == 0
    assert "signature by the domain certificate of example.org: not checked here" in capsys.readouterr().out


def _rebuilt(token: bytes, tsa_key: Path, attrs_change) -> bytes:  # type: ignore[no-untyped-def]
    """Return `token` with its signed attributes changed by `attrs_change` and signed again by
    the TSA's own key: a well-signed token whose parts are malformed."""
    from asn1crypto import cms, core
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    info = cms.ContentInfo.load(token)
    signed = info["content"]
    si = signed["signer_infos"][0]
    attrs = cms.CMSAttributes(attrs_change(list(si["signed_attrs"])))
    key = serialization.load_pem_private_key(tsa_key.read_bytes(), None)
    signature = key.sign(attrs.dump(force=True), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg]
    new_si = cms.SignerInfo({"version": si["version"].native, "sid": si["sid"], "digest_algorithm": si["digest_algorithm"],
                             "signed_attrs": attrs, "signature_algorithm": si["signature_algorithm"],
                             "signature": signature})
    encap = cms.EncapsulatedContentInfo({"content_type": "tst_info", "content": core.ParsableOctetString(
        bytes(signed["encap_content_info"]["content"].contents))})
    new = cms.SignedData({"version": signed["version"].native, "digest_algorithms": signed["digest_algorithms"],
                          "encap_content_info": encap, "certificates": signed["certificates"], "signer_infos": [new_si]})
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": new}).dump())


def _no_ess_certs(attrs):  # type: ignore[no-untyped-def]
    from asn1crypto import cms
    out = []
    for a in attrs:
        if a["type"].native in ("signing_certificate", "signing_certificate_v2"):
            kind = a["type"].native
            empty = {"certs": []}
            a = cms.CMSAttribute({"type": kind, "values": [empty]})
        out.append(a)
    return out


def _empty_value_set(attrs):  # type: ignore[no-untyped-def]
    from asn1crypto import cms
    return [cms.CMSAttribute({"type": a["type"].native, "values": []}) if a["type"].native == "content_type" else a
            for a in attrs]


@pytest.mark.parametrize("change", [_no_ess_certs, _empty_value_set])
def test_a_malformed_token_is_a_failed_proof_not_a_crash(snap, tsa, change, capsys):
    timestamp(snap, tsa=tsa.url)
    doc = digest_doc(snap)
    doc["timestamps"][0]["token"] = base64.b64encode(_rebuilt(token_of(snap), tsa.key_path, change)).decode()
    write_doc(snap, doc)
    assert main(["verify", str(snap)]) == 1
    out, err = capsys.readouterr()
    assert "timestamp 0 invalid" in out and "internal error" not in err


def test_text_from_a_package_cannot_forge_a_report_line(snap, capsys):
    doc = digest_doc(snap)
    doc["signedData"] = {"hash": "x", "domainCert": "x",
                         "domain": "evil\n  signature valid, signer trusted: key sha256:00"}
    write_doc(snap, doc)
    assert main(["verify", str(snap)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("  signature valid, signer trusted") for line in lines)
    assert any("evil\\n  signature valid" in line for line in lines)


def test_a_key_of_another_algorithm_is_refused_in_one_line(snap, tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    other = tmp_path / "ed.pem"
    other.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert main(["sign", str(snap), "--key", str(other)]) == 2
    assert "not an ECDSA P-384 key" in capsys.readouterr().err


@pytest.mark.parametrize("url, reason", [("http://[::1", "no answer from the TSA"),
                                         ("ftp://127.0.0.1/", "http:// or https://")])
def test_a_bad_tsa_url_is_one_line_exit_2(snap, url, reason, capsys):
    assert main(["timestamp", str(snap), "--tsa", url]) == 2
    err = capsys.readouterr().err
    assert reason in err and "internal error" not in err


def test_a_tsa_refusal_is_reported_as_such(snap):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from asn1crypto import tsp

    class Refuse(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status = tsp.PKIStatusInfo({"status": "rejection", "status_string": ["bad alg"],
                                        "fail_info": {"bad_alg"}}).dump()
            body = b"\x30" + bytes([len(status)]) + status   # TimeStampResp: the status, no token
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ProofError, match="the TSA refused: rejection: bad alg"):
            timestamp(snap, tsa=f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()


def test_capture_sign_without_a_key_fails_before_capturing(site, collection, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty-config"))
    assert main(["capture", "-C", str(collection), "--sign", "--depth", "0", site.main_url + "/"]) == 2
    assert "no signing key" in capsys.readouterr().err
    assert not collection.exists() or not any(p for p in collection.iterdir() if not p.name.startswith("."))


def test_capture_keeps_the_snapshot_when_the_tsa_fails(site, collection, capsys):
    assert main(["capture", "-C", str(collection), "--tsa", "http://127.0.0.1:9/", "--depth", "0",
                 site.main_url + "/"]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("snapshot ") and "is kept without that proof" in err


def test_a_package_without_created_is_not_signed(snap, key):
    data = json.loads((snap / "datapackage.json").read_text())
    del data["created"]
    from archive.snapshot.package import write_package
    write_package(snap, data)
    with pytest.raises(ProofError, match="no created time"):
        sign(snap, key=key)


class _ForwardProxy:
    """A plain-HTTP forward proxy on 127.0.0.1 that sends each request for `host` or 127.0.0.1
    to 127.0.0.1 on the same port (what a corporate proxy does for an outside TSA and site), and
    notes each request line it was given and its Proxy-Authorization; with `redirect`, it
    answers every request with a 302 there instead (a hostile TSA, or one on an http:// path)."""

    def __init__(self, host: str, redirect: str | None = None) -> None:
        import http.server
        import threading
        import urllib.error
        import urllib.request
        from urllib.parse import urlsplit

        seen, auth = self.seen, self.auth = [], []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._forward(None)

            def do_POST(self) -> None:  # noqa: N802
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _forward(self, body: bytes | None) -> None:
                seen.append(f"{self.command} {self.path}")
                auth.append(self.headers.get("Proxy-Authorization"))
                if redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                target = urlsplit(self.path)
                status, ctype, answer = 502, "text/plain", b"unknown host"
                if target.hostname in (host, "127.0.0.1"):
                    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                    headers = {"Content-Type": self.headers["Content-Type"]} if body is not None else {}
                    request = urllib.request.Request(f"http://127.0.0.1:{target.port}{target.path}", data=body,
                                                     headers=headers)
                    try:
                        with direct.open(request, timeout=30) as upstream:
                            status, ctype, answer = upstream.status, upstream.headers["Content-Type"], upstream.read()
                    except urllib.error.HTTPError as exc:
                        status, ctype, answer = exc.code, "text/plain", exc.read()
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_outside_tsa_is_asked_through_the_environments_proxy(snap, tsa, monkeypatch):
    """Behind a corporate proxy a TSA elsewhere is reachable only through it: the query goes
    there (http_proxy), and the token is checked as any other."""
    proxy = _ForwardProxy("tsa.test")
    try:
        proxy_environment(monkeypatch, proxy.url)
        port = tsa.url.split(":")[2].split("/")[0]
        stamped = timestamp(snap, tsa=f"http://tsa.test:{port}/tsa")
    finally:
        proxy.close()
    assert proxy.seen == [f"POST http://tsa.test:{port}/tsa"]
    assert stamped[0].tsa == f"http://tsa.test:{port}/tsa"
    assert verify(snap, tsa_certs=[tsa.ca_path]).ok


def test_a_tsa_on_loopback_is_asked_directly_whatever_http_proxy_says(snap, tsa, monkeypatch):
    proxy_environment(monkeypatch)
    assert timestamp(snap, tsa=tsa.url)[0].tsa == tsa.url


def test_capture_asks_an_outside_tsa_through_its_own_proxy(site, collection, tsa, monkeypatch, capsys):
    """capture --proxy sends every request through it: the site's and the TSA's alike."""
    proxy_environment(monkeypatch)   # the environment's leads nowhere
    proxy = _ForwardProxy("tsa.test")
    port = tsa.url.split(":")[2].split("/")[0]
    try:
        code = main(["capture", "-C", str(collection), "--depth", "0", "--proxy", proxy.url,
                     "--tsa", f"http://tsa.test:{port}/tsa", "--json", site.main_url + "/about.html"])
    finally:
        proxy.close()
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [p["kind"] for p in out["proofs"]] == ["timestamp"]
    assert f"POST http://tsa.test:{port}/tsa" in proxy.seen and f"GET {site.main_url}/about.html" in proxy.seen
    assert verify(Path(out["path"]), tsa_certs=[tsa.ca_path]).ok


@pytest.mark.parametrize("host", ["127.0.0.1:8", "user:pw@127.0.0.1:8", "LOCALHOST.", "a.localhost", "[::1]:5",
                                  "[::ffff:127.0.0.1]", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
                                  "127.000.000.001", "0.0.0.0", "0", "[::]", "%31%32%37.0.0.1", "127.9.9.9"])
def test_a_tsa_on_this_machine_is_never_proxied_however_written(host):
    """Every spelling urllib and the resolver take for this machine (inet_aton's short and
    octal forms, percent-escapes): an address is checked against the resolver's own reading."""
    import ipaddress
    import urllib.parse
    import urllib.request

    from conftest import _real_getaddrinfo   # the resolver itself: the session's guard takes no short forms

    from archive.proofs.timestamping import _proxied
    url = f"http://{host}/tsa"
    assert not _proxied(url)
    name = urllib.parse.urlsplit("//" + urllib.request.Request(url).host).hostname   # as urllib decodes it
    if "localhost" not in name:
        address = ipaddress.ip_address(_real_getaddrinfo(name, 80, flags=socket.AI_NUMERICHOST)[0][4][0])
        address = getattr(address, "ipv4_mapped", None) or address
        assert address.is_loopback or address.is_unspecified


@pytest.mark.parametrize("host", ["tsa.test", "8.8.8.8", "128.0.0.1", "10.0.0.1", "[2001:db8::1]",
                                  "localhost.example", "[::2]"])
def test_a_tsa_elsewhere_may_be_proxied(host):
    from archive.proofs.timestamping import _proxied
    assert _proxied(f"http://{host}:80/tsa")


def test_capture_proxy_carries_the_tsa_query_whatever_no_proxy_says(snap, tsa, monkeypatch):
    """--proxy is the capture's every request (the site's fetch ignores the environment):
    no_proxy naming the TSA does not send it around the proxy; credentials go as Basic."""
    proxy = _ForwardProxy("tsa.test")
    port = tsa.url.split(":")[2].split("/")[0]
    proxy_environment(monkeypatch)
    monkeypatch.setenv("no_proxy", "tsa.test")
    try:
        timestamp(snap, tsa=f"http://tsa.test:{port}/tsa", proxy=proxy.url.replace("://", "://alice:s3cret@"))
    finally:
        proxy.close()
    assert proxy.seen == [f"POST http://tsa.test:{port}/tsa"]
    assert proxy.auth == ["Basic " + base64.b64encode(b"alice:s3cret").decode()]


def test_a_tsa_redirect_is_refused_and_carries_no_credential(snap, monkeypatch):
    """urllib follows a redirect of the POST as a GET with the same headers, to wherever it
    points: a proxy's credentials went to a host no_proxy names (found by review)."""
    sink = _ForwardProxy("nowhere")
    # a name that resolves (localhost), asked directly (no_proxy): the sink would get the GET
    proxy = _ForwardProxy("tsa.test", redirect=f"{sink.url.replace('127.0.0.1', 'localhost')}/landed")
    monkeypatch.setenv("no_proxy", "localhost")
    try:
        with pytest.raises(ProofError) as by_option:
            timestamp(snap, tsa="http://tsa.test/tsa", proxy=proxy.url.replace("://", "://alice:s3cret@"))
        proxy_environment(monkeypatch, proxy.url.replace("://", "://alice:s3cret@"))
        monkeypatch.setenv("no_proxy", "localhost")
        with pytest.raises(ProofError) as by_environment:
            timestamp(snap, tsa="http://tsa.test/tsa")
    finally:
        proxy.close()
        sink.close()
    assert sink.auth == [] and sink.seen == []   # the code before sent it "Basic YWxpY2U6czNjcmV0"
    assert len(proxy.seen) == 2
    assert "the TSA answered HTTP 302" in str(by_option.value) and "HTTP 302" in str(by_environment.value)


@pytest.mark.parametrize("where", ["environment", "option"])
def test_a_malformed_proxy_is_one_line_without_its_password(snap, where, monkeypatch, capsys):
    bad = "http:/alice:s3cret@proxy.test:3128" if where == "environment" else "socks5://alice:s3cret@proxy.test:1"
    if where == "environment":
        proxy_environment(monkeypatch, bad)
    with pytest.raises(ProofError) as info:
        timestamp(snap, tsa="http://tsa.test:1/tsa", proxy=bad if where == "option" else None)
    assert "s3cret" not in str(info.value)
    assert ("no answer from the TSA" if where == "environment" else "--proxy is not a proxy URL") in str(info.value)
