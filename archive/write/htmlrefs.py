"""The one table of HTML and SVG attributes through which a browser fetches something.

Built from the HTML Standard's index of attributes ("Attributes", section "Index") and the
fetching steps of each element, and from SVG 2's elements that load an external resource
(SVG 2 section 16.1.2 "Processing of external references"). Each row says what the fetched
thing is to a capture (Kind), how the value is written (Form) and where the rule is.

Attributes that hold URLs a browser does not fetch while showing the page (`cite`,
`form@action`, `button@formaction`, `longdesc`, `ping`, `itemid`...) are deliberately absent.
Lazy-loading attributes are not in any standard: scripts (lazysizes, lozad, jQuery Lazy
Load, WordPress themes) copy them into `src`/`srcset`/`style` when the image nears the
viewport, so a browser that scrolls fetches them; they are fetched as requisites, marked
"lazy" in the log.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from archive.models import Kind


class Form(enum.Enum):
    """How an attribute value holds its URL(s)."""

    URL = "url"            # one URL (HTML: "valid URL potentially surrounded by spaces")
    SRCSET = "srcset"      # image candidate strings (HTML 4.8.4.2.1)
    CSS = "css"            # a style attribute: CSS declarations (CSS Style Attributes)
    DOCUMENT = "document"  # a whole HTML document in an attribute (iframe srcdoc)
    URL_OR_CSS = "url-or-css"   # lazy background: a URL, or a url()/image-set() value


@dataclass(frozen=True)
class Ref:
    """One row: the Kind of what is fetched, the value's Form, the rule's place, a condition."""

    kind: Kind
    form: Form
    spec: str
    when: str = ""        # "rel": link@rel decides; "type=image": only <input type=image>
    lazy: bool = False


def _r(kind: Kind, form: Form, spec: str, when: str = "", lazy: bool = False) -> Ref:
    return Ref(kind, form, spec, when, lazy)


P, E, R = Kind.PAGE, Kind.EMBED, Kind.REQUISITE
ANY = "*"   # an attribute fetched on whatever element carries it

# (element, attribute) -> Ref. Element and attribute names as the HTML parser gives them
# (lowercase; SVG's feImage is "feimage", xlink:href keeps its prefix).
REFERENCES: dict[tuple[str, str], Ref] = {
    # hyperlinks: followed as pages (HTML 4.6.1, 4.6.4 "Following hyperlinks")
    ("a", "href"): _r(P, Form.URL, "HTML 4.5.1 the a element"),
    ("area", "href"): _r(P, Form.URL, "HTML 4.8.14 the area element"),
    ("a", "xlink:href"): _r(P, Form.URL, "SVG 2 21.2 the a element (xlink:href)"),
    # documents inside documents
    ("iframe", "src"): _r(E, Form.URL, "HTML 4.8.5 the iframe element"),
    ("iframe", "srcdoc"): _r(E, Form.DOCUMENT, "HTML 4.8.5 the iframe element (srcdoc)"),
    ("frame", "src"): _r(E, Form.URL, "HTML 16.2 frames (obsolete, still rendered)"),
    ("object", "data"): _r(R, Form.URL, "HTML 4.8.7 the object element"),
    ("embed", "src"): _r(R, Form.URL, "HTML 4.8.6 the embed element"),
    # <link>: fetched for the rel types that fetch (HTML 4.6.7 link types)
    ("link", "href"): _r(R, Form.URL, "HTML 4.2.4 the link element; 4.6.7 link types", "rel"),
    ("link", "imagesrcset"): _r(R, Form.SRCSET, "HTML 4.2.4 (imagesrcset with rel=preload)", "rel"),
    # embedded content and scripts
    ("img", "src"): _r(R, Form.URL, "HTML 4.8.4 the img element"),
    ("img", "srcset"): _r(R, Form.SRCSET, "HTML 4.8.4.2 srcset"),
    ("source", "src"): _r(R, Form.URL, "HTML 4.8.8 media source"),
    ("source", "srcset"): _r(R, Form.SRCSET, "HTML 4.8.2 the source element in picture"),
    ("script", "src"): _r(R, Form.URL, "HTML 4.12.1 the script element"),
    ("video", "src"): _r(R, Form.URL, "HTML 4.8.9 the video element"),
    ("video", "poster"): _r(R, Form.URL, "HTML 4.8.9 the video element (poster)"),
    ("audio", "src"): _r(R, Form.URL, "HTML 4.8.10 the audio element"),
    ("track", "src"): _r(R, Form.URL, "HTML 4.8.11 the track element"),
    ("input", "src"): _r(R, Form.URL, "HTML 4.10.5.1.19 image button state", "type=image"),
    # presentational attributes the rendering section still maps to a background image
    ("body", "background"): _r(R, Form.URL, "HTML 15.3.1 (body background)"),
    ("table", "background"): _r(R, Form.URL, "HTML 15.3.10 (table background)"),
    ("td", "background"): _r(R, Form.URL, "HTML 15.3.10 (cell background)"),
    ("th", "background"): _r(R, Form.URL, "HTML 15.3.10 (cell background)"),
    # SVG 2 external references (16.1.2): image, use (sprites), feImage, script
    ("image", "href"): _r(R, Form.URL, "SVG 2 12.3 the image element"),
    ("image", "xlink:href"): _r(R, Form.URL, "SVG 2 12.3 the image element (xlink:href)"),
    ("use", "href"): _r(R, Form.URL, "SVG 2 5.6 the use element"),
    ("use", "xlink:href"): _r(R, Form.URL, "SVG 2 5.6 the use element (xlink:href)"),
    ("feimage", "href"): _r(R, Form.URL, "Filter Effects 1 9.15 feImage"),
    ("feimage", "xlink:href"): _r(R, Form.URL, "Filter Effects 1 9.15 feImage (xlink:href)"),
    ("script", "href"): _r(R, Form.URL, "SVG 2 15.2 the script element"),
    ("script", "xlink:href"): _r(R, Form.URL, "SVG 2 15.2 the script element (xlink:href)"),
    # CSS in an attribute, on any element
    (ANY, "style"): _r(R, Form.CSS, "HTML 3.2.6 the style attribute; CSS Style Attributes"),
    # lazy loaders (no standard; see the module docstring)
    (ANY, "data-src"): _r(R, Form.URL, "lazy loader", lazy=True),
    (ANY, "data-srcset"): _r(R, Form.SRCSET, "lazy loader", lazy=True),
    (ANY, "data-lazy-src"): _r(R, Form.URL, "lazy loader", lazy=True),
    (ANY, "data-lazy-srcset"): _r(R, Form.SRCSET, "lazy loader", lazy=True),
    (ANY, "data-lazy"): _r(R, Form.URL, "lazy loader", lazy=True),
    (ANY, "data-original"): _r(R, Form.URL, "lazy loader (jQuery Lazy Load)", lazy=True),
    (ANY, "data-original-set"): _r(R, Form.SRCSET, "lazy loader (jQuery Lazy Load)", lazy=True),
    (ANY, "data-echo"): _r(R, Form.URL, "lazy loader (echo.js)", lazy=True),
    (ANY, "data-poster"): _r(R, Form.URL, "lazy loader (video poster)", lazy=True),
    (ANY, "data-bg"): _r(R, Form.URL_OR_CSS, "lazy loader (background)", lazy=True),
    (ANY, "data-background"): _r(R, Form.URL_OR_CSS, "lazy loader (background)", lazy=True),
    (ANY, "data-background-image"): _r(R, Form.URL_OR_CSS, "lazy loader (background)", lazy=True),
    (ANY, "data-bgset"): _r(R, Form.SRCSET, "lazy loader (lazysizes bgset)", lazy=True),
}

# link rel keywords whose link a browser fetches (HTML 4.6.7; icon variants and mask-icon as
# browsers and platforms read them). dns-prefetch and preconnect open connections only.
FETCHING_RELS = frozenset({
    "stylesheet", "icon", "shortcut", "apple-touch-icon", "apple-touch-icon-precomposed",
    "mask-icon", "manifest", "preload", "modulepreload", "prefetch", "prerender",
})


def lookup(tag: str, name: str) -> Ref | None:
    """Return the row for an attribute on an element, or None when it fetches nothing.

    >>> lookup("use", "xlink:href").kind, lookup("div", "data-src").lazy, lookup("q", "cite")
    (<Kind.REQUISITE: 'requisite'>, True, None)
    """
    return REFERENCES.get((tag, name)) or REFERENCES.get((ANY, name))


def applies(ref: Ref, attrib: dict[str, str]) -> bool:
    """Return True when a row's condition holds for the element's attributes.

    >>> applies(REFERENCES["link", "href"], {"rel": "Prefetch"}), applies(REFERENCES["link", "href"], {"rel": "alternate"})
    (True, False)
    """
    if ref.when == "rel":
        return not FETCHING_RELS.isdisjoint(attrib.get("rel", "").lower().split())
    if ref.when == "type=image":
        return attrib.get("type", "").strip().lower() == "image"
    return True
