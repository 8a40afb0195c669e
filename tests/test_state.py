"""State that never lies: the collection notes what the bytes say, and nothing else.

A citation that does not match (`--expect`), a key or TSA other than the reader's, are the
reader's business: reported with exit 1, but the snapshot is not marked FAILED, and later
captures still deduplicate against it. An import that verified says so in `list`. A
signature is never replaced without being asked.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from archive.cli import main
from archive.proofs.signing import new_key
from archive.read.export import export
from archive.read.find import snapshots
from archive.snapshot.package import DIGEST_FILE
from archive.snapshot.store import Collection, last_verifications


@pytest.fixture
def snap(demo_snapshot, tmp_path) -> Path:
    """A copy of the demo snapshot in a collection of its own."""
    dest = tmp_path / "snapshots" / demo_snapshot.path.name
    shutil.copytree(demo_snapshot.path, dest)
    return dest


def snap_id(folder: Path) -> str:
    return json.loads((folder / DIGEST_FILE).read_text())["hash"].removeprefix("sha256:")


def verify_cli(capsys, folder: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["verify", "-C", str(folder.parent), snap_id(folder)[:12], *extra])
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys, collection: Path) -> str:
    assert main(["list", "-C", str(collection)]) == 0
    return capsys.readouterr().out


def test_a_citation_mismatch_is_reported_not_recorded_as_damage(snap, capsys):
    code, out, _ = verify_cli(capsys, snap, "--expect", "sha256:" + "de" * 32)
    assert code == 1 and "not the package cited" in out
    assert out.startswith("INTACT, NOT AS CLAIMED ") and "FAILED" not in out
    code, out, _ = verify_cli(capsys, snap, "--expect", "sha256:" + "de" * 32, "--json")
    assert code == 1 and json.loads(out)["intact"] is True and json.loads(out)["ok"] is False
    assert json.loads(out)["problems"][0]["claim"] == "--expect"
    state = last_verifications(Collection(snap.parent))[snap_id(snap)]
    assert state["ok"] is True and state["problems"] == 0
    line = listed(capsys, snap.parent)
    assert "OK" in line and "FAILED" not in line
    # and the snapshot is still a source of revisits for later captures
    from archive.write.dedup import LocalIndex
    assert LocalIndex(Collection(snap.parent)).lookup(_a_payload_digest(snap)) is not None


def _a_payload_digest(folder: Path) -> str:
    for line in (folder / "indexes" / "index.cdx").read_text().splitlines():
        fields = json.loads(line.split(" ", 2)[2])
        if fields.get("mime", "").startswith("text/css") and int(fields.get("length", 0)) > 1024:
            return str(fields["digest"])
    for line in (folder / "indexes" / "index.cdx").read_text().splitlines():
        fields = json.loads(line.split(" ", 2)[2])
        if fields.get("digest") and int(fields.get("length", 0)) > 2048:
            return str(fields["digest"])
    raise AssertionError("no body large enough to be deduplicated")


def test_damage_is_still_recorded_as_failed(snap, capsys):
    warc = next((snap / "archive").glob("*.warc.gz"))
    data = bytearray(warc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    warc.write_bytes(bytes(data))
    code, out, _ = verify_cli(capsys, snap, "--expect", "sha256:" + snap_id(snap))
    assert code == 1 and out.startswith("FAILED ")
    state = last_verifications(Collection(snap.parent))[snap_id(snap)]
    assert state["ok"] is False and state["problems"] >= 1
    assert "FAILED" in listed(capsys, snap.parent)


def test_a_shortened_expect_is_a_prefix_of_12_or_more_digits(snap, capsys):
    full = snap_id(snap)
    code, out, _ = verify_cli(capsys, snap, "--expect", f"sha256:{full[:12]}")
    assert code == 0 and f"the package cited: sha256:{full[:12]}... (a prefix: 12 of 64 digits)" in out
    code, out, _ = verify_cli(capsys, snap, "--expect", f"sha256:{full}")
    assert code == 0 and f"the package cited: sha256:{full}\n" in out
    assert verify_cli(capsys, snap, "--expect", full[:40].upper())[0] == 0
    wrong = ("0" if full[0] != "0" else "1") + full[1:12]
    code, out, _ = verify_cli(capsys, snap, "--expect", f"sha256:{wrong}")
    assert code == 1 and "not the package cited" in out
    assert last_verifications(Collection(snap.parent))[full]["ok"] is True


TOO_SHORT = ("sha256:712e", "sha256:deadbeef", "a" * 11)


@pytest.mark.parametrize("given", [*TOO_SHORT, "sha256:" + "g" * 64, "sha256:" + "a" * 65, "md5:" + "a" * 32])
def test_a_short_or_malformed_expect_is_refused_before_any_work(snap, capsys, given):
    code, out, err = verify_cli(capsys, snap, "--expect", given)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("archive: error: --expect")
    assert ("too short" in err) == (given in TOO_SHORT)
    assert snap_id(snap) not in last_verifications(Collection(snap.parent))   # nothing noted


def test_a_signature_by_a_key_other_than_the_trusted_one_is_not_damage(snap, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    new_key()
    other = new_key(tmp_path / "other.pem")
    assert main(["sign", "-C", str(snap.parent), snap_id(snap)[:12]]) == 0
    capsys.readouterr()
    code, out, _ = verify_cli(capsys, snap, "--trust", f"{other.path}.pub")
    assert code == 1 and "signed by a key not given with --trust" in out
    assert last_verifications(Collection(snap.parent))[snap_id(snap)]["ok"] is True


def test_import_notes_the_verification_it_made(demo_snapshot, tmp_path, capsys):
    wacz = export(demo_snapshot.path, wacz=tmp_path / "x.wacz")
    collection = tmp_path / "fresh"
    assert main(["import", "-C", str(collection), str(wacz)]) == 0
    capsys.readouterr()
    line = listed(capsys, collection)
    assert "never verified" not in line and "verified" in line and "OK" in line
    [found] = snapshots(collection)
    assert found.verified is not None and found.verified["ok"] is True
    warc = next(demo_snapshot.path.glob("archive/*.warc.gz"))
    other = tmp_path / "warcs"
    assert main(["import", "-C", str(other), str(warc)]) == 0
    capsys.readouterr()
    assert "never verified" not in listed(capsys, other)


def test_sign_refuses_to_replace_another_keys_signature_without_force(snap, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    first = new_key()
    second = new_key(tmp_path / "second.pem")
    ref = ["-C", str(snap.parent), snap_id(snap)[:12]]
    assert main(["sign", *ref]) == 0
    assert main(["sign", *ref]) == 0   # the same key again: nothing of anyone else's is lost
    capsys.readouterr()
    before = (snap / DIGEST_FILE).read_bytes()
    assert main(["sign", *ref, "--key", str(second.path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert f"already signed by key {first.fingerprint}" in err and "--force" in err
    assert (snap / DIGEST_FILE).read_bytes() == before   # untouched
    assert main(["sign", *ref, "--key", str(second.path), "--force"]) == 0
    out = capsys.readouterr().out
    assert f"with key {second.fingerprint}" in out and f"replacing the signature by key {first.fingerprint}" in out
    code, out, _ = verify_cli(capsys, snap, "--trust", f"{second.path}.pub")
    assert code == 0 and "signer trusted" in out


def test_a_domain_signature_is_named_safely_and_kept_without_force(snap, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    new_key()
    doc = json.loads((snap / DIGEST_FILE).read_text())
    doc["signedData"] = {"hash": f"sha256:{snap_id(snap)}", "domain": "evil.example\x1b[2J\nsigned OK",
                         "domainCert": "x", "signature": "y"}
    (snap / DIGEST_FILE).write_text(json.dumps(doc))
    assert main(["sign", "-C", str(snap.parent), snap_id(snap)[:12]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "the domain certificate of 'evil.example" in err
    assert json.loads((snap / DIGEST_FILE).read_text())["signedData"]["domain"].startswith("evil.example")


def test_capture_verify_and_demo_note_their_verification_in_the_collection_given(site, tmp_path, capsys,
                                                                                  monkeypatch):
    """`capture --verify -C DIR` and `demo -C DIR` say OK: `list -C DIR` must say verified, not
    "never verified" (the result was once noted in the default collection instead)."""
    monkeypatch.chdir(tmp_path)   # the default collection, ./snapshots, is not the one given
    collection = tmp_path / "elsewhere"
    assert main(["capture", "-q", "-C", str(collection), "--verify", "--depth", "0", site.main_url + "/"]) == 0
    capsys.readouterr()
    assert main(["demo", "-C", str(collection)]) == 0
    capsys.readouterr()
    found = snapshots(collection)
    assert len(found) == 2
    assert all(s.verified is not None and s.verified["ok"] is True for s in found), found
    assert "never verified" not in listed(capsys, collection)
    assert not (tmp_path / "snapshots").exists()
