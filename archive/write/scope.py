"""What to fetch: depth, same-host and same-site rules, include/exclude patterns, robots.txt.

Seeds, requisites and embedded frames are always fetched (a page is not captured without
them); robots.txt and the page rules apply to linked pages only.
"""
from __future__ import annotations

import re
import urllib.robotparser
from collections.abc import Iterable

from archive.errors import UsageError
from archive.formats.urls import host_of, origin_of, site_of
from archive.formats.wire import WireError, decode_content, iter_payload
from archive.models import CaptureOptions, Exchange, Kind, Link

from .hops import REFRESH

ROBOTS_CAP = 512 << 10   # RFC 9309 asks crawlers to parse at least 500 KiB
ROBOTS_AGENT = "archive"
MAX_NEST = 8   # real pages nest stylesheet imports and frames a few levels; a trap nests forever


class Scope:
    """Decides whether a found Link is fetched; `reason()` says why not."""

    def __init__(self, seeds: Iterable[str], options: CaptureOptions):
        self.options = options
        seeds = list(seeds)
        self.hosts = {host_of(u) for u in seeds}
        # the public suffix list loads only for --same-site
        self.sites = {site_of(u) for u in seeds} if options.same_site else set()
        self.include = _compile(options.include, "--include")
        self.exclude = _compile(options.exclude, "--exclude")

    def reason(self, link: Link) -> str | None:
        """Return None when `link` is in scope, else a short reason for the log."""
        if link.via == REFRESH and link.hops > self.options.max_redirects:
            return f"more than {self.options.max_redirects} redirects"   # a chain of refreshes
        if link.seed or link.kind is Kind.ROBOTS:
            return None
        for pattern in self.exclude:
            if pattern.search(link.url):
                return f"excluded by {pattern.pattern!r}"
        if link.nest > MAX_NEST:
            return f"nested more than {MAX_NEST} levels below its page"
        if link.kind is not Kind.PAGE:
            return None
        if link.depth > self.options.depth:
            return f"beyond depth {self.options.depth}"
        if self.options.same_host and host_of(link.url) not in self.hosts:
            return "other host (--same-host)"
        if self.options.same_site and site_of(link.url) not in self.sites:
            return "other site (--same-site)"
        if self.include and not any(p.search(link.url) for p in self.include):
            return "not matched by --include"
        return None

    def needs_robots(self, link: Link) -> bool:
        """Return True when robots.txt decides whether `link` is fetched."""
        return link.kind is Kind.PAGE and not link.seed and not self.options.ignore_robots


def _compile(patterns: Iterable[str], option: str) -> list[re.Pattern[str]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise UsageError(f"{option} {pattern!r} is not a valid regular expression: {exc}") from None
    return compiled


def robots_url(url: str) -> str:
    """Return the robots.txt URL for the origin of `url`.

    >>> robots_url("https://ex.org:8443/a/b?c")
    'https://ex.org:8443/robots.txt'
    """
    return origin_of(url) + "/robots.txt"


class Robots:
    """The robots.txt rules of one origin, as RFC 9309 reads an answer (or its absence)."""

    def __init__(self, parser: urllib.robotparser.RobotFileParser, summary: str):
        self.parser = parser
        self.summary = summary

    @classmethod
    def from_exchange(cls, exchange: Exchange | None) -> Robots:
        """Parse a captured robots.txt answer; None means the origin was unreachable."""
        parser = urllib.robotparser.RobotFileParser()
        if exchange is None or exchange.status >= 500:
            parser.disallow_all = True  # type: ignore[attr-defined]  # unreachable: assume complete disallow
            return cls(parser, "unreachable: disallow all")
        if exchange.status >= 400 or exchange.status < 200 or 300 <= exchange.status < 400:
            parser.allow_all = True  # type: ignore[attr-defined]  # unavailable: no restrictions
            return cls(parser, f"status {exchange.status}: allow all")
        parser.parse(_text(exchange).splitlines())
        return cls(parser, "parsed")

    def allows(self, url: str) -> bool:
        """Return True when the rules let our user agent fetch `url`."""
        return bool(self.parser.can_fetch(ROBOTS_AGENT, url))


def _text(exchange: Exchange) -> str:
    parts: list[bytes] = []
    with exchange.block.open() as f:
        f.seek(exchange.header_length)
        try:
            for block in decode_content(iter_payload(f, exchange.chunked),
                                        exchange.header("Content-Encoding"), ROBOTS_CAP):
                parts.append(block)
        except WireError:
            pass  # rules past the cap, or after corrupt bytes, are not read
    return b"".join(parts).decode("utf-8", errors="replace")
