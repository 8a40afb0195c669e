"""The read-side commands: `verify`, `cite`, `list`, `diff`, `show`, `export` and `import`."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from archive.errors import UsageError
from archive.models import LOCAL_REPLAY

from .common import command, emit_capture, human_bytes, print_report, printable, write_json


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the read-side subcommands to the `archive` parser."""
    ver = command(sub, common, "verify", _cmd_verify, "recompute every digest of a snapshot",
                  "Verify a snapshot: WARC digests, file checksums, package digest.")
    ver.add_argument("snapshot", metavar="SNAPSHOT", help="folder, .wacz, id or unique id prefix (6+ hex digits)")
    ver.add_argument("--expect", metavar="sha256:ID", help="also check that this is the package cited")
    ver.add_argument("--trust", action="append", default=[], type=Path, metavar="KEYFILE",
                     help="the signature must be by this key (public or private key file; repeatable)")
    ver.add_argument("--tsa-cert", action="append", default=[], type=Path, metavar="FILE",
                     help="timestamps must chain to a certificate in FILE (PEM; repeatable)")

    cite = command(sub, common, "cite", _cmd_cite, "print a citation of a snapshot",
                   "Print a citation of a snapshot's seed page (or of --page URL when it has several).",
                   formats=("text", "markdown", "bibtex", "csl-json", "ris", "robust-links", "json"))
    cite.add_argument("snapshot", metavar="SNAPSHOT")
    cite.add_argument("--base-url", metavar="URL", type=base_url,
                      help="where the collection is published, e.g. https://archive.example.org "
                           f"(default: the local replay server, {LOCAL_REPLAY}, marked as local)")
    cite.add_argument("--page", metavar="URL", help="the page to cite: one of the seeds, or any page of "
                                                    "the snapshot (needed when it has several seeds)")

    lst = command(sub, common, "list", _cmd_list, "list snapshots, or every capture of a URL",
                  "List the collection's snapshots newest first; with URL, every snapshot holding it "
                  "(a Memento TimeMap).", formats=("text", "json", "link"))
    lst.add_argument("url", nargs="?", metavar="URL")
    lst.add_argument("--base-url", metavar="URL", type=base_url, default=LOCAL_REPLAY,
                     help="replay server for links (default: %(default)s)")

    lst.add_argument("--limit", type=int, metavar="N",
                     help="list at most N snapshots (a page; not with URL: a TimeMap lists every capture)")
    lst.add_argument("--offset", type=int, default=0, metavar="N", help="skip the N newest snapshots first")

    _register_search(sub, common)

    dif = command(sub, common, "diff", _cmd_diff, "what changed between two snapshots",
                  "List URLs added, removed, changed and unchanged between snapshot A (before) and "
                  "B (after), with a text diff of changed pages.")
    dif.add_argument("before", nargs="?", metavar="A")
    dif.add_argument("after", nargs="?", metavar="B")
    dif.add_argument("--url", help="compare the two latest snapshots holding URL")
    dif.add_argument("--no-text", action="store_true", help="skip the text diffs of changed pages")

    show = command(sub, common, "show", _cmd_show, "pages, resources and failures of a snapshot",
                   "Show a snapshot's pages, resources by type, URLs answered with HTTP errors, "
                   "failures and skips, and the capture options. A capture listed as INCOMPLETE "
                   "shows what it holds so far.")
    show.add_argument("snapshot", metavar="SNAPSHOT")

    export = command(sub, common, "export", _cmd_export, "write a snapshot as .wacz or one WARC",
                     "Write a snapshot as one .wacz file (the package other tools replay; verify "
                     "gives the same id) or as one plain WARC file. An existing FILE is kept "
                     "unless --force.")
    export.add_argument("snapshot", metavar="SNAPSHOT")
    dest = export.add_mutually_exclusive_group(required=True)
    dest.add_argument("--wacz", type=Path, metavar="FILE", help="a WACZ package (the snapshot id stays its digest)")
    dest.add_argument("--warc", type=Path, metavar="FILE", help="one plain WARC file (.warc.gz or .warc)")
    export.add_argument("--force", action="store_true", help="overwrite FILE")

    imp = command(sub, common, "import", _cmd_import, "bring a .wacz or WARC file into the collection",
                  "Import an outside archive, verified on the way in.")
    imp.add_argument("file", type=Path, metavar="FILE")


