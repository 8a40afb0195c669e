"""What every command group of the command line shares: one shape for a subcommand's
set-up, and one output path for what commands print.

Everything a command prints goes through one filter, `SafeStream`, which `archive.cli.main`
puts in front of stdout and stderr: control characters (C0 but the line feed, C1, DEL) and
the characters that reorder or break lines (bidi controls, U+2028/9) are written escaped,
so no text from a page, a package or the network can move the cursor, clear the screen, set
the clipboard (OSC 52) or talk to the terminal. A single field that must not even start a
line of its own (a problem in a report) goes through `printable`, which escapes line feeds too.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import TYPE_CHECKING, Any, TextIO

from archive.models import Snapshot

if TYPE_CHECKING:   # the read path loads with the commands that verify
    from archive.read.verify import Report

FORMATS = ("text", "json")


def command(sub: Any, common: argparse.ArgumentParser, name: str,
            run: Callable[[argparse.Namespace], int] | None,
            help: str, description: str | None = None,
            formats: Sequence[str] | None = FORMATS) -> argparse.ArgumentParser:
    """Add subcommand `name` to `sub` (an argparse subparsers action) with the common options
    (-C, --json, -v), `--format` from `formats` (None: no --format) and `run` as what it does.
    Return its parser, for the arguments of its own."""
    cmd: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help, description=description)
    if formats is not None:
        add_format(cmd, tuple(formats))
    if run is not None:   # None: a group whose own subcommands say what runs
        cmd.set_defaults(run=run)
    return cmd


def add_format(cmd: argparse.ArgumentParser, choices: tuple[str, ...] = FORMATS) -> None:
    """Add `--format` with these choices, text by default."""
    cmd.add_argument("--format", choices=choices, default="text", help="output format (default: text)")


def subcommands(parser: argparse.ArgumentParser) -> Any:
    """Return the subparsers action of a parser that has subcommands (e.g. `schedule`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"{parser.prog} has no subcommands")


MAX_ERROR = 2000   # characters of one error line: a message may quote what a package holds


def error(message: str) -> None:
    """Print one error line on stderr, whitespace folded, control characters escaped, cut
    at MAX_ERROR characters."""
    line = printable(" ".join(message.split()))
    if len(line) > MAX_ERROR:
        line = line[:MAX_ERROR] + f"... ({len(line) - MAX_ERROR} more characters)"
    print(f"archive: error: {line}", file=sys.stderr)


def write_json(data: Any, out: TextIO | None = None) -> None:
    """Print one JSON document, indented by 2 (`json_text`)."""
    (out or sys.stdout).write(json_text(data) + "\n")


_SCALARS = {str, int, float, bool, type(None)}


def json_text(data: Any) -> str:
    """Return `json.dumps(data, indent=2)`. A list of flat objects (what `list URL` prints, one
    per capture: 10,000 of them) is encoded by json's C encoder in one call, with the line
    break and indent as its item separator: an encoded string holds no raw line break, so the
    only "},<LF>    {" in that text are the ones between two objects.

    >>> rows = [{"a": 1, "b": "x},\\n    {\\u2028"}, {"c": None, "d": 1.5, "e": True}]
    >>> json_text(rows) == json.dumps(rows, indent=2), json_text([{"a": [1]}]) == json.dumps([{"a": [1]}], indent=2)
    (True, True)
    """
    if type(data) is list and data and _flat(data):
        flat = json.dumps(data, separators=(",\n    ", ": "))
        return "[\n  {\n    " + flat[2:-2].replace("},\n    {", "\n  },\n  {\n    ") + "\n  }\n]"
    return json.dumps(data, indent=2)


def _flat(rows: list[Any]) -> bool:
    """Return True when every row is a non-empty dict of str keys and scalar values (iterated
    in C: no Python step per value)."""
    return (set(map(type, rows)) == {dict} and all(rows)
            and set(map(type, chain.from_iterable(rows))) == {str}
            and set(map(type, chain.from_iterable(map(dict.values, rows)))) <= _SCALARS)


