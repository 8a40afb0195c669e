"""The `archive` command: argv -> one library call per subcommand -> exit code.

The only module that prints or configures logging. Exit codes: 0 success (also when a seed
answered 4xx/5xx), 1 integrity failure, 2 usage error / not a snapshot / I/O error, 3 no seed
got an HTTP answer, 4 interrupted or disk full (partial capture kept).
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .errors import ArchiveError, UsageError
from .models import DEFAULT_USER_AGENT, CaptureOptions, Snapshot
from .replay import LOCAL_REPLAY
from .verify import Report, verify

# capture (requests, lxml) and find (surt) are imported by the commands that use them, so
# `archive verify` starts fast.

logger = logging.getLogger("archive")
# Modules with a `register(subparsers, common)` adding their own subcommands.
COMMAND_MODULES: tuple[str, ...] = ("cli_upkeep", "cli_proof", "cli_scale")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="archive: %(levelname)s: %(message)s", stream=sys.stderr)
    if args.json:
        args.format = "json"
    try:
        return int(args.run(args))
    except ArchiveError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 4
    except Exception as exc:  # the last line of defence: one line, never a traceback
        logger.debug("internal error", exc_info=True)
        _error(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        if args.verbose:
            logging.exception("traceback")
        return 2


def _error(message: str) -> None:
    print(f"archive: error: {' '.join(message.split())}", file=sys.stderr)


# -- argument parsing -------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-C", "--collection", type=Path, default=None,
                        help="the collection folder (default: $ARCHIVE_COLLECTION or ./snapshots)")
    common.add_argument("--json", action="store_true", help="same as --format json")
    common.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")

    parser = argparse.ArgumentParser(prog="archive", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"archive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cap = sub.add_parser("capture", parents=[common], help="capture URLs into a new snapshot",
                         description="Capture URLs, their page requisites and the pages they link to.")
    _format(cap)
    cap.add_argument("urls", nargs="*", metavar="URL")
    cap.add_argument("--out", dest="collection", type=Path, help="same as -C")
    cap.add_argument("--verify", action="store_true", help="verify the snapshot once written")
    cap.add_argument("--resume", metavar="ID", help="finish an interrupted capture (its id under .partial/, "
                                                    "as the interruption message says); seeds and options "
                                                    "are its own, nothing it holds is fetched again")
    _capture_options(cap)
    cap.add_argument("--sign", action="store_true", help="sign the snapshot (see `archive keys new`)")
    cap.add_argument("--key", type=Path, metavar="PATH", help="the signing key (default: the config folder's)")
    cap.add_argument("--tsa", action="append", default=[], metavar="URL",
                     help="get an RFC 3161 timestamp of the snapshot from this TSA (repeatable)")
    cap.set_defaults(run=_cmd_capture)

    ver = sub.add_parser("verify", parents=[common], help="recompute every digest of a snapshot",
                         description="Verify a snapshot: WARC digests, file checksums, package digest.")
    _format(ver)
    ver.add_argument("snapshot", metavar="SNAPSHOT", help="folder, .wacz, id or unique id prefix (6+ hex digits)")
    ver.add_argument("--expect", metavar="sha256:ID", help="also check that this is the package cited")
    ver.add_argument("--trust", action="append", default=[], type=Path, metavar="KEYFILE",
                     help="the signature must be by this key (public or private key file; repeatable)")
    ver.add_argument("--tsa-cert", action="append", default=[], type=Path, metavar="FILE",
                     help="timestamps must chain to a certificate in FILE (PEM; repeatable)")
    ver.set_defaults(run=_cmd_verify)

    cite = sub.add_parser("cite", parents=[common], help="print a citation of a snapshot",
                          description="Print a citation of a snapshot's seed page.")
    _format(cite, ("text", "markdown", "bibtex", "csl-json", "ris", "robust-links", "json"))
    cite.add_argument("snapshot", metavar="SNAPSHOT")
    cite.add_argument("--base-url", metavar="URL",
                      help="where the collection is published (default: the local replay server)")
    cite.set_defaults(run=_cmd_cite)

    lst = sub.add_parser("list", parents=[common], help="list snapshots, or every capture of a URL",
                         description="List the collection's snapshots newest first; with URL, "
                                     "every snapshot holding it (a Memento TimeMap).")
    _format(lst, ("text", "json", "link"))
    lst.add_argument("url", nargs="?", metavar="URL")
    lst.add_argument("--base-url", metavar="URL", default=LOCAL_REPLAY, help="replay server for links")
    lst.set_defaults(run=_cmd_list)

    dif = sub.add_parser("diff", parents=[common], help="what changed between two snapshots",
                         description="List URLs added, removed, changed and unchanged between snapshot A "
                                     "(before) and B (after), with a text diff of changed pages.")
    _format(dif)
    dif.add_argument("before", nargs="?", metavar="A")
    dif.add_argument("after", nargs="?", metavar="B")
    dif.add_argument("--url", help="compare the two latest snapshots holding URL")
    dif.add_argument("--no-text", action="store_true", help="skip the text diffs of changed pages")
    dif.set_defaults(run=_cmd_diff)

    show = sub.add_parser("show", parents=[common], help="pages, resources and failures of a snapshot")
    _format(show)
    show.add_argument("snapshot", metavar="SNAPSHOT")
    show.set_defaults(run=_cmd_show)

    serve = sub.add_parser("serve", parents=[common], help="browse the collection with pywb",
                           description="Serve the collection for browsing with pywb (frameless, Memento).")
    _format(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    serve.set_defaults(run=_cmd_serve)

    export = sub.add_parser("export", parents=[common], help="write a snapshot as .wacz or one WARC")
    _format(export)
    export.add_argument("snapshot", metavar="SNAPSHOT")
    dest = export.add_mutually_exclusive_group(required=True)
    dest.add_argument("--wacz", type=Path, metavar="FILE", help="a WACZ package (the snapshot id stays its digest)")
    dest.add_argument("--warc", type=Path, metavar="FILE", help="one plain WARC file (.warc.gz or .warc)")
    export.add_argument("--force", action="store_true", help="overwrite FILE")
    export.set_defaults(run=_cmd_export)

    imp = sub.add_parser("import", parents=[common], help="bring a .wacz or WARC file into the collection",
                         description="Import an outside archive, verified on the way in.")
    _format(imp)
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.set_defaults(run=_cmd_import)

    demo = sub.add_parser("demo", parents=[common], help="capture the built-in demo site",
                          description="Serve the built-in demo site on 127.0.0.1, capture and verify it.")
    _format(demo)
    demo.add_argument("--serve", action="store_true", help="only serve the site until interrupted")
    demo.add_argument("--port", type=int, default=0, help="port of the main host (default: any free)")
    demo.set_defaults(run=_cmd_demo)
    for module in COMMAND_MODULES:   # command groups that live in modules of their own
        importlib.import_module(f".{module}", __package__).register(sub, common)
    return parser


def _format(cmd: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")) -> None:
    cmd.add_argument("--format", choices=choices, default="text", help="output format (default: text)")


def _capture_options(cap: argparse.ArgumentParser) -> None:
    d = CaptureOptions()
    cap.add_argument("--seeds", type=Path, metavar="FILE", help="read seed URLs from FILE, one per line")
    cap.add_argument("--depth", type=int, default=d.depth,
                     help="link depth: 0 is the seeds and their requisites (default: %(default)s)")
    cap.add_argument("--same-host", action="store_true", help="follow links to the seeds' hosts only")
    cap.add_argument("--same-site", action="store_true", help="follow links to the seeds' sites only")
    cap.add_argument("--include", action="append", default=[], metavar="REGEX",
                     help="follow only linked pages matching REGEX (repeatable)")
    cap.add_argument("--exclude", action="append", default=[], metavar="REGEX",
                     help="never fetch URLs matching REGEX, seeds excepted (repeatable)")
    cap.add_argument("--ignore-robots", action="store_true", help="do not fetch or obey robots.txt")
    cap.add_argument("--connections", type=int, default=d.connections, help="connections in all (default: %(default)s)")
    cap.add_argument("--per-host", type=int, default=d.per_host, help="connections per host (default: %(default)s)")
    cap.add_argument("--delay", type=float, default=d.delay, metavar="SECONDS",
                     help="pause between requests to one host (default: %(default)s)")
    cap.add_argument("--connect-timeout", type=float, default=d.connect_timeout, metavar="SECONDS")
    cap.add_argument("--read-timeout", type=float, default=d.read_timeout, metavar="SECONDS")
    cap.add_argument("--max-redirects", type=int, default=d.max_redirects)
    cap.add_argument("--max-urls", type=int, default=0, help="stop queueing after this many URLs (0: no limit)")
    cap.add_argument("--max-size", type=_size, default=0, metavar="BYTES",
                     help="keep at most this much of each body (e.g. 50M); the rest is cut and "
                          "marked WARC-Truncated: length (default: no limit)")
    cap.add_argument("--min-rate", type=int, default=d.min_rate, metavar="BYTES_PER_S",
                     help="cut a body that arrives slower than this... (default: %(default)s)")
    cap.add_argument("--rate-window", type=float, default=d.rate_window, metavar="SECONDS",
                     help="...for this long (default: %(default)s)")
    cap.add_argument("--retries", type=int, default=d.retries,
                     help="more tries after 429/500/502/503/504, honouring Retry-After (default: %(default)s)")
    cap.add_argument("--min-free", type=_size, default=d.min_free, metavar="BYTES",
                     help="stop the capture (exit 4, partial kept) before free disk space drops below "
                          "this (default: 64M; 0 turns the guard off)")
    cap.add_argument("--max-per-host", type=int, default=0, metavar="N",
                     help="queue at most N URLs per host, against crawler traps (default: no limit)")
    cap.add_argument("--respect-noarchive", action="store_true",
                     help="keep no record of responses marked noarchive (X-Robots-Tag or <meta name=robots>)")
    cap.add_argument("--block-private", action="store_true",
                     help="refuse private, loopback and link-local addresses, checked after DNS and on "
                          "every redirect (recommended when the URLs come from others)")
    cap.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                     help="send this header to the seeds' hosts only (repeatable)")
    cap.add_argument("--cookies", metavar="FILE", help="a Netscape cookies.txt file (each cookie goes "
                                                       "only to its own domain)")
    cap.add_argument("--proxy", metavar="URL", help="send every request through this HTTP proxy")
    cap.add_argument("--ca-bundle", metavar="FILE", help="trust the CAs in this PEM file for https "
                                                         "(default: the certifi bundle)")
    cap.add_argument("--user-agent", default=DEFAULT_USER_AGENT)
    cap.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDR",
                     help="connect to ADDR for HOST:PORT instead of asking DNS, as curl does (repeatable)")
    cap.add_argument("--no-dedup", dest="dedup", action="store_false",
                     help="keep every body, even one a finished snapshot of the collection holds "
                          "(default: such a body is written as a WARC revisit record referring to it)")
    cap.add_argument("--conditional", action="store_true",
                     help="send If-None-Match / If-Modified-Since from the collection's last capture of "
                          "each URL; a 304 is kept as a revisit record. Note: pywb replays such a "
                          "revisit as an empty 304, so prefer the default digest deduplication for replay")
    cap.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def _options(args: argparse.Namespace) -> CaptureOptions:
    """Turn parsed capture arguments into CaptureOptions; raise UsageError on bad values."""
    for name in ("depth", "connections", "per_host", "max_redirects", "max_urls", "retries", "min_rate",
                 "max_per_host"):
        if getattr(args, name) < (1 if name in ("connections", "per_host") else 0):
            raise UsageError(f"--{name.replace('_', '-')} is out of range: {getattr(args, name)}")
    for name in ("delay", "connect_timeout", "read_timeout", "rate_window"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0 or (value == 0 and name != "delay"):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds, not {value}")
    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    return CaptureOptions(
        depth=args.depth, same_host=args.same_host, same_site=args.same_site,
        include=tuple(args.include), exclude=tuple(args.exclude), ignore_robots=args.ignore_robots,
        connections=args.connections, per_host=args.per_host, delay=args.delay,
        connect_timeout=args.connect_timeout, read_timeout=args.read_timeout,
        max_redirects=args.max_redirects, max_urls=args.max_urls, user_agent=args.user_agent,
        max_size=args.max_size, min_rate=args.min_rate, rate_window=args.rate_window, retries=args.retries,
        max_per_host=args.max_per_host, respect_noarchive=args.respect_noarchive, min_free=args.min_free,
        block_private=args.block_private, headers=tuple(_parse_header(h) for h in args.header),
        cookies=args.cookies, proxy=args.proxy, dedup=args.dedup, conditional=args.conditional,
        ca_bundle=args.ca_bundle,
        resolve=tuple(_parse_resolve(r) for r in args.resolve))


def _parse_header(value: str) -> tuple[str, str]:
    name, sep, content = value.partition(":")
    if not sep or not name.strip() or any(c in value for c in "\r\n"):
        raise UsageError(f"--header takes 'Name: value', not {value!r}")
    return name.strip(), content.strip()


def _size(value: str) -> int:
    """Parse a byte count with an optional K, M or G suffix (powers of 1024)."""
    text = value.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"not a size: {value!r} (use e.g. 500K, 50M, 2G)")
    return int(number) * scale


def _parse_resolve(value: str) -> tuple[str, int, str]:
    host, sep1, rest = value.partition(":")
    port, sep2, addr = rest.partition(":")
    if not (sep1 and sep2 and host and port.isdigit() and addr):
        raise UsageError(f"--resolve takes HOST:PORT:ADDR, not {value!r}")
    return host.lower(), int(port), addr.strip("[]")


def _seed_urls(args: argparse.Namespace) -> list[str]:
    urls = list(args.urls)
    if args.seeds:
        try:
            text = args.seeds.read_text("utf-8")
        except (OSError, UnicodeError) as exc:
            raise UsageError(f"cannot read --seeds {args.seeds}: {exc}") from None
        urls += [line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    if not urls:
        raise UsageError("capture needs at least one URL (or --seeds FILE)")
    return urls


# -- subcommands ------------------------------------------------------------------------------
def _cmd_capture(args: argparse.Namespace) -> int:
    from .capture import capture

    urls = [] if args.resume else _seed_urls(args)
    options = _options(args)
    if args.sign or args.tsa:   # a key that cannot sign fails before the capture, not after
        from .cli_proof import check_proof_options
        check_proof_options(args.sign, args.key, args.tsa)
    progress = None if args.quiet or not sys.stderr.isatty() else _Progress(sys.stderr)
    snap = capture(urls, args.collection, options, progress=progress, resume=args.resume)
    if progress:
        progress.done()
    proofs, failed = None, None
    if args.sign or args.tsa:   # signature and timestamps (cli_proof.py) go in before verification
        from .cli_proof import prove
        proofs, failed = prove(snap, args.sign, args.key, args.tsa)
    report = verify(snap.path, record=True) if args.verify else None
    code = _emit_capture(snap, report, args.format, proofs)
    if failed is not None:
        _error(f"{failed}; the snapshot {snap.short_id} is kept without that proof "
               "(add it later with archive sign / archive timestamp)")
        return failed.exit_code
    return code


def _emit_capture(snap: Snapshot, report: Report | None, fmt: str, proofs: list[Any] | None = None) -> int:
    """Print a new snapshot (and its verification), as one JSON document in JSON mode."""
    if fmt == "json":
        data = _snapshot_json(snap)
        if proofs is not None:
            data["proofs"] = proofs
        if report is not None:
            data["verify"] = report.to_json()
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _print_snapshot(snap, sys.stdout)
        for proof in proofs or ():
            sys.stdout.write(f"proof    {proof['summary']}\n")
        if report is not None:
            _print_report(report, "text", sys.stdout)
    return 0 if report is None or report.ok else 1


def _cmd_verify(args: argparse.Namespace) -> int:
    report = verify(args.snapshot, args.collection, expect=args.expect, record=True,
                    trust=args.trust, tsa_certs=args.tsa_cert)
    _print_report(report, args.format, sys.stdout)
    return 0 if report.ok else 1


def _cmd_cite(args: argparse.Namespace) -> int:
    from .cite import cite

    sys.stdout.write(cite(args.snapshot, args.collection, args.format, base_url=args.base_url))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .find import link_format, snapshots, timemap
    from .urls import canonicalize

    if args.url:
        mementos = timemap(args.url, args.collection, args.base_url)
        if args.format == "link":
            sys.stdout.write(link_format(canonicalize(args.url), mementos, args.base_url))
        elif args.format == "json":
            sys.stdout.write(json.dumps([vars(m) for m in mementos], indent=2) + "\n")
        else:
            for m in mementos:
                mark = {None: "first", True: "CHANGED", False: "same"}[m.changed]
                sys.stdout.write(f"{m.snapshot_id[:12]}  {m.timestamp}  {m.status:>3}  {mark:7}  {m.replay}\n")
        return 0 if mementos else 1
    found = snapshots(args.collection)
    if args.format == "json":
        sys.stdout.write(json.dumps([s.to_json() for s in found], indent=2) + "\n")
        return 0
    for s in found:
        v = s.verified
        checked = f"verified {v['time']} {'OK' if v['ok'] else 'FAILED'}" if v else "never verified"
        if not s.complete:
            checked = "INCOMPLETE (under way, interrupted or killed)"
        sys.stdout.write(f"{s.id[:12]:12}  {s.created}  {s.pages:>4} pages  {_human_bytes(s.bytes):>9}  "
                         f"{checked}  {' '.join(s.seeds)}\n")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from .diff import compare, compare_latest

    if args.url:
        result = compare_latest(args.url, args.collection, text=not args.no_text)
    elif args.before and args.after:
        result = compare(args.before, args.after, args.collection, text=not args.no_text)
    else:
        raise UsageError("diff takes two snapshots, or --url URL")
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
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
    from .find import details

    d = details(args.snapshot, args.collection)
    if args.format == "json":
        sys.stdout.write(json.dumps(d.to_json(), indent=2) + "\n")
        return 0
    out = sys.stdout
    out.write(f"snapshot {d.id}\nfolder   {d.path}\ncreated  {d.created}\n")
    out.write(f"window   {d.window.get('start', '?')} .. {d.window.get('end', '?')}\n")
    out.write(f"pages ({len(d.pages)}):\n")
    for p in d.pages:
        out.write(f"  {p.get('status', '')!s:>3}  {p.get('url')}  {p.get('title', '')}\n")
    out.write("resources by type:\n")
    for mime, t in d.types.items():
        out.write(f"  {t['count']:>5}  {_human_bytes(t['stored_bytes']):>9}  {mime}\n")
    for dep in d.dependencies:
        out.write(f"  revisits refer to {dep.get('records')} records of snapshot {str(dep.get('snapshot'))[:12]}\n")
    out.write(f"failures and skips ({len(d.failures)}):\n")
    for f in d.failures:
        out.write(f"  {f.get('url')}: {f.get('reason')}\n")
    out.write("options: " + json.dumps(d.options, sort_keys=True) + "\n")
    for w in d.warnings:
        out.write(f"warning: {w}\n")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .replay import Replay

    replay = Replay(args.collection, host=args.host, port=args.port)
    try:
        replay.start()
        print(f"serving {replay.collection.root} at {replay.url}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
        while True:
            time.sleep(1)
            if replay.refresh():
                print("snapshots changed: replay configuration regenerated", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 0   # the way to stop a server: not an error
    finally:
        replay.stop()


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    dest = export(args.snapshot, args.collection, wacz=args.wacz, warc=args.warc, overwrite=args.force)
    if args.format == "json":
        sys.stdout.write(json.dumps({"path": str(dest)}) + "\n")
    else:
        sys.stdout.write(f"{dest}\n")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .ingest import import_archive

    return _emit_capture(import_archive(args.file, args.collection), None, args.format)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .capture import capture
    from .demo import DemoSite

    site = DemoSite(port=args.port).start()
    try:
        if args.serve:
            print(f"demo site: {site.main_url}/ (and {site.other_url}/); Ctrl-C stops it", flush=True)
            while True:
                time.sleep(3600)
        print(f"demo site served at {site.main_url}/", file=sys.stderr)
        snap = capture([site.main_url + "/"], args.collection)
    finally:
        site.stop()
    return _emit_capture(snap, verify(snap.path, record=True), args.format)


# -- output -----------------------------------------------------------------------------------
def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _snapshot_json(snap: Snapshot) -> dict[str, Any]:
    return {"id": snap.id, "short_id": snap.short_id, "path": str(snap.path),
            "created": snap.created, "seeds": list(snap.seeds), "counts": snap.counts,
            "warnings": list(snap.warnings)}


def _print_snapshot(snap: Snapshot, out: TextIO) -> None:
    c = snap.counts
    out.write(f"snapshot {snap.short_id}  sha256:{snap.id}\n")
    out.write(f"folder   {snap.path}\n")
    out.write(f"created  {snap.created}\n")
    if "fetched" not in c:   # an imported archive: its own counts
        out.write("counts   " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) + "\n")
        return
    out.write(f"fetched  {c.get('pages', 0)} pages, {c.get('embeds', 0)} frames, "
              f"{c.get('requisites', 0)} requisites, {c.get('robotss', 0)} robots.txt: "
              f"{_human_bytes(c.get('bytes', 0))} in {c.get('records', 0)} WARC records\n")
    if c.get("revisits"):
        out.write(f"revisits {c['revisits']} bodies the collection holds already, not stored again "
                  f"({_human_bytes(c.get('dedup_bytes', 0))})\n")
    out.write(f"problems {c.get('failed', 0)} failed, {c.get('http_errors', 0)} HTTP errors; "
              f"{c.get('skipped', 0)} skipped (see logs/capture.jsonl)\n")
    for warning in snap.warnings:
        out.write(f"warning  {warning}\n")


def _print_report(report: Report, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
        return
    head = "OK" if report.ok else "FAILED"
    out.write(f"{head} {report.path} sha256:{report.snapshot_id}: {report.files} files, "
              f"{report.records} WARC records, {_human_bytes(report.bytes)} checked\n")
    if report.dependencies:
        out.write(f"  {report.dependencies} revisit records: their originals checked\n")
    if report.package_digest:
        out.write(f"  a self-contained export (package digest {report.package_digest}) of the snapshot above\n")
    for proof in report.proofs:
        if proof.ok or not proof.checked:   # a failed proof is among the problems below
            out.write(f"  {_printable(proof.summary)}\n")
    for problem in report.problems:
        out.write(f"  {_printable(str(problem))}\n")


def _printable(text: str) -> str:
    """Return text from a package (a name in a certificate, a URL) with its control characters
    escaped: nothing it holds can start a line of its own in a report.

    >>> _printable("evil\\n  signature valid")
    'evil\\\\n  signature valid'
    """
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class _Progress:
    """A one-line progress display on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.last = 0.0

    def __call__(self, counts: dict[str, int]) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        self.stream.write(f"\r  pages {counts.get('pages', 0)}  files {counts.get('fetched', 0)}  "
                          f"{_human_bytes(counts.get('bytes', 0))}  errors {counts.get('failed', 0)}  ")
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\r" + " " * 60 + "\r")
        self.stream.flush()
