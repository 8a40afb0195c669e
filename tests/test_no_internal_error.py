"""No internal error on any input: a real package with one JSON or CDXJ value changed (its type,
its length), odd zip member names and short index timestamps, fed to verify, import, show,
list and cite through `archive.cli.main`, gives an exit code of 0, 1 or 2 and at most one
error line, never a traceback or "internal error"."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive import capture
from archive.cli import main
from archive.demo import DemoSite
from archive.read.export import export

MEMBERS = ("datapackage.json", "datapackage-digest.json", "pages/pages.jsonl", "indexes/index.cdx")

# What a value may become: every JSON type, numbers as strings, empty and very long strings,
# deep nesting, odd text.
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=False), st.just([]), st.just({}), st.just("12"), st.just("-1"), st.just(""),
    st.just("x" * 100_000), st.just("\x1b[2J\u202e\x00"), st.just("2026"), st.just("../../../etc/passwd"),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just([[[[[[[[[[[]]]]]]]]]]]), st.text(max_size=20))


class Members(dict):  # type: ignore[type-arg]
    def __repr__(self) -> str:   # hypothesis prints its arguments: not the whole package
        return "<the members of a real .wacz>"


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("mutate")
    collection = base / "snapshots"
    with DemoSite() as site:
        snap = capture([site.main_url + "/"], collection, depth=0)
    wacz = export(snap.id, collection, wacz=base / "real.wacz")
    with zipfile.ZipFile(wacz) as z:
        return Members({name: z.read(name) for name in z.namelist()})


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, the root included."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += paths(value, prefix + (i,))
    return found


def put(doc: Any, where: tuple[Any, ...], value: Any) -> Any:
    if not where:
        return value
    doc[where[0]] = put(doc[where[0]], where[1:], value)
    return doc


def mutate(data: bytes, name: str, draw: Any) -> bytes:
    """Change one value of one JSON document (or of one JSON line) of a member."""
    if name.endswith(".json"):
        doc = json.loads(data)
        where = draw(st.sampled_from(paths(doc)))
        return json.dumps(put(doc, where, draw(VALUES))).encode()
    lines = data.decode().splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    if name.endswith(".cdx"):
        key, stamp, fields = lines[i].split(" ", 2)
        part = draw(st.sampled_from(["key", "stamp", "fields"]))
        if part == "stamp":
            stamp = draw(st.sampled_from(["", "2026", "20261", "2026010203", "x" * 14, "9" * 40]))
        elif part == "key":
            key = draw(st.sampled_from(["", "x" * 10_000, "\x1b"]))
        else:
            doc = json.loads(fields)
            fields = json.dumps(put(doc, draw(st.sampled_from(paths(doc))), draw(VALUES)))
        lines[i] = f"{key} {stamp} {fields}"
    else:
        doc = json.loads(lines[i])
        lines[i] = json.dumps(put(doc, draw(st.sampled_from(paths(doc))), draw(VALUES)))
    return ("\n".join(lines) + "\n").encode()


def run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def assert_plain(what: str, code: int, err: str) -> None:
    assert code in (0, 1, 2), f"{what}: exit {code}: {err}"
    assert "internal error" not in err and "Traceback" not in err, f"{what}: {err}"
    assert len(err.splitlines()) <= 1, f"{what}: {err}"


def drive(tmp: Path, package: Path, folder: Path) -> None:
    """Feed a .wacz and the same package as a snapshot folder of a collection to the commands."""
    collection = folder.parent
    for argv in (["verify", str(package)], ["show", str(package)], ["cite", str(package)],
                 ["import", str(package), "-C", str(tmp / "imported")], ["list", "-C", str(tmp / "imported")],
                 ["list", "-C", str(collection)], ["show", str(folder)], ["cite", str(folder)],
                 ["cite", str(folder), "--format", "bibtex"], ["verify", str(folder)],
                 ["list", "http://127.0.0.1/", "-C", str(collection)], ["diff", str(folder), str(folder)]):
        assert_plain(" ".join(argv), *run(*argv))


def write_package(tmp: Path, members: dict[str, bytes]) -> tuple[Path, Path]:
    package = tmp / "mutated.wacz"
    with zipfile.ZipFile(package, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    folder = tmp / "collection" / "20260101T000000Z-127.0.0.1-aaaaaaaaaaaa"
    for name, data in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return package, folder


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_packages_never_cause_an_internal_error(members, data):
    name = data.draw(st.sampled_from(MEMBERS))
    changed = dict(members, **{name: mutate(members[name], name, data.draw)})
    tmp = Path(tempfile.mkdtemp())
    try:
        drive(tmp, *write_package(tmp, changed))
    finally:
        shutil.rmtree(tmp)


def raw_zip(path: Path, members: list[tuple[bytes, bytes, int]]) -> None:
    """Write a stored zip by hand with raw name bytes and flags (APPNOTE 4.4.4: bit 11, UTF-8)."""
    out, central = bytearray(), bytearray()
    for name, data, flags in members:
        crc, offset = zlib.crc32(data), len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, 0, 0, 0x21, crc, len(data), len(data),
                           len(name), 0) + name + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, 0, 0, 0x21, crc, len(data),
                               len(data), len(name), 0, 0, 0, 0, 0, offset) + name
    start = len(out)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                 len(central), start, 0)
    path.write_bytes(bytes(out))


@pytest.mark.parametrize("odd", [
    (b"archive/\xff\xfe.warc.gz", 0x800),        # flagged UTF-8, is not
    (b"archive/caf\x82.warc.gz", 0),             # cp437
    (b"pages/\xc3\xa9t\xc3\xa9.jsonl", 0x800),   # real UTF-8
    (b"/etc/evil", 0), (b"../../evil", 0), (b"archive/a\x00b", 0), (b"archive\\..\\..\\evil", 0),
    (b"datapackage.json", 0),                    # a second datapackage.json
    (b"archive/", 0),                            # a directory entry
    (b"archive/x.warc.gz", 0x1),                 # flagged encrypted
])
def test_odd_zip_member_names_are_one_line(members, tmp_path, odd):
    name, flags = odd
    entries = [(n.encode(), d, 0) for n, d in members.items()] + [(name, b"data", flags)]
    package = tmp_path / "odd.wacz"
    raw_zip(package, entries)
    for argv in (["verify", str(package)], ["show", str(package)], ["cite", str(package)],
                 ["import", str(package), "-C", str(tmp_path / "c")], ["list", "-C", str(tmp_path / "c")]):
        code, err = run(*argv)
        assert_plain(" ".join(argv), code, err)
    assert not any(p.name == "evil" for p in tmp_path.rglob("*")) and not Path("/etc/evil").exists()


@pytest.mark.parametrize("stamp", ["", "2026", "20260102", "202601020304", "2026x1020304050"])
def test_short_timestamps_in_an_index_are_not_an_internal_error(members, tmp_path, stamp):
    lines = members["indexes/index.cdx"].decode().splitlines()
    lines = [" ".join([line.split(" ", 2)[0], stamp, line.split(" ", 2)[2]]) for line in lines]
    changed = dict(members, **{"indexes/index.cdx": ("\n".join(lines) + "\n").encode()})
    drive(tmp_path, *write_package(tmp_path, changed))
