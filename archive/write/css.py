"""The references a browser fetches from CSS, read with tinycss2 (the only tinycss2 import).

CSS is tokenized by the rules of CSS Syntax Level 3 (section 4: every escape form, strings,
url tokens, comments), never with regular expressions. A stylesheet, a <style> element and a
style attribute go through the same walk, which yields:

- every `url(...)`: the url token (`url(a.png)`) and the function with a string
  (`url("a.png")`), in any property or at-rule, so `@font-face src` lists, `cursor`,
  `background`, `list-style`, `border-image`, `mask`, `content`, `filter`... (CSS Values 4
  section 4.5); `src("...")` (CSS Values 4) likewise;
- the strings of `image-set()` and `-webkit-image-set()` (CSS Images 4 section 2.4.2),
  which a browser reads as URLs;
- the string of `@import "x.css"` (CSS Cascade 4 section 2.1).

The URL of `@namespace` names a namespace and is not fetched (CSS Namespaces 3 section 3).

References inside `image-set()` options such as `type("image/avif")` are not URLs and are
not yielded. The walk is iterative: hostile nesting cannot overflow the stack.
"""
from __future__ import annotations

from collections.abc import Iterator

import tinycss2
from tinycss2 import ast

URL_FUNCTIONS = frozenset({"url", "src"})
IMAGE_SETS = frozenset({"image-set", "-webkit-image-set"})
NEEDLES = ("url(", "src(", "image-set(", "@import")   # see may_refer


def css_references(text: str) -> Iterator[tuple[str, str]]:
    """Yield (reference as written, how: "import" | "url" | "image-set") from CSS text.

    >>> list(css_references('@import "a.css"; p { background: url(b\\\\2e png) }'))
    [('a.css', 'import'), ('b.png', 'url')]
    >>> list(css_references('x{b:image-set("1x.jpg" 1x, url(2x.jpg) 2x, "a.avif" type("image/avif"))}'))
    [('1x.jpg', 'image-set'), ('2x.jpg', 'url'), ('a.avif', 'image-set')]
    """
    if may_refer(text):
        yield from _walk(text)


def may_refer(text: str) -> bool:
    """Return False when `text` can hold no reference, without tokenizing it (most of a
    capture's CSS time went to tokenizing stylesheets that refer to nothing).

    Every reference starts at a name the tokenizer reads as "url(", "src(", "image-set(" or
    "@import", in any ASCII case (CSS Syntax 3 sections 4.3.4 and 4.3.1: a function token is
    a name followed at once by "("; `lower_name` is ASCII lowercase). Without a backslash
    no escape can spell a name (section 4.3.7), so each is in the text as written; one
    backslash anywhere, and the text is tokenized. True is only "maybe": a needle inside a
    comment or a string is found by the walk to be neither.
    """
    if "\\" in text:
        return True
    low = text.lower()   # ASCII letters as ASCII lowercase does; others only add matches (K, U+212A, to k)
    return any(needle in low for needle in NEEDLES)


def _walk(text: str) -> Iterator[tuple[str, str]]:
    """`css_references` without the shortcut: the whole tokenizer walk."""
    stack: list[Iterator[ast.Node]] = [iter(tinycss2.parse_component_value_list(text, skip_comments=True))]
    after_import = in_namespace = False
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            continue
        if isinstance(node, ast.WhitespaceToken):
            continue
        if in_namespace:   # @namespace names a namespace, it fetches nothing (CSS Namespaces 3)
            in_namespace = not (isinstance(node, ast.LiteralToken) and node.value == ";")
            continue
        if after_import:
            after_import = False
            target = node.value if isinstance(node, ast.StringToken) else _url_of(node)
            if target is not None:
                yield target, "import"
                continue
        if isinstance(node, _Candidate):
            yield node.value, "image-set"
        elif isinstance(node, ast.URLToken):
            yield node.value, "url"
        elif isinstance(node, ast.AtKeywordToken):
            after_import = node.lower_value == "import"
            in_namespace = node.lower_value == "namespace"
        elif isinstance(node, ast.FunctionBlock):
            name = node.lower_name
            if name in URL_FUNCTIONS:
                target = _url_of(node)
                if target is not None:
                    yield target, "url"
            elif name in IMAGE_SETS:
                stack.append(_image_set(node.arguments))
            else:
                stack.append(iter(node.arguments))
        elif isinstance(node, (ast.CurlyBracketsBlock, ast.SquareBracketsBlock, ast.ParenthesesBlock)):
            stack.append(iter(node.content))


def _url_of(node: ast.Node) -> str | None:
    """Return the URL of a url token or a url("...")/src("...") function, else None."""
    if isinstance(node, ast.URLToken):
        return str(node.value)
    if isinstance(node, ast.FunctionBlock) and node.lower_name in URL_FUNCTIONS:
        first = next((a for a in node.arguments if not isinstance(a, ast.WhitespaceToken)), None)
        if isinstance(first, ast.StringToken):
            return str(first.value)
    return None


class _Candidate(ast.StringToken):
    """A string argument of image-set(): a URL (CSS Images 4 section 2.4.2)."""


def _image_set(arguments: list[ast.Node]) -> Iterator[ast.Node]:
    """Yield image-set() arguments, each string marked as a candidate URL."""
    for arg in arguments:
        if isinstance(arg, ast.StringToken):
            yield _Candidate(arg.source_line, arg.source_column, arg.value, arg.representation)
        else:
            yield arg
