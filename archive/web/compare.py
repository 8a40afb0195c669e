"""How alike a capture and its replay are: screenshots pixel by pixel, visible text word by word.

Pure functions on bytes and strings; `web/qa.py` gathers what they compare. Pillow is used
here and nowhere else in the package.
"""
from __future__ import annotations

import difflib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageChops

from archive.errors import ArchiveError

MAX_PIXELS = 60_000_000      # one screenshot (about 1280 x 46 000): more is refused, not decoded
MAX_WORDS = 20_000           # words of each text compared; the rest is left out (and said)
MISSING = (255, 0, 255)      # in a difference image: area only one of the two screenshots has
DIFFERENT = (255, 0, 0)      # in a difference image: pixels that differ


class BadImage(ArchiveError):
    """A screenshot that is not a PNG or JPEG Pillow can read, or is over MAX_PIXELS."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(f"unreadable screenshot: {why}")


@dataclass(frozen=True)
class ImageMatch:
    """The comparison of two screenshots over the union of their areas.

    `match` is the share (0..1) of the union's pixels that are equal in both (every channel,
    alpha left out); area only one of them covers counts as different. `diff_png` is a PNG of
    the union: the capture in pale grey, differing pixels red, area only one covers magenta.
    """

    match: float
    size_capture: tuple[int, int]
    size_replay: tuple[int, int]
    different: int
    diff_png: bytes


def _load(data: bytes, which: str) -> Image.Image:
    """Return an RGB image from PNG/JPEG bytes; raise BadImage (size checked before decoding)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise BadImage(f"{which} is {width}x{height} pixels, over {MAX_PIXELS}")
            image.load()
    except BadImage:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as exc:
        raise BadImage(f"{which}: {exc}") from None
    return image.convert("RGB")


def compare_images(capture: bytes, replay: bytes) -> ImageMatch:
    """Compare two screenshots (PNG or JPEG bytes) pixel by pixel; raise BadImage.

    >>> from PIL import Image
    >>> def png(w, h, colour):
    ...     out = io.BytesIO(); Image.new("RGB", (w, h), colour).save(out, "PNG"); return out.getvalue()
    >>> compare_images(png(10, 10, "white"), png(10, 10, "white")).match
    1.0
    >>> compare_images(png(10, 10, "white"), png(10, 20, "white")).match   # half the union missing
    0.5
    """
    a, b = _load(capture, "capture screenshot"), _load(replay, "replay screenshot")
    width, height = max(a.width, b.width), max(a.height, b.height)
    overlap = (min(a.width, b.width), min(a.height, b.height))
    box = (0, 0) + overlap
    # a pixel is equal when every channel is: the largest channel difference is 0
    bands = ImageChops.difference(a.crop(box), b.crop(box)).split()
    largest = ImageChops.lighter(ImageChops.lighter(bands[0], bands[1]), bands[2])
    equal = largest.histogram()[0]
    total = width * height
    different = total - equal

    # the difference image: the capture pale, red where pixels differ, magenta where one is missing
    base = Image.new("RGB", (width, height), MISSING)
    base.paste(Image.blend(a.convert("L").convert("RGB"), Image.new("RGB", a.size, "white"), 0.7), (0, 0))
    missing = Image.new("L", (width, height), 255)
    missing.paste(0, box)
    base.paste(MISSING, (0, 0, width, height), missing)
    changed = Image.new("L", (width, height), 0)
    changed.paste(largest.point(lambda v: 255 if v else 0), (0, 0))
    base.paste(DIFFERENT, (0, 0, width, height), changed)
    out = io.BytesIO()
    base.save(out, "PNG", optimize=False)
    return ImageMatch(equal / total if total else 1.0, a.size, b.size, different, out.getvalue())


def words(text: str, limit: int = MAX_WORDS) -> list[str]:
    """Return the first `limit` whitespace-separated words of a text.

    >>> words(" One\\n two\\tthree ", 2)
    ['One', 'two']
    """
    found: list[str] = []
    for word in text.split():
        if len(found) >= limit:
            break
        found.append(word)
    return found


def text_match(capture: str, replay: str) -> float:
    """Return the similarity (0..1) of two visible texts: difflib's ratio over their words
    (twice the words in matching blocks over the words of both), whitespace ignored; 1.0 when
    both are empty.

    >>> text_match("the quick brown fox", "the  quick\\nbrown fox")
    1.0
    >>> text_match("the quick brown fox", "the quick")
    0.6666666666666666
    """
    a, b = words(capture), words(replay)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b).ratio()
