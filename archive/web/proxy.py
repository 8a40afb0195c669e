"""The replay paths of the web application, passed to pywb and back, with a framing pywb gets wrong put right.

pywb 2.x keeps the `Content-Length` of the recorded response on a body it has rewritten: an
empty script (recorded `Content-Length: 0`) goes out with several hundred bytes of wombat
wrapper after a `Content-Length: 0` head, and a worker script the same. A browser on a
keep-alive connection reads those bytes as the head of the next response, and an unrelated
script, image or frame fails (`ERR_INVALID_HTTP_RESPONSE`). So the proxy never trusts pywb's
framing: it asks with HTTP/1.0 and `Connection: close`, reads the body to the end of the
connection (RFC 9112 section 6.3, rule 8), and gives the browser a `Content-Length` it
counted itself: for a body of up to BUFFER bytes the exact length, for a longer one none at
all (the ASGI server then frames it with chunked transfer coding, RFC 9112 section 7.1).
Whatever the type (scripts, modules, workers, stylesheets, HTML, JSON), the rule is the same,
so no rewritten type can carry a stale length.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from archive.formats.wire import WireError, is_chunked, parse_head

logger = logging.getLogger(__name__)

BUFFER = 1 << 20            # bytes of a body held to count it; a longer one is streamed unframed
BLOCK = 1 << 16             # bytes read at a time
MAX_HEAD = 256 << 10        # bytes of pywb's response head
MAX_REQUEST_BODY = 1 << 20  # bytes of a request body passed on (pywb's POST replay)
TIMEOUT = 120.0             # seconds pywb may stay silent
RESTART = 60.0              # seconds a request waits for pywb restarting with new snapshots
# RFC 9110 section 7.6.1: hop-by-hop fields, never forwarded; Content-Length is ours to set
HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                 "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
                 "content-length", "host", "date", "server"})


class ReplayProxy:
    """A Starlette endpoint passing a request on to pywb at `host:port` and its answer back."""

    def __init__(self, host: str, port: int, buffer: int = BUFFER):
        self.host, self.port, self.buffer = host, port, buffer

    async def handle(self, request: Request) -> Response:
        """Answer one replay request from pywb (see the module docstring for the framing)."""
        target = request.scope.get("raw_path") or request.url.path.encode("utf-8")
        if request.url.query:
            target += b"?" + request.url.query.encode("latin-1")
        body = b""
        if request.method not in ("GET", "HEAD"):
            given = await _bounded_body(request)
            if given is None:
                return PlainTextResponse("request body too large for replay", status_code=413)
            body = given
        head = [f"{request.method} ".encode("ascii") + target + b" HTTP/1.0",
                b"Host: " + request.headers.get("host", f"{self.host}:{self.port}").encode("latin-1"),
                b"Connection: close"]
        head += [k + b": " + v for k, v in request.headers.raw if k.decode("latin-1").lower() not in HOP]
        if body:
            head.append(b"Content-Length: " + str(len(body)).encode("ascii"))
        if any(b"\r" in line or b"\n" in line for line in head):
            return PlainTextResponse("bad request", status_code=400)
        # pywb restarting with new snapshots may cut a request off: GET and HEAD are asked again
        # until it answers or RESTART seconds have passed; anything else is asked once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESTART if request.method in ("GET", "HEAD") else 0.0
        while True:
            try:
                reader, writer = await self._connect()
            except (OSError, asyncio.TimeoutError):
                return PlainTextResponse("replay (pywb) is not answering", status_code=502)
            try:
                writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
                await writer.drain()
                status, headers = await _read_head(reader)
                break
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    WireError) as exc:
                writer.close()
                if loop.time() >= deadline:
                    logger.warning("replay proxy: bad answer from pywb for %r: %s", target[:200], exc)
                    return PlainTextResponse("replay (pywb) gave no valid answer", status_code=502)
                await asyncio.sleep(0.2)
        blocks = _dechunk(reader) if is_chunked(headers) else _to_end(reader)
        kept = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers if k.lower() not in HOP]
        if request.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            writer.close()
            response = Response(status_code=status)
            response.raw_headers = kept   # no body: no length of ours to give
            return response
        held, more = await _hold(blocks, self.buffer)
        if more is None:   # the whole body: its true length, whatever pywb said
            writer.close()
            response = Response(held, status_code=status)
            response.raw_headers = kept + [(b"content-length", str(len(held)).encode("ascii"))]
            return response
        streaming = StreamingResponse(_then(held, more, writer), status_code=status)
        streaming.raw_headers = kept   # unframed: the server chunks it
        return streaming


    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to pywb, waiting up to RESTART seconds while it restarts (new snapshots)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESTART
        while True:
            try:
                return await asyncio.wait_for(asyncio.open_connection(self.host, self.port, limit=MAX_HEAD), TIMEOUT)
            except OSError:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.2)


async def _bounded_body(request: Request) -> bytes | None:
    parts, size = [], 0
    async for block in request.stream():
        size += len(block)
        if size > MAX_REQUEST_BODY:
            return None
        parts.append(block)
    return b"".join(parts)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, tuple[tuple[str, str], ...]]:
    """Read pywb's response head (raise WireError, LimitOverrunError past MAX_HEAD)."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    _, status, _, headers = parse_head(raw)
    return status, headers


async def _to_end(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Yield the body up to the end of the connection, Content-Length notwithstanding."""
    while True:
        block = await asyncio.wait_for(reader.read(BLOCK), TIMEOUT)
        if not block:
            return
        yield block


async def _dechunk(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Yield a chunked body's data (RFC 9112 section 7.1); stop at the last chunk or a fault."""
    while True:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        try:
            size = int(line.split(b";")[0].strip() or b"x", 16)
        except ValueError:
            return
        if size == 0:
            return
        left = size
        while left:
            block = await asyncio.wait_for(reader.read(min(left, BLOCK)), TIMEOUT)
            if not block:
                return
            left -= len(block)
            yield block
        await reader.readline()


async def _hold(blocks: AsyncIterator[bytes], limit: int) -> tuple[bytes, AsyncIterator[bytes] | None]:
    """Read up to `limit` bytes; return them and None when that was all, else the iterator to go on with."""
    parts, size = [], 0
    try:
        async for block in blocks:
            parts.append(block)
            size += len(block)
            if size > limit:
                return b"".join(parts), blocks
    except (OSError, asyncio.TimeoutError):
        pass   # what came is what there is
    return b"".join(parts), None


async def _then(first: bytes, rest: AsyncIterator[bytes], writer: asyncio.StreamWriter) -> AsyncIterator[bytes]:
    try:
        yield first
        async for block in rest:
            yield block
    except (OSError, asyncio.TimeoutError):
        return
    finally:
        writer.close()