def _register_search(sub: Any, common: argparse.ArgumentParser) -> None:
    found = command(sub, common, "search", _cmd_search, "find pages by words of their URL, title or text",
                    "Search the collection's pages (URL, title and text, from the catalogue in "
                    ".state/): every word must match, the last as a prefix; best matches first, "
                    "with the matching passage.")
    found.add_argument("words", nargs="+", metavar="WORD")
    found.add_argument("--limit", type=int, default=20, metavar="N", help="at most N pages (default: %(default)s)")
    found.add_argument("--offset", type=int, default=0, metavar="N", help="skip the N best first")


def base_url(value: str) -> str:
    """An argparse type: an absolute http(s) URL, the root of a replay server."""
    if not re.match(r"https?://[^/?#\s]+", value):
        host = value.split("/")[0]
        hint = f" (did you mean https://{value}?)" if host and ":" not in host else ""
        raise argparse.ArgumentTypeError(f"not an absolute http(s) URL: {value!r}{hint}")
    return value


def _cmd_verify(args: argparse.Namespace) -> int:
    from archive.read.verify import verify

    report = verify(args.snapshot, args.collection, expect=args.expect, record=True,
                    trust=args.trust, tsa_certs=args.tsa_cert)
    print_report(report, args.format, sys.stdout)
    return 0 if report.ok else 1


