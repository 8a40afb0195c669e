"""Time-limited claims kept in Redis: a job's lease, the schedule lock, a host's connection slots.

Every claim carries a token and a time to live that a heartbeat renews while its holder lives,
so the claim of a process that died (SIGKILL, a lost machine) frees itself; renewing and
releasing check the token, so a holder never frees what another has taken over. Expiry is
reckoned by the Redis server's clock, never by the clocks of the machines holding claims.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from archive.errors import BrokerError

logger = logging.getLogger(__name__)

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# A host's slots: a sorted set of tokens scored by their expiry (milliseconds, server time).
_SLOT_TAKE = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('pexpire', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""
_SLOT_RENEW = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('zadd', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('pexpire', KEYS[1], 2 * tonumber(ARGV[1]))
return 1
"""


def connect(url: str, timeout: float = 5.0) -> Any:
    """Return a Redis client for `url`, checked with a PING; raise BrokerError."""
    try:
        import redis
    except ImportError as exc:   # pragma: no cover - a dependency of the package
        raise BrokerError(url, f"the redis client is not installed ({exc})") from None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                      health_check_interval=30)
        client.ping()
    except (ValueError, redis.RedisError) as exc:
        raise BrokerError(url, str(exc) or type(exc).__name__) from None
    return client


class Heartbeat:
    """A daemon thread calling `beat` every `interval` seconds until stopped."""

    def __init__(self, beat: Callable[[], object], interval: float, name: str = "heartbeat"):
        self.beat = beat
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join()

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.beat()
            except Exception:   # a missed beat is retried; the claim's TTL is the safety net
                logger.warning("heartbeat %s failed", self.thread.name, exc_info=True)


class Lease:
    """One claim on `key` for `ttl` seconds, renewed by a heartbeat while held."""

    def __init__(self, client: Any, key: str, ttl: float, holder: str | None = None):
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = f"{holder or 'holder'}/{uuid.uuid4().hex}"
        self.lost = threading.Event()   # set when a renewal found the claim gone or taken
        self._beat: Heartbeat | None = None

    def acquire(self) -> bool:
        """Take the claim if nobody holds it; start renewing it; return whether it was taken."""
        if not self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._beat = Heartbeat(self.renew, self.ttl_ms / 3000, name=f"lease {self.key}").start()
        return True

    def renew(self) -> bool:
        """Extend the claim; return False (and mark it lost) when it is no longer ours."""
        if self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms):
            return True
        self.lost.set()
        return False

    def release(self) -> None:
        """Stop renewing and give the claim up (only when it is still ours)."""
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        try:
            self.client.eval(_RELEASE, 1, self.key, self.token)
        except Exception as exc:   # the TTL frees it anyway
            logger.warning("could not release %s: %s", self.key, exc)

    def holder(self) -> str | None:
        """Return the token of whoever holds the claim now, or None."""
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RedisHostLimiter:
    """A HostLimiter whose slots are shared by every process using the same Redis.

    At most `slots` requests run against one host across all of them. Each slot taken is a
    token in a sorted set scored by its expiry; the tokens this process holds are renewed
    every ttl/3, so the slots of a process that died come back after `ttl` seconds.
    """

    def __init__(self, client: Any, slots: int, ttl: float = 30.0, prefix: str = "archive:host:"):
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.client = client
        self.slots = slots
        self.ttl_ms = max(1, int(ttl * 1000))
        self.prefix = prefix
        self.held: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self._beat: Heartbeat | None = None

    def try_acquire(self, host: str) -> bool:
        """Take a slot for `host` if one is free cluster-wide (False too when Redis is away)."""
        token = uuid.uuid4().hex
        try:
            taken = self.client.eval(_SLOT_TAKE, 1, self.prefix + host, self.slots, self.ttl_ms, token)
        except Exception as exc:   # the crawler asks again shortly; no slot means no request
            logger.warning("host limiter: %s", exc)
            return False
        if not taken:
            return False
        with self.lock:
            self.held.setdefault(host, []).append(token)
            if self._beat is None:
                self._beat = Heartbeat(self._renew, self.ttl_ms / 3000, name="host slots").start()
        return True

    def release(self, host: str) -> None:
        """Give back one slot this process took for `host`."""
        with self.lock:
            tokens = self.held.get(host)
            if not tokens:
                return
            token = tokens.pop()
            if not tokens:
                del self.held[host]
        try:
            self.client.zrem(self.prefix + host, token)
        except Exception as exc:   # it expires by itself
            logger.warning("host limiter: %s", exc)

    def in_use(self, host: str) -> int:
        """Return how many slots for `host` are taken cluster-wide (expired ones not counted)."""
        now_s, now_us = self.client.time()
        return int(self.client.zcount(self.prefix + host, now_s * 1000 + now_us // 1000, "+inf"))

    def _renew(self) -> None:
        with self.lock:
            held = {host: list(tokens) for host, tokens in self.held.items()}
        for host, tokens in held.items():
            self.client.eval(_SLOT_RENEW, 1, self.prefix + host, self.ttl_ms, *tokens)

    def close(self) -> None:
        """Stop renewing; slots still held expire by themselves."""
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
