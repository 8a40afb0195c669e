"""The capture commands: `archive capture` and `archive demo`, and the capture options they
share with `archive schedule add`."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from archive.errors import UsageError
from archive.models import DEFAULT_USER_AGENT, CaptureOptions

from .common import command, emit_capture, error, printable
from .qa import add_options as add_qa_options


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `capture` and `demo` to the `archive` parser."""
    cap = command(sub, common, "capture", _cmd_capture, "capture URLs into a new snapshot",
                  "Capture URLs, their page requisites and the pages they link to.")
    cap.add_argument("urls", nargs="*", metavar="URL",
                     help="http(s) URL, or a bare host name such as example.org (taken as https://)")
    cap.add_argument("--out", dest="collection", type=Path, help="same as -C")
    cap.add_argument("--verify", action="store_true", help="verify the snapshot once written")
    cap.add_argument("--qa", action="store_true", help="then replay each page in Chromium and compare it "
                                                       "with the capture, as `archive qa` does (exit 1 under --min-match)")
    add_qa_options(cap)
    cap.add_argument("--resume", metavar="ID", help="finish an interrupted capture (its id under .partial/, "
                                                    "as the interruption message says); seeds and options "
                                                    "are its own, nothing it holds is fetched again")
    capture_options(cap)
    cap.add_argument("--progress-jsonl", action="store_true",
                     help="progress as JSON lines on stderr, {\"progress\": {counts}} at most 4 a "
                          "second (for programs, e.g. the web interface's capture form)")
    cap.add_argument("--sign", action="store_true", help="sign the snapshot (see `archive keys new`)")
    cap.add_argument("--key", type=Path, metavar="PATH", help="the signing key (default: the config folder's)")
    cap.add_argument("--tsa", action="append", default=[], metavar="URL",
                     help="get an RFC 3161 timestamp of the snapshot from this TSA (repeatable)")

    demo = command(sub, common, "demo", _cmd_demo, "capture the built-in demo site",
                   "Serve the built-in demo site on 127.0.0.1, capture and verify it.")
    demo.add_argument("--serve", action="store_true", help="only serve the site until interrupted")
    demo.add_argument("--port", type=int, default=0, help="port of the main host (default: any free)")


def capture_options(cap: argparse.ArgumentParser) -> None:
    """Add the options of a capture (scope, politeness, limits, network) to a parser."""
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
    cap.add_argument("--connect-timeout", type=float, default=d.connect_timeout, metavar="SECONDS",
                     help="give up on a connection not made in this time (default: %(default)s)")
    cap.add_argument("--read-timeout", type=float, default=d.read_timeout, metavar="SECONDS",
                     help="give up on a server silent for this long (default: %(default)s)")
    cap.add_argument("--max-redirects", type=int, default=d.max_redirects, metavar="N",
                     help="follow at most N redirects from one URL (default: %(default)s)")
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
    _request_options(cap)
    cap.add_argument("--no-dedup", dest="dedup", action="store_false",
                     help="keep every body, even one a finished snapshot of the collection holds "
                          "(default: such a body is written as a WARC revisit record referring to it)")
    cap.add_argument("--conditional", action="store_true",
                     help="send If-None-Match / If-Modified-Since from the collection's last capture of "
                          "each URL; a 304 is kept as a revisit record. Note: pywb replays such a "
                          "revisit as an empty 304, so prefer the default digest deduplication for replay")
    cap.add_argument("--browser", action="store_true",
                     help="also load every page in headless Chromium through a recording proxy, so what "
                          "scripts fetch is captured; adds a screenshot (urn:view:) and the page text (urn:text:)")
    cap.add_argument("--browser-timeout", type=float, default=d.browser_timeout, metavar="SECONDS",
                     help="time for each page in the browser, all behaviours (default: %(default)s)")
    cap.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def _request_options(cap: argparse.ArgumentParser) -> None:
    """Add what shapes each request: headers, cookies, proxy, trust, User-Agent, addresses."""
    cap.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                     help="send this header to the seeds' hosts only (repeatable)")
    cap.add_argument("--cookies", metavar="FILE", help="a Netscape cookies.txt file seeding the capture's "
                                                       "cookie jar (each cookie goes only to its own domain)")
    cap.add_argument("--proxy", metavar="URL", help="send every request through this HTTP proxy")
    cap.add_argument("--ca-bundle", metavar="FILE", help="trust the CAs in this PEM file for https "
                                                         "(default: the certifi bundle)")
    cap.add_argument("--user-agent", default=DEFAULT_USER_AGENT, metavar="TEXT",
                     help="the User-Agent header sent (default: %(default)s)")
    cap.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDR",
                     help="connect to ADDR for HOST:PORT instead of asking DNS, as curl does (repeatable)")