def human_bytes(n: float) -> str:
    """Return a byte count for people, in powers of 1000.

    >>> human_bytes(999), human_bytes(1234567)
    ('999 B', '1.2 MB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def plural(n: int, word: str) -> str:
    """Return a count with its noun, singular for one.

    >>> plural(1, "frame"), plural(2, "HTTP error"), plural(0, "page")
    ('1 frame', '2 HTTP errors', '0 pages')
    """
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# C0 but LF (CR only before LF: RIS ends lines with CR LF), DEL, C1 (ECMA-48: CSI is 0x9B),
# and what reorders, hides or breaks text: the Arabic letter mark, zero-width characters,
# LRM/RLM, bidi embeddings and isolates, invisible operators, the BOM, U+2028/U+2029
# (Unicode bidi and format controls, UAX #9 and General_Category Cf).
_UNSAFE = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029"
                     "\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]|\r(?!\n)")
_UNSAFE_FIELD = re.compile(_UNSAFE.pattern + "|[\r\n]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


_ASCII_SAFE = bytes(range(0x20, 0x7f)) + b"\n"   # printable ASCII and the line feed


def terminal_text(text: str) -> str:
    """Return text with what could act on a terminal escaped, line feeds kept. ASCII text with
    no control character (JSON, most listings: megabytes at a time) is returned as it is after
    one pass in C (bytes.translate), not the regular expression's.

    >>> terminal_text("title\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J \\x9b31m\\nnext")
    'title\\\\x1b]52;c;ZXZpbA==\\\\x07\\\\x1b[2J \\\\x9b31m\\nnext'
    >>> terminal_text("plain\\n"), terminal_text("bell\\x07"), terminal_text("cr\\r\\nlf\\r")
    ('plain\\n', 'bell\\\\x07', 'cr\\r\\nlf\\\\r')
    """
    if text.isascii() and not text.encode("ascii").translate(None, _ASCII_SAFE):
        return text
    return _UNSAFE.sub(_escape, text)


def printable(text: str) -> str:
    """Return one field of text from a package (a name in a certificate, a URL) with control
    characters and line breaks escaped: nothing it holds can start a line of its own.

    >>> printable("evil\\n  signature valid")
    'evil\\\\n  signature valid'
    """
    return _UNSAFE_FIELD.sub(_escape, text)


class SafeStream:
    """A text stream that writes through `terminal_text`: the one output path of the command
    line. Everything else (flush, isatty, fileno, encoding) is the wrapped stream's."""

    def __init__(self, inner: TextIO):
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(terminal_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def safe_output() -> Iterator[None]:
    """Put `SafeStream` in front of sys.stdout and sys.stderr for the block."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def raw_stream(stream: TextIO) -> TextIO:
    """Return the stream under a SafeStream, for output made of our own text only that needs a
    carriage return (the progress line)."""
    return stream.inner if isinstance(stream, SafeStream) else stream  # type: ignore[unreachable]


def snapshot_json(snap: Snapshot) -> dict[str, Any]:
    """Return a new snapshot as `--format json` prints it."""
    return {"id": snap.id, "short_id": snap.short_id, "path": str(snap.path),
            "created": snap.created, "seeds": list(snap.seeds), "counts": snap.counts,
            "warnings": list(snap.warnings)}


def print_snapshot(snap: Snapshot, out: TextIO) -> None:
    """Print a new snapshot's summary: id, folder, what was fetched, problems, warnings."""
    c = snap.counts
    out.write(f"snapshot {snap.short_id}  sha256:{snap.id}\n")
    out.write(f"folder   {snap.path}\n")
    out.write(f"created  {snap.created}\n")
    if "fetched" not in c:   # an imported archive: its own counts
        out.write("counts   " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) + "\n")
        return
    redirects = f", {plural(c['redirects'], 'redirect')}" if c.get("redirects") else ""
    out.write(f"fetched  {plural(c.get('pages', 0), 'page')}, {plural(c.get('embeds', 0), 'frame')}, "
              f"{plural(c.get('requisites', 0), 'requisite')}, {c.get('robotss', 0)} robots.txt{redirects}: "
              f"{human_bytes(c.get('bytes', 0))} in {plural(c.get('records', 0), 'WARC record')}\n")
    if c.get("revisits"):
        held = "body" if c["revisits"] == 1 else "bodies"
        out.write(f"revisits {c['revisits']} {held} the collection holds already, not stored again "
                  f"({human_bytes(c.get('dedup_bytes', 0))})\n")
    out.write(f"problems {c.get('failed', 0)} failed, {plural(c.get('http_errors', 0), 'HTTP error')}; "
              f"{c.get('skipped', 0)} skipped (see logs/capture.jsonl)\n")
    for warning in snap.warnings:
        out.write(f"warning  {warning}\n")


def print_report(report: Report, fmt: str, out: TextIO) -> None:
    """Print a verification report: a head line, the proofs, then every problem with its place."""
    if fmt == "json":
        write_json(report.to_json(), out)
        return
    # bytes intact but not what the reader claimed (--expect, --trust, --tsa-cert): not damage
    head = "OK" if report.ok else "FAILED" if not report.intact else "INTACT, NOT AS CLAIMED"
    out.write(f"{head} {report.path} sha256:{report.snapshot_id}: {report.files} files, "
              f"{report.records} WARC records, {human_bytes(report.bytes)} checked\n")
    if report.cited and (report.snapshot_id or "").startswith(report.cited):
        digits = len(report.cited)
        out.write(f"  the package cited: sha256:{report.cited}"
                  + (f"... (a prefix: {digits} of 64 digits)\n" if digits < 64 else "\n"))
    if report.dependencies:
        out.write(f"  {report.dependencies} revisit records: their originals checked\n")
    if report.policy.summary():
        out.write(f"  {printable(str(report.policy.summary()))}\n")
    for warning in report.warnings:
        out.write(f"  WARNING {printable(str(warning))}\n")
    if report.package_digest:
        out.write(f"  a self-contained export (package digest {report.package_digest}) of the snapshot above\n")
    for proof in report.proofs:
        if proof.ok or not proof.checked:   # a failed proof is among the problems below
            out.write(f"  {printable(proof.summary)}\n")
    for problem in report.problems:
        out.write(f"  {printable(str(problem))}\n")


def emit_capture(snap: Snapshot, report: Report | None, fmt: str, proofs: list[Any] | None = None,
                 qa: dict[str, Any] | None = None) -> int:
    """Print a new snapshot (and its verification), as one JSON document in JSON mode (with
    `qa`, the replay check `capture --qa` made, when given: text mode prints that itself);
    return the exit code (1 when the verification failed)."""
    if fmt == "json":
        data = snapshot_json(snap)
        if proofs is not None:
            data["proofs"] = proofs
        if qa is not None:
            data["qa"] = qa
        if report is not None:
            data["verify"] = report.to_json()
        write_json(data)
    else:
        print_snapshot(snap, sys.stdout)
        for proof in proofs or ():
            sys.stdout.write(f"proof    {proof['summary']}\n")
        if report is not None:
            print_report(report, "text", sys.stdout)
    return 0 if report is None or report.ok else 1
