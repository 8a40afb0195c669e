"""Redirect chains: where a hop goes, when a chain must stop, and loops a cookie may end.

A browser follows a redirect back to a URL of the same chain (a cookie wall answers
`302 Location: /article` with `Set-Cookie` until the cookie comes back) and gives up after
a fixed number of hops (Fetch Standard 4.4 "HTTP-redirect fetch": more than 20 is a network
error). The crawler asks again for a URL its chain has passed through when a cookie was set
since, with the cookies it has now; a chain that never ends fails at `--max-redirects`, and
one that comes back with no new cookie is a loop (the same request would get the same answer). A meta refresh is a
redirect for scope (HTML 4.2.5.3): it keeps its page's depth and counts as a hop.
"""
from __future__ import annotations

from archive.formats.urls import InvalidURL, canonicalize
from archive.models import Kind, Link

REFRESH = "meta@refresh"   # the via of a <meta http-equiv=refresh> target


def redirect_hop(link: Link, location: str, base: str, limit: int) -> tuple[Link, str, bool]:
    """Return (next hop, why it is not followed or "", whether that is a failure).

    `link` is the hop just fetched, `location` its Location header (may be empty), `base`
    the URL it was fetched as. Past `limit` hops the chain fails ("more than N redirects").

    >>> hop, why, failed = redirect_hop(Link("http://a.test/x", Kind.PAGE, hops=3), "/y", "http://a.test/x", 3)
    >>> hop.url, hop.hops, why, failed
    ('http://a.test/y', 4, 'more than 3 redirects', True)
    """
    target, why, failed = None, "", False
    if not location:
        why = "redirect without Location"
    else:
        try:
            target = canonicalize(location, base)
        except InvalidURL as exc:
            why = exc.why
    if target is not None and link.hops >= limit:
        why, failed = f"more than {limit} redirects", True
    hop = Link(target or location, link.kind, link.depth, link.url, "redirect", link.hops + 1,
               link.seed, link.nest)
    return hop, why, failed


def refresh_hop(parent: Link, url: str) -> Link:
    """Return the Link for a meta refresh target: a redirect hop, same depth and seed.

    >>> refresh_hop(Link("http://a.test/", Kind.PAGE, 0, seed="http://a.test/"), "http://a.test/a/")
    Link(url='http://a.test/a/', kind=<Kind.PAGE: 'page'>, depth=0, source='http://a.test/', via='meta@refresh', hops=1, seed='http://a.test/', nest=0, attempt=0)
    """
    return Link(url, parent.kind, parent.depth, parent.url, REFRESH, parent.hops + 1, parent.seed, parent.nest)


class Chains:
    """Which URL each redirect hop came from and whether its answer set a cookie, to tell a
    cookie wall (ask again) from a loop (stop) and from a target fetched before (neither).

    Kept on the crawler's main thread only. A chain is walked back at most `limit` steps.
    """

    def __init__(self) -> None:
        self.came_from: dict[str, str] = {}
        self.set_cookie: dict[str, bool] = {}

    def back(self, hop: Link, limit: int, set_cookie: bool) -> str:
        """Record `hop`, the redirect just answered by `hop.source` (`set_cookie`: with
        Set-Cookie); return "" when its URL is new to its chain, "again" when the chain
        comes back to it after a cookie was set, "loop" when it comes back with none.

        >>> chains = Chains()
        >>> chains.back(Link("/b", Kind.PAGE, source="/a", hops=1), 10, False)
        ''
        >>> chains.back(Link("/a", Kind.PAGE, source="/b", hops=2), 10, True)
        'again'
        >>> chains.back(Link("/x", Kind.PAGE, source="/x", hops=1), 10, False)
        'loop'
        """
        self.set_cookie[hop.source or ""] = set_cookie
        url, steps, cookie = hop.source, 0, False
        while url is not None and steps <= limit:
            cookie = cookie or self.set_cookie.get(url, False)
            if url == hop.url:
                break
            url, steps = self.came_from.get(url), steps + 1
        else:
            url = None
        self.came_from[hop.url] = hop.source or ""
        if url is None:
            return ""
        return "again" if cookie else "loop"
