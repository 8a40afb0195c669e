"""The dependency copies of a self-contained export, checked against the snapshot it carries.

An export (read/export.py) adds `archive/deps-*` files holding the originals its revisits
refer to, and `indexes/deps.cdx`; the cited id commits only to the snapshot's own files, so
every record and line of these must be one a revisit of the snapshot names (WARC 1.1 section
6.7.2), or it is content under someone else's id.
"""
from __future__ import annotations

from archive.errors import NotASnapshot
from archive.warc.digests import Problem

# the record readers of depends, shared within the subpackage
from .depends import DEPS_INDEX, DEPS_PREFIX, _head_at, _heads, _stamp14
from .reader import IndexEntry, Package, parse_cdxj


def check_embedded(package: Package, own: set[str]) -> list[Problem]:
    """Check the dependency files of a self-contained export against the snapshot it carries.

    `own` is the set of files the carried source/datapackage.json lists. Every record of an
    `archive/deps-*` file must be the original some revisit record of those WARCs refers to
    (WARC-Refers-To, -Target-URI, -Date, and the payload digest for identical-payload-digest
    revisits: WARC 1.1 section 6.7.2), and every line of `indexes/deps.cdx` must name such a
    record. Return the problems: anything else is content the cited id does not commit to.
    """
    referred: dict[str, dict[str, str]] = {}
    for name in sorted(own):
        if name.startswith("archive/") and name.endswith((".warc.gz", ".warc")) and package.has(name):
            for heads in _heads(package, name):
                if heads.get("WARC-Type") == "revisit":
                    referred[_reference(heads)] = heads
    problems = []
    for name in sorted(n for n in package.names() if n.startswith(DEPS_PREFIX)):
        for heads in _heads(package, name):
            if not _refers(_referrer(referred, heads), heads):
                problems.append(Problem(name, "dependency record no revisit of the snapshot refers to",
                                        uri=heads.get("WARC-Target-URI"), found=heads.get("WARC-Record-ID")))
    for line in package.lines(DEPS_INDEX) if package.has(DEPS_INDEX) else []:
        entry = parse_cdxj(line.decode("utf-8", "replace"))
        at = _deps_head(package, entry) if entry is not None else None
        if entry is None or at is None or at.get("WARC-Target-URI") != entry.url \
                or not _refers(_referrer(referred, at), at):
            problems.append(Problem(DEPS_INDEX, "index line names no record a revisit of the snapshot refers to",
                                    found=line[:200].decode("utf-8", "replace")))
    return problems


def _deps_head(package: Package, entry: IndexEntry) -> dict[str, str] | None:
    """Return the WARC headers at a deps index line's place, if it lies in a deps file."""
    try:
        if not package.warc_path(entry.filename).startswith(DEPS_PREFIX):
            return None
    except NotASnapshot:
        return None
    return _head_at(package, entry.filename, entry.offset)


def _reference(revisit: dict[str, str]) -> str:
    """Return what a revisit names its original by: WARC-Refers-To, or without it (Heritrix of
    2014) its target URI and payload digest (WARC 1.1 section 6.7.2)."""
    if revisit.get("WARC-Refers-To"):
        return revisit["WARC-Refers-To"]
    url = revisit.get("WARC-Refers-To-Target-URI") or revisit.get("WARC-Target-URI", "")
    return f"{url.strip().strip('<>')} {revisit.get('WARC-Payload-Digest', '')}"


def _referrer(referred: dict[str, dict[str, str]], original: dict[str, str]) -> dict[str, str] | None:
    """Return the revisit of `referred` (by `_reference`) that names `original`, or None."""
    url = original.get("WARC-Target-URI", "").strip().strip("<>")
    return referred.get(original.get("WARC-Record-ID", "")) \
        or referred.get(f"{url} {original.get('WARC-Payload-Digest', '')}")


def _refers(revisit: dict[str, str] | None, original: dict[str, str]) -> bool:
    """Return True when `revisit` names `original`: its id (or, naming none, its target URI and
    payload digest), target URI, date and (for an identical-payload-digest revisit) payload
    digest."""
    if revisit is None:
        return False
    if revisit.get("WARC-Refers-To", original.get("WARC-Record-ID")) != original.get("WARC-Record-ID"):
        return False
    if revisit.get("WARC-Refers-To-Target-URI", original.get("WARC-Target-URI")) != original.get("WARC-Target-URI"):
        return False
    date = revisit.get("WARC-Refers-To-Date")
    if date is not None and _stamp14(date) != _stamp14(original.get("WARC-Date", "")):
        return False
    identical = revisit.get("WARC-Profile", "").endswith("/identical-payload-digest")
    return not identical or revisit.get("WARC-Payload-Digest") == original.get("WARC-Payload-Digest")


__all__ = ["check_embedded"]
