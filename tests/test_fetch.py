"""One exchange on the wire: bytes kept as sent, bodies cut short kept and marked."""
from __future__ import annotations

import gzip
import hashlib
import socket
import threading

import pytest

from archive.errors import FetchError
from archive.models import CaptureOptions
from archive.write.fetch import Fetcher


@pytest.fixture
def fetcher(tmp_path):
    f = Fetcher(CaptureOptions(read_timeout=1.0), tmp_path)
    yield f
    f.close()


class RawServer:
    """A one-shot TCP server answering each connection with fixed bytes (then maybe hanging up)."""

    def __init__(self, answer: bytes, close: bool = True, hold: bool = False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/x"
        self.answer, self.close, self.hold = answer, close, hold
        self.release = threading.Event()   # a held connection stays open until the test is done
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.recv(65536)
        conn.sendall(self.answer)
        if self.hold:
            self.release.wait(60)
        if self.close:
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
        self.sock.close()


def test_chunked_body_kept_with_framing_and_spec_payload_digest(fetcher):
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
           b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    server = RawServer(raw)
    ex = fetcher.fetch(server.url)
    assert ex.block.read_bytes() == raw
    assert ex.chunked and ex.truncated is None
    assert ex.payload_digest == "sha256:" + hashlib.sha256(b"hello world").hexdigest()
    assert ex.block_digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert ex.request.startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:")


def test_content_encoding_is_stored_not_decoded(fetcher):
    body = gzip.compress(b"<p>compressed</p>", mtime=0)
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    ex = fetcher.fetch(RawServer(raw).url)
    assert ex.block.read_bytes() == raw
    assert ex.payload_digest == "sha256:" + hashlib.sha256(body).hexdigest()


def test_body_shorter_than_content_length_is_kept_and_marked(fetcher):
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this much"
    ex = fetcher.fetch(RawServer(raw).url)
    assert ex.truncated == "disconnect"
    assert ex.block.read_bytes() == raw
    assert ex.payload_digest == "sha256:" + hashlib.sha256(b"only this much").hexdigest()


def test_body_stalling_past_read_timeout_is_marked_time(fetcher):
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart"
    server = RawServer(raw, hold=True)
    try:
        ex = fetcher.fetch(server.url)
    finally:
        server.release.set()
    assert ex.truncated == "time"
    assert ex.block.read_bytes() == raw


def test_no_answer_at_all_is_a_fetch_error(fetcher):
    server = RawServer(b"", close=True)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(server.url)
    assert info.value.kind in ("connection-error", "connection-refused", "http-error")


def test_garbage_instead_of_http_is_a_fetch_error(fetcher):
    with pytest.raises(FetchError):
        fetcher.fetch(RawServer(b"SSH-2.0-OpenSSH_9.0\r\n\r\n").url)


def test_spool_files_are_removed_on_failure(fetcher, tmp_path):
    with pytest.raises(FetchError):
        fetcher.fetch(RawServer(b"").url)
    assert not list(tmp_path.glob("*.http"))