def options_of(args: argparse.Namespace) -> CaptureOptions:
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
    browser_timeout = getattr(args, "browser_timeout", CaptureOptions.browser_timeout)
    if not math.isfinite(browser_timeout) or browser_timeout <= 0:
        raise UsageError(f"--browser-timeout must be a positive number of seconds, not {browser_timeout}")
    return CaptureOptions(
        browser=getattr(args, "browser", False), browser_timeout=browser_timeout,
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
    return typed_urls(urls)


def typed_urls(urls: list[str]) -> list[str]:
    """Return the seeds as URLs, a bare host taken as https:// (said on stderr); raise
    UsageError naming every argument that is not a URL, before anything is fetched."""
    from archive.formats.urls import InvalidURL, typed_url

    seeds, bad = [], []
    for raw in urls:
        try:
            url, assumed = typed_url(raw)
        except InvalidURL as exc:
            bad.append(f"{printable(raw)!r}: {exc.why}")
            continue
        if assumed:
            print(f"archive: taking {printable(raw)} as {printable(url)}", file=sys.stderr)
        seeds.append(url)
    if bad:
        raise UsageError("nothing captured; not a URL: " + "; ".join(bad))
    return seeds

def _cmd_capture(args: argparse.Namespace) -> int:
    from archive.read.verify import verify
    from archive.write.capture import capture

    urls = [] if args.resume else _seed_urls(args)
    options = options_of(args)
    if args.sign or args.tsa:   # a key that cannot sign fails before the capture, not after
        from .proof import check_proof_options
        check_proof_options(args.sign, args.key, args.tsa)
    from .progress import CaptureProgress   # rich loads for a capture only

    live = not args.quiet and args.format != "json" and sys.stderr.isatty()
    with CaptureProgress.on_stderr(live) as shown:
        progress = _json_lines() if args.progress_jsonl else (shown if live else None)
        snap = capture(urls, args.collection, options, progress=progress,
                       on_url=shown.url_done if args.verbose else None, resume=args.resume)
    proofs, failed = None, None
    if args.sign or args.tsa:   # signature and timestamps (proof.py) go in before verification
        from .proof import prove
        proofs, failed = prove(snap, args.sign, args.key, args.tsa, args.proxy)
    report = verify(snap.path, args.collection, record=True) if args.verify else None
    if args.qa:
        from .qa import after_capture
        return after_capture(snap, report, args, proofs, failed)
    code = emit_capture(snap, report, args.format, proofs)
    if failed is not None:
        error(f"{failed}; the snapshot {snap.short_id} is kept without that proof "
               "(add it later with archive sign / archive timestamp)")
        return failed.exit_code
    return code


def _json_lines(every: float = 0.25) -> Any:
    """Return a progress callback writing {"progress": counts} lines to stderr, `every` seconds at most."""
    import json
    last = [0.0]

    def emit(counts: dict[str, int]) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            print(json.dumps({"progress": {k: v for k, v in counts.items() if isinstance(v, int)}}),
                  file=sys.stderr, flush=True)
    return emit


def _cmd_demo(args: argparse.Namespace) -> int:
    from archive.demo import DemoSite
    from archive.read.verify import verify
    from archive.write.capture import capture

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
    return emit_capture(snap, verify(snap.path, args.collection, record=True), args.format)
