"""Invalidations between instances: what to drop from every L1, and the channels that carry it.

An instance that cannot hear the channel cannot trust its L1, so a channel reports
every gap (lost connection, reconnect) and the Cache flushes L1 when it does.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.core.cache.redis_tier import DOWN_ERRORS, RedisCache
from app.core.cache.tiers import CacheTier

log = logging.getLogger(__name__)

Kind = Literal["key", "prefix", "tag", "all"]
OnMessage = Callable[["Invalidation"], None]
OnGap = Callable[[], None]
_POLL = 0.2  # seconds a listener waits for a message before checking whether to stop


@dataclass(frozen=True, kw_only=True)
class Invalidation:
    """Keys, key prefixes and tags to drop (or everything), and the instance that asked."""

    keys: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    everything: bool = False
    origin: str = ""

    @property
    def kind(self) -> Kind:
        """The broadest thing dropped, for the metric label."""
        if self.everything:
            return "all"
        if self.prefixes:
            return "prefix"
        return "tag" if self.tags else "key"

    def apply_to(self, tier: CacheTier) -> None:
        """Drop what this names from one tier (L1, or L2 for every instance)."""
        if self.everything:
            tier.clear()
            return
        tier.delete(self.keys)
        for prefix in self.prefixes:
            tier.delete_prefix(prefix)
        for tag in self.tags:
            tier.delete_tag(tag)

    def to_bytes(self) -> bytes:
        """Encode for the channel (JSON: readable with redis-cli SUBSCRIBE)."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Invalidation:
        """Decode what `to_bytes` produced."""
        raw = json.loads(data)
        return cls(
            keys=tuple(raw.get("keys", ())),
            prefixes=tuple(raw.get("prefixes", ())),
            tags=tuple(raw.get("tags", ())),
            everything=bool(raw.get("everything", False)),
            origin=str(raw.get("origin", "")),
        )


class PendingInvalidations:
    """Invalidations Redis could not take, replayed when it is back (beyond `limit`: clear all)."""

    def __init__(self, limit: int, *, origin: str) -> None:
        self._limit = limit
        self._origin = origin
        self._items: list[Invalidation] = []
        self._overflow = False
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items) + self._overflow

    def add(self, *invalidations: Invalidation) -> None:
        """Keep these for later, in order."""
        with self._lock:
            room = self._limit - len(self._items)
            self._items.extend(invalidations[:room])
            self._overflow = self._overflow or len(invalidations) > room

    def take(self) -> list[Invalidation]:
        """Return everything owed and forget it (one clear-all if too much was lost)."""
        with self._lock:
            items = self._items
            if self._overflow:
                items = [Invalidation(everything=True, origin=self._origin)]
            self._items, self._overflow = [], False
        return items


class InvalidationChannel(Protocol):
    """Carries invalidations to the other instances: Redis pub/sub, or `LocalHub` in tests."""

    @property
    def connected(self) -> bool:
        """Whether messages from other instances are reaching us right now."""

    def publish(self, invalidation: Invalidation) -> bool:
        """Send to the other instances; return whether the channel took it."""

    def start(self, on_message: OnMessage, on_gap: OnGap) -> None:
        """Begin delivering messages; `on_gap` runs whenever some may have been missed."""

    def close(self) -> None:
        """Stop delivering and release the connection (joins any thread)."""


class LocalHub:
    """In-process stand-in for Redis pub/sub: channels made by `hub.channel()` hear each other."""

    def __init__(self) -> None:
        self.channels: list[LocalChannel] = []

    def channel(self) -> LocalChannel:
        """Return a new channel attached to this hub."""
        channel = LocalChannel(self)
        self.channels.append(channel)
        return channel

    def drop(self) -> None:
        """Simulate a lost connection: every channel reports a gap and stops hearing."""
        for channel in self.channels:
            channel.set_connected(False)

    def restore(self) -> None:
        """Simulate the reconnect (which is a gap too: messages in between are lost)."""
        for channel in self.channels:
            channel.set_connected(True)


class LocalChannel:
    """One instance's end of a `LocalHub`."""

    def __init__(self, hub: LocalHub) -> None:
        self._hub = hub
        self._on_message: OnMessage | None = None
        self._on_gap: OnGap | None = None
        self.connected = False

    def publish(self, invalidation: Invalidation) -> bool:
        """Deliver synchronously to every other connected channel of the hub."""
        if not self.connected:
            return False
        for channel in self._hub.channels:
            if channel is not self and channel.connected and channel._on_message:
                channel._on_message(Invalidation.from_bytes(invalidation.to_bytes()))
        return True

    def start(self, on_message: OnMessage, on_gap: OnGap) -> None:
        """Start hearing the hub."""
        self._on_message, self._on_gap = on_message, on_gap
        self.connected = True

    def set_connected(self, connected: bool) -> None:
        """Change the simulated connection state, reporting the gap."""
        self.connected = connected
        if self._on_gap is not None:
            self._on_gap()

    def close(self) -> None:
        """Leave the hub."""
        self.connected = False
        if self in self._hub.channels:
            self._hub.channels.remove(self)


