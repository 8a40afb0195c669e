"""Replay with pywb, the field's replay engine, run as a subprocess from its own environment.

pywb pins old libraries and monkey-patches with gevent, so it lives in a virtual environment
of its own (`make pywb` makes `.venv-pywb`). We generate its configuration from the
collection, in `<collection>/.replay/`: one pywb collection per snapshot, named by its full
id and reading the snapshot's own index and WARC files in place, so a replay URL
`/<id>/<14-digit timestamp>/<url>` shows that snapshot and nothing from another; and an
`all` collection across every snapshot, for browsing across time, whose index lines name each
file from the collection root (`_rooted`), so that no snapshot's file answers for another's. Replay is frameless (the
page at top level, no banner frame) with Memento headers.
"""
from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from archive.errors import ArchiveError
from archive.snapshot.depends import find_snapshot, resolve
from archive.snapshot.reader import IndexEntry, Package, warc_member
from archive.snapshot.store import Collection, snapshot_id_of

logger = logging.getLogger(__name__)

ENV_WAYBACK = "ARCHIVE_PYWB"
WORKDIR = ".replay"
ALL = "all"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")   # what store.snapshot_name gives, and more


class ReplayUnavailable(ArchiveError):
    """pywb is not installed, or would not start."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


class PortTaken(ArchiveError):
    """The address `serve` was asked to listen on is in use or not ours to take (exit 2)."""

    def __init__(self, host: str, port: int, why: str):
        self.host, self.port, self.why = host, port, why
        super().__init__(f"cannot serve on {host}:{port}: {why}")


def check_port(host: str, port: int) -> None:
    """Raise PortTaken unless (host, port) can be listened on now, as pywb will (SO_REUSEADDR,
    so a closed connection's TIME_WAIT does not count; a listener does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            probe.listen(1)
    except OSError as exc:
        why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise PortTaken(host, port, why) from None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel send SIGTERM to pywb when the process that started it dies,
    however it dies (SIGKILL included), so no server outlives `archive serve`."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class Entry:
    """One snapshot as replay knows it."""

    id: str
    path: Path
    index: Path
    seeds: tuple[tuple[str, str], ...]   # (url, 14-digit timestamp) of each seed page
    created: str
    deps_index: Path | None = None       # the index lines of the records its revisits refer to,
                                         # each naming `<folder>/archive/<file>` (see `_rooted`)


def find_wayback() -> Path:
    """Return pywb's `wayback` program: $ARCHIVE_PYWB, the checkout's .venv-pywb, or PATH."""
    candidates = []
    if os.environ.get(ENV_WAYBACK):
        given = Path(os.environ[ENV_WAYBACK])
        candidates.append(given / "bin" / "wayback" if given.is_dir() else given)
    candidates.append(Path(__file__).resolve().parents[2] / ".venv-pywb" / "bin" / "wayback")
    candidates.append(Path(sys.prefix).parent / ".venv-pywb" / "bin" / "wayback")
    found = shutil.which("wayback")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ReplayUnavailable("pywb is not installed: run `make pywb` (or set ARCHIVE_PYWB to its wayback)")


def entries(collection: Collection, workdir: Path) -> list[Entry]:
    """Return the replayable snapshots of a collection, deriving an index where one is needed."""
    found = []
    for folder in collection.snapshots():
        if not _SAFE_NAME.fullmatch(folder.name):
            # pywb globs an archive path holding `*` (PrefixResolver): a name could match others
            logger.warning("not replayable: folder name %r is not one archive gives", folder.name[:200])
            continue
        try:
            snapshot_id = snapshot_id_of(folder)
            with Package.open(folder) as package:
                found.append(_entry(package, folder, snapshot_id, workdir))
        except ArchiveError as exc:
            logger.warning("not replayable: %s", exc)
    return found


def _entry(package: Package, folder: Path, snapshot_id: str, workdir: Path) -> Entry:
    index = workdir / "indexes" / f"{snapshot_id}.checked.cdx"
    listed = index.with_suffix(".pages.json")
    if not (index.is_file() and listed.is_file()):   # a snapshot's id names its bytes: made once
        index.parent.mkdir(parents=True, exist_ok=True)
        # two streamed passes over the index rather than every entry held at once
        index.write_text("".join(line + "\n" for line in _index_lines(package.index())), "utf-8")
        listed.write_text(json.dumps(_listed(package, package.index())), "utf-8")
    seeds = tuple((str(url), str(ts)) for url, ts in json.loads(listed.read_text("utf-8")))
    created = str(package.datapackage().get("created", ""))
    deps_index = _dependencies(package, folder, snapshot_id, workdir)
    return Entry(snapshot_id, folder, index, seeds, created, deps_index)


def _listed(package: Package, entries: Iterable[IndexEntry]) -> list[tuple[str, str]]:
    """Return (url, 14-digit time) of each listed page the index holds a capture of: the home
    page lists captured responses, not what pages.jsonl alone claims."""
    captured = {(e.url, e.timestamp[:14]) for e in entries if warc_member(e.filename)}
    pages = ((p["url"], _stamp14(str(p.get("ts", "")))) for p in package.pages())
    return [page for page in pages if page in captured]


def _index_lines(entries: Iterable[IndexEntry]) -> list[str]:
    """Return the sorted CDXJ lines pywb gets: only lines naming a WARC file inside the
    snapshot's `archive/` folder (pywb joins the name to that folder), with only the fields
    pywb needs to find and serve the record."""
    lines = []
    for e in entries:
        member = warc_member(e.filename)
        if member is None:
            logger.warning("index line of %r names a WARC file outside the snapshot: left out", e.url[:200])
            continue
        fields = {"url": e.url, "mime": e.mime, "status": e.status, "digest": e.digest,
                  "length": str(e.length), "offset": str(e.offset), "filename": member.removeprefix("archive/")}
        lines.append(f"{e.urlkey} {e.timestamp} {json.dumps(fields)}")
    return sorted(lines, key=lambda line: line.encode("utf-8"))


def _rooted(folder_name: str, lines: Iterable[str]) -> Iterator[str]:
    """Yield checked index lines with each filename made `<folder_name>/archive/<file>`.

    pywb joins a line's filename to each of a collection's `archive_paths` in turn and opens the
    first file that exists (pywb.warcserver.resource.pathresolvers.PrefixResolver): with several
    snapshot folders as archive paths, a bare name would open whichever folder holds a file of
    that name first, another snapshot's included. Named from the collection root, which is the
    only archive path of a collection over several snapshots, a line opens its own file or none.
    Folder names are sanitized (store.snapshot_name) and `collection.snapshots()` skips dot names.
    Every line gets the same prefix, so lines sorted before are still sorted after.
    """
    for line in lines:
        key, stamp, fields = line.rstrip("\n").split(" ", 2)
        record = json.loads(fields)
        record["filename"] = f"{folder_name}/archive/{record['filename']}"
        yield f"{key} {stamp} {json.dumps(record)}"


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def _dependencies(package: Package, folder: Path, snapshot_id: str, workdir: Path) -> Path | None:
    """Write the index of the records a snapshot's revisits refer to (pywb resolves a revisit
    by looking its original up in the collection's indexes), each line naming its file from
    the collection root (`_rooted`); return its path, or None when there are none."""
    resolution = resolve(package, Collection(folder.parent))
    if not resolution.originals:
        return None
    lines: list[str] = []
    for dependency, entries in resolution.originals.items():
        other = find_snapshot(Collection(folder.parent), dependency)
        if other is not None and other.parent.resolve() == folder.parent.resolve():
            lines += _rooted(other.name, _index_lines(entries))
    path = workdir / "indexes" / f"{snapshot_id}.deps.cdx"
    _write_lines(path, sorted(lines, key=str.encode))
    return path


def _stamp14(ts: str) -> str:
    """Return the 14-digit form of an RFC 3339 time (or of a 14-digit one).

    >>> _stamp14("2026-11-26T11:37:54Z")
    '20261126113754'
    """
    return "".join(ch for ch in ts if ch.isdigit())[:14]


def write_config(workdir: Path, items: list[Entry]) -> Path:
    """Write pywb's config.yaml and home page for `items`; return the config path."""
    workdir.mkdir(parents=True, exist_ok=True)
    colls: dict[str, object] = {}
    for e in items:
        # one snapshot alone: its bare file names and its own archive/ folder, nothing else
        colls[e.id] = {"index_paths": str(e.index.resolve()),
                       "archive_paths": str((e.path / "archive").resolve()) + "/"}
        if e.deps_index is not None:   # several folders: every line names its own (`_rooted`)
            colls[e.id] = {"index_group": {"own": str(_own(workdir, e).resolve()), "deps": str(e.deps_index.resolve())},
                           "archive_paths": str(e.path.parent.resolve()) + "/"}
    if items:
        roots = {str(e.path.parent.resolve()) for e in items}
        if len(roots) != 1:
            raise ArchiveError(f"snapshots of one replay in several folders: {sorted(roots)}")
        colls[ALL] = {"index_group": {e.id[:12]: str(_own(workdir, e).resolve()) for e in items},
                      "archive_paths": roots.pop() + "/"}
    config = {"framed_replay": False, "enable_memento": True, "collections": colls,
              "templates_dir": str((workdir / "templates").resolve())}
    path = workdir / "config.yaml"
    # JSON is YAML: no YAML library needed in our environment. Every value is a double-quoted
    # scalar, which PyYAML reads as a plain string: no tag, no anchor, and no `${VAR}` expansion
    # (pywb's !envvar resolver matches plain scalars only). Names are hex ids and paths under
    # the collection, whose folder names are sanitized (store.snapshot_name).
    path.write_text(json.dumps(config, indent=2), "utf-8")
    _write_home(workdir / "templates", items)
    return path


def _own(workdir: Path, e: Entry) -> Path:
    """Write and return the snapshot's checked lines named from the collection root (`_rooted`);
    written at every start, as the folder holding an id can change (a removal and an import)."""
    path = workdir / "indexes" / f"{e.id}.rooted.cdx"
    if not e.index.is_file():
        _write_lines(path, ())
        return path
    with open(e.index, encoding="utf-8") as lines:   # our own checked copy, streamed
        _write_lines(path, _rooted(e.path.name, lines))
    return path


def _write_home(folder: Path, items: list[Entry]) -> None:
    """Write pywb's home page template with every datum as inert text (see `inert`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for e in sorted(items, key=lambda e: e.created, reverse=True):
        links = "".join(
            f'<li><a href="/{inert(e.id)}/{inert(ts)}/{inert(url)}">{inert(url)}</a> '
            f'<small>{inert(ts)}</small></li>' for url, ts in e.seeds)
        rows.append(f"<section><h2>{inert(e.path.name)}</h2><p><code>sha256:{inert(e.id)}</code> "
                    f"created {inert(e.created)}</p><ul>{links}</ul></section>")
    body = "".join(rows) or "<p>No snapshots yet.</p>"
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>archive: snapshots</title>"
            "</head><body><h1>Snapshots</h1>"
            f"<p>Browse across time in the <a href='/{ALL}/'>{ALL}</a> collection.</p>"
            f"{body}</body></html>")
    (folder / "index.html").write_text(page, "utf-8")


_INERT = {ord(ch): f"&#{ord(ch)};" for ch in "&<>\"'{}%#`\\"}


def inert(text: str) -> str:
    """Return text as HTML character references wherever it could be markup or template source.

    pywb renders `index.html` with Jinja2, whose delimiters all start with `{` or end with `}`
    (`{{ }}`, `{% %}`, `{# #}`), and `%` and `#` open line statements and comments where those
    are enabled: none of them survives as such, so no datum can close a tag, an attribute or a
    Jinja block, whatever it holds (HTML 5 section 13.1.4, character references).

    >>> inert("{%endraw%}{{7*7}}<b>&#x27;\x1b")
    '&#123;&#37;endraw&#37;&#125;&#123;&#123;7*7&#125;&#125;&#60;b&#62;&#38;&#35;x27;\ufffd'
    """
    # control characters have no business on the page: each shows as U+FFFD
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in str(text)).translate(_INERT)


class Replay:
    """pywb serving a collection; `refresh()` picks up new or removed snapshots."""

    def __init__(self, collection: Path | str | None = None, host: str = "127.0.0.1",
                 port: int = 8080, wayback: Path | None = None):
        self.collection = Collection(collection)
        self.host = host
        self.port = port
        self.wayback = wayback or find_wayback()
        self.workdir = self.collection.root / WORKDIR
        self.process: subprocess.Popen[bytes] | None = None
        self.signature: tuple[str, ...] = ()
        self.items: list[Entry] = []

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 60.0) -> str:
        """Generate the configuration, start pywb and wait until it answers; return its URL."""
        if not self.collection.root.is_dir():
            raise ReplayUnavailable(f"no collection at {self.collection.root}")
        self.items = entries(self.collection, self.workdir)
        self.signature = tuple(sorted(str(e.path) for e in self.items))
        config = write_config(self.workdir, self.items)
        check_port(self.host, self.port)
        # pywb asks its own warcserver on loopback over HTTP: a user's http_proxy would get those
        # requests (every replay a 500), and replay is offline, so pywb gets no proxy at all
        # (no variable whose name ends in _proxy, any case: what urllib and requests read)
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["PYWB_CONFIG_FILE"] = str(config.resolve())
        try:
            with open(self.workdir / "pywb.log", "ab") as log:
                # a process group of its own: stop() ends pywb and anything it started, and a
                # Ctrl-C meant for `serve` reaches pywb only through stop()
                self.process = subprocess.Popen(
                    [str(self.wayback), "--bind", self.host, "--port", str(self.port)],
                    cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        except OSError as exc:
            raise ReplayUnavailable(f"cannot start pywb: {exc.strerror or exc} ({exc.filename or self.wayback})") from None
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ReplayUnavailable(f"pywb exited at start (code {self.process.returncode}); "
                                        f"see {self.workdir / 'pywb.log'}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.2)
                continue
            if self.process.poll() is None:   # whoever answered, pywb is still up: it is pywb
                return
        raise ReplayUnavailable(f"pywb did not answer on {self.url} within {timeout:.0f} s")

    def refresh(self) -> bool:
        """Restart pywb with a new configuration when the snapshots changed; return True if so."""
        current = tuple(sorted(str(p) for p in self.collection.snapshots()))
        if current == self.signature:
            return False
        self.stop()
        self.start()
        return True

    def stop(self, grace: float = 5.0) -> None:
        """Stop pywb and its process group: SIGTERM, then SIGKILL after `grace` seconds."""
        process, self.process = self.process, None
        if process is None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        _signal_group(process, signal.SIGKILL)   # whatever pywb started and left behind

    def __enter__(self) -> "Replay":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass   # the group is gone already