def _cmd_cite(args: argparse.Namespace) -> int:
    from archive.read.cite import cite

    sys.stdout.write(cite(args.snapshot, args.collection, args.format, base_url=args.base_url,
                          page=args.page))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from archive.read.find import link_format, snapshots, timemap

    if args.url:
        from archive.formats.urls import canonicalize

        if args.limit is not None or args.offset:   # a page of a TimeMap would read as the whole history
            raise UsageError("--limit and --offset page the snapshot list; a URL's TimeMap lists every "
                             "capture (RFC 7089), oldest first: take part of it with head or tail")
        mementos = timemap(args.url, args.collection, args.base_url)
        if not mementos:   # an answer, not a failure: exit 1 is for integrity failures
            print(f"archive: no captures of {printable(canonicalize(args.url))}", file=sys.stderr)
        if args.format == "link":
            sys.stdout.write(link_format(canonicalize(args.url), mementos, args.base_url))
        elif args.format == "json":
            write_json([vars(m) for m in mementos])
        else:   # one write: the escaping's check runs once over the whole TimeMap
            sys.stdout.write("".join(f"{m.snapshot_id[:12]}  {m.timestamp}  {m.status:>3}  "
                                     f"{m.state.upper() if m.state == 'changed' else m.state:7}  {m.replay}\n"
                                     for m in mementos))
        return 0
    found = snapshots(args.collection, limit=args.limit, offset=args.offset)
    if args.format == "json":
        write_json([s.to_json() for s in found])
        return 0
    lines = []
    for s in found:
        v = s.verified
        checked = f"verified {v['time']} {'OK' if v['ok'] else 'FAILED'}" if v else "never verified"
        if not s.complete:
            checked = "INCOMPLETE (under way, interrupted or killed)"
        lines.append(f"{s.id[:12]:12}  {s.created}  {s.pages:>4} pages  {human_bytes(s.bytes):>9}  "
                     f"{checked}  {' '.join(s.seeds)}\n")
    sys.stdout.write("".join(lines))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from archive.snapshot.catalogue import open_catalogue
    from archive.snapshot.store import Collection

    with open_catalogue(Collection(args.collection).require()) as catalogue:
        hits = catalogue.search(" ".join(args.words), limit=max(0, args.limit), offset=max(0, args.offset))
    if args.format == "json":
        write_json([{"snapshot_id": h.snapshot_id, "url": h.url, "title": h.title, "timestamp": h.timestamp,
                     "snippet": [{"text": text, "match": match} for text, match in h.snippet]} for h in hits])
        return 0
    if not hits:   # an answer, not a failure
        print(f"archive: no pages match {printable(' '.join(args.words))}", file=sys.stderr)
    for h in hits:
        passage = "".join(f"[{t}]" if match else t for t, match in h.snippet)
        sys.stdout.write(f"{h.snapshot_id[:12]}  {h.timestamp}  {printable(h.url)}\n"
                         f"    {printable(h.title)}\n    {printable(' '.join(passage.split()))}\n")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from archive.read.diff import compare, compare_latest

    if args.url:
        result = compare_latest(args.url, args.collection, text=not args.no_text)
    elif args.before and args.after:
        result = compare(args.before, args.after, args.collection, text=not args.no_text)
    else:
        raise UsageError("diff takes two snapshots, or --url URL")
    if args.format == "json":
        write_json(result.to_json())
        return 0
    out = sys.stdout
    out.write(f"before {result.before}\nafter  {result.after}\n")
    out.write(", ".join(f"{result.count(s)} {s}" for s in ("added", "removed", "changed", "unchanged")) + "\n")
    for change in result.changes:
        if change.state != "unchanged":
            out.write(f"{change.state:8} {change.url}\n")
            for line in change.text_diff[2:]:   # the ---/+++ header says nothing here
                out.write(f"           {line}\n")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from archive.read.find import details

    d = details(args.snapshot, args.collection)
    if args.format == "json":
        write_json(d.to_json())
        return 0
    out = sys.stdout
    if not d.complete:
        out.write("INCOMPLETE capture (under way, interrupted or killed): what it holds so far; "
                  "finish it with `archive capture --resume PATH`\n")
    out.write(f"snapshot {d.id}\nfolder   {d.path}\ncreated  {d.created}\n")
    out.write(f"window   {d.window.get('start', '?')} .. {d.window.get('end', '?')}\n")
    out.write(f"pages ({len(d.pages)}):\n")
    for p in d.pages:
        out.write(f"  {p.get('status', '')!s:>3}  {printable(str(p.get('url')))}  "
                  f"{printable(str(p.get('title', '')))}\n")
    out.write("resources by type:\n")
    for mime, t in d.types.items():
        out.write(f"  {t['count']:>5}  {human_bytes(t['stored_bytes']):>9}  {mime}\n")
    for dep in d.dependencies:
        out.write(f"  revisits refer to {dep.get('records')} records of snapshot {str(dep.get('snapshot'))[:12]}\n")
    out.write(f"HTTP errors ({len(d.http_errors)}):\n")
    for e in d.http_errors:
        out.write(f"  {e['status']:>3}  {printable(str(e.get('url')))}\n")
    out.write(f"failures and skips ({len(d.failures)}):\n")
    for f in d.failures:
        out.write(f"  {printable(str(f.get('url')))}: {printable(str(f.get('reason')))}\n")
    out.write("options: " + json.dumps(d.options, sort_keys=True) + "\n")
    for w in d.warnings:
        out.write(f"warning: {w}\n")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from archive.read.export import export

    dest = export(args.snapshot, args.collection, wacz=args.wacz, warc=args.warc, overwrite=args.force)
    if args.format == "json":
        sys.stdout.write(json.dumps({"path": str(dest)}) + "\n")
    else:
        sys.stdout.write(f"{dest}\n")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from archive.read.ingest import import_archive

    return emit_capture(import_archive(args.file, args.collection), None, args.format)