_CHANNELS: weakref.WeakSet[RedisChannel] = weakref.WeakSet()


class RedisChannel:
    """Redis pub/sub on `<namespace>#invalidate`, heard by a daemon thread per instance."""

    def __init__(self, tier: RedisCache, *, reconnect_interval: float = 1.0) -> None:
        self.name = f"{tier.namespace}#invalidate"
        self._tier = tier
        self._reconnect_interval = reconnect_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handlers: tuple[OnMessage, OnGap] | None = None
        self._connected = threading.Event()
        self._warned = False
        self._listener: redis.Redis | None = None

    @property
    def connected(self) -> bool:
        """Whether the listener is subscribed right now."""
        return self._connected.is_set()

    def publish(self, invalidation: Invalidation) -> bool:
        """PUBLISH the invalidation through the tier (so an outage is seen once, in one place)."""
        return self._tier.publish(self.name, invalidation.to_bytes())

    def start(self, on_message: OnMessage, on_gap: OnGap) -> None:
        """Start the listener thread (again after a fork: threads do not survive one)."""
        self._handlers = (on_message, on_gap)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"cache-invalidation:{self.name}", daemon=True
        )
        self._thread.start()
        _CHANNELS.add(self)

    def wait_connected(self, timeout: float) -> bool:
        """Block until subscribed (tests and startup checks)."""
        return self._connected.wait(timeout)

    def close(self) -> None:
        """Stop the listener thread and wait for it."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=_POLL + 2.0)
        self._thread = None
        self._connected.clear()
        if self._listener is not None:
            self._listener.connection_pool.disconnect()
            self._listener = None

    def _run(self) -> None:
        assert self._handlers is not None
        on_message, on_gap = self._handlers
        while not self._stop.is_set():
            try:
                self._listen(on_message, on_gap)
            except DOWN_ERRORS as exc:
                self._lost(on_gap, exc)
            except Exception:  # a thread boundary: log, flush, keep listening
                log.exception("cache invalidation listener failed; reconnecting")
                self._lost(on_gap, None)
            self._stop.wait(self._reconnect_interval)

    def _listen(self, on_message: OnMessage, on_gap: OnGap) -> None:
        pubsub = self._client().pubsub()  # type: ignore[no-untyped-call]  # untyped in redis-py
        try:
            pubsub.subscribe(self.name)
            confirmations = 0
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=_POLL)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    confirmations += 1
                    self._subscribed(on_gap, again=confirmations > 1)
                elif message["type"] == "message":
                    self._deliver(message["data"], on_message, on_gap)
        finally:
            pubsub.close()

    def _deliver(self, data: bytes, on_message: OnMessage, on_gap: OnGap) -> None:
        try:
            invalidation = Invalidation.from_bytes(data)
        except (ValueError, TypeError, AttributeError):
            log.warning("cache invalidation channel: unreadable message %r; flushing L1", data[:80])
            on_gap()  # we cannot tell what it meant to drop, so drop everything
            return
        on_message(invalidation)

    def _subscribed(self, on_gap: OnGap, *, again: bool) -> None:
        if again:  # redis-py reconnected under us: messages in between are lost
            log.warning("cache invalidation channel resubscribed; flushing L1")
        elif self._warned:
            log.warning("cache invalidation channel is back; flushing L1")
        self._warned = False
        on_gap()  # anything cached while we were not listening may be stale
        self._connected.set()

    def _lost(self, on_gap: OnGap, exc: BaseException | None) -> None:
        was_connected = self.connected
        self._connected.clear()
        if was_connected:
            on_gap()
        if not self._warned:
            self._warned = True
            log.warning("cache invalidation channel lost (%s); L1 flushed, retrying", exc)

    def _client(self) -> redis.Redis:
        """A client of its own: no silent retries, so every reconnect is seen as a gap."""
        if self._listener is None:
            pool = self._tier.client.connection_pool
            kwargs = dict(pool.connection_kwargs)
            kwargs.update(retry=Retry(NoBackoff(), 0), health_check_interval=5)
            own = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
            self._listener = redis.Redis(connection_pool=own)
        return self._listener

    def _after_fork(self) -> None:
        if self._handlers is not None and self._thread is not None:
            # Fresh primitives: a lock held by a parent thread at fork time stays held forever.
            self._stop, self._connected = threading.Event(), threading.Event()
            self._listener = None
            self.start(*self._handlers)


def _restart_channels() -> None:
    """Restart listeners in a forked child (gunicorn --preload builds the app before forking)."""
    for channel in list(_CHANNELS):
        channel._after_fork()


os.register_at_fork(after_in_child=_restart_channels)
