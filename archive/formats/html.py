"""The text of an HTML document: its encoding, as browsers find it, and what a reader sees.

The encoding comes from a byte-order mark, the Content-Type charset, or a declaration near the
start (<meta charset>, <?xml encoding>, @charset), in that order (HTML Standard, "determining
the character encoding", simplified: no statistical sniffing). Shared by the write side, which
parses what it fetched for links, and the read side, which cites and compares text.
"""
from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable, Iterable, Iterator


HTML_TYPES = ("text/html", "application/xhtml+xml")
CSS_TYPES = ("text/css",)
TITLE_BYTES = 8192          # a <title> sits near the top; reading further would not be cheap
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def page_title(blocks: Iterable[bytes]) -> str:
    """Return the <title> found in the first TITLE_BYTES of a page's body blocks, or "".

    >>> page_title([b"<html><title>A &amp;\t B</title>"])
    'A & B'
    """
    head = b""
    try:
        for block in blocks:
            head += block
            if len(head) >= TITLE_BYTES:
                break
    except ValueError:
        pass   # a body that will not decode (wire.WireError) has no title we can read
    match = _TITLE.search(head[:TITLE_BYTES])
    return " ".join(html.unescape(match.group(1).decode("utf-8", "replace")).split()) if match else ""


def charset_of(content_type: str | None) -> str | None:
    """Return the charset parameter of a Content-Type value, if it names a known codec."""
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type or "", re.I)
    return known_codec(match.group(1)) if match else None


def known_codec(name: str | None) -> str | None:
    """Return the codec for a charset name when it decodes text ("base64" and "zlib" do not)."""
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_text(blocks: Iterable[bytes], charset: str | None,
                on_encoding: Callable[[str], None] | None = None) -> Iterator[str]:
    """Yield text from byte blocks: BOM first, then the given charset, then a declaration, then UTF-8.

    `on_encoding` is told the codec name chosen before the first text is yielded.
    """
    it = iter(blocks)
    first = b""
    for block in it:
        first += block
        if len(first) >= 4096:
            break
    bom_encoding, stripped = _strip_bom(first)
    declared = None if charset or bom_encoding else _declared(stripped[:4096])
    encoding = bom_encoding or charset or known_codec(declared) or "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    if on_encoding is not None:
        on_encoding(encoding)
    yield decoder.decode(stripped)
    for block in it:
        yield decoder.decode(block)
    yield decoder.decode(b"", final=True)


_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_DECLARED = re.compile(rb"<meta[^>]{0,400}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]{1,40})"
                       rb"|^\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9_.:-]{1,40})"
                       rb"|^@charset\s+\"([A-Za-z0-9_.:-]{1,40})\"", re.I)


def _strip_bom(data: bytes) -> tuple[str | None, bytes]:
    """Return (the encoding a byte-order mark names, the data without it).

    >>> _strip_bom(b"\\xef\\xbb\\xbfhi")
    ('utf-8', b'hi')
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, data[len(bom):]
    return None, data


def _declared(head: bytes) -> str | None:
    """Return the encoding declared near the start of a document, if any.

    >>> _declared(b'<html><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">')
    'Shift_JIS'
    >>> _declared(b'@charset "iso-8859-15"; a{}')
    'iso-8859-15'
    """
    match = _DECLARED.search(head)
    if not match:
        return None
    return next(g for g in match.groups() if g).decode("ascii")


_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
           "header", "footer", "nav", "ul", "ol", "table", "blockquote", "pre", "title", "figcaption"}


class _TextTarget:
    """lxml parser target collecting the text a reader sees, a line per block."""

    def __init__(self) -> None:
        self.lines: list[str] = [""]
        self.hidden = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag in ("script", "style", "noscript", "template"):
            self.hidden += 1
        elif tag in _BLOCKS:
            self.lines.append("")

    def end(self, tag: str) -> None:
        if tag in ("script", "style", "noscript", "template"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.lines.append("")

    def data(self, data: str) -> None:
        if not self.hidden:
            self.lines[-1] += data

    def close(self) -> list[str]:
        return [" ".join(line.split()) for line in self.lines if line.strip()]


def visible_text(body: bytes, charset: str | None = None) -> list[str]:
    """Return the visible text of an HTML document, one line per block, whitespace folded.

    >>> visible_text(b"<title>T</title><script>x=1</script><p>One  two</p><div>Three</div>")
    ['T', 'One two', 'Three']
    """
    from lxml import etree   # loaded by what reads a page's text, not by every command

    target = _TextTarget()
    parser = etree.HTMLParser(target=target, recover=True)
    text = "".join(decode_text([body], known_codec(charset)))
    if not text.strip():
        return []
    parser.feed(text)
    try:
        result: list[str] = parser.close()
    except etree.XMLSyntaxError:
        result = target.close()
    return result
