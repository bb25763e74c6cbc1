"""
A Redis cache in front of any feedback store: reads come from Redis, writes go through.

Keys (all under the ``prefix``): ``version`` (a counter every write increments),
``item:<id>``, ``session:<id>``, ``type:<type>`` and ``stats`` (a hash holding every cached
``aggregate`` and ``stats`` result). Values are orjson-encoded items and records.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol, Self, TypedDict, TypeVar, Unpack

import orjson

from ai_feedback._models import (
    Cursor,
    Deleted,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackType,
    SeriesBucket,
    SeriesPoint,
    coerce_type,
    trusted_item,
)
from ai_feedback._urls import masked_url
from ai_feedback._validation import DEFAULT_LIMITS, Limits, check_id, check_optional_id
from ai_feedback.exceptions import FeedbackStorageError, FeedbackValidationError
from ai_feedback.protocols import SupportsDeletionLog, SupportsReplace
from ai_feedback.result import Result
from ai_feedback.stores._common import (
    ClosingContext,
    check_bucket,
    check_deletion,
    check_filter,
    check_filters,
    check_item,
    check_limit,
    check_window,
    newer_filters,
    scan_pages,
    store_location,
)
from ai_feedback.stores._deletion_log import check_accepted

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    msg = "CachedFeedbackStore needs redis: install the extra with 'pip install ai-feedback[redis]'"
    raise ModuleNotFoundError(msg, name="redis") from exc

__all__ = ["CachedFeedbackStore"]

_LOG = logging.getLogger("ai_feedback")
_T = TypeVar("_T")
# A dead or unreachable Redis surfaces as RedisError (ConnectionError, TimeoutError) or,
# from the socket layer, as OSError; both mean "answer from the wrapped store".
_REDIS_ERRORS = (RedisError, OSError)
_WARN_EVERY_S = 30.0
_PURGE_BATCH = 500
_STORE_METHODS = ("save", "save_many", "get", "find_by_session", "find_by_type", "aggregate")
# Fill an entry only if no write happened since the reader looked (compare-and-set on
# the version counter), so that a result computed before a write never outlives it.
_FILL_SCRIPT = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[4] == '' then
    redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
else
    redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
    if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
end
return 1
"""


class _Store(Protocol):
    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]: ...
    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]: ...
    async def get(self, item_id: str) -> FeedbackItem | None: ...
    async def find_by_session(self, session_id: str) -> list[FeedbackItem]: ...
    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]: ...
    async def aggregate(
        self, *, window_hours: float = 24, model: str | None = None, provider: str | None = None
    ) -> FeedbackSummary: ...
    async def stats(
        self, *, window_hours: float = 24, model: str | None = None, provider: str | None = None
    ) -> FeedbackStats: ...


class _Options(TypedDict, total=False):
    ttl_seconds: float
    stats_ttl_seconds: float
    prefix: str
    socket_timeout: float
    retry_after_seconds: float
    owns_store: bool
    limits: Limits


class CachedFeedbackStore(ClosingContext):
    """
    A feedback store that caches another store's reads in Redis and writes through to it.

    ``get``, ``find_by_session``, ``find_by_type``, ``aggregate`` and ``stats`` are answered
    from Redis when it holds an entry, else by the wrapped store, whose answer is cached:
    items and lists for ``ttl_seconds``, aggregates and stats for ``stats_ttl_seconds``
    (``get`` of an unknown id is not cached). ``save`` and ``save_many`` write to the wrapped
    store, then delete every entry the write can change (the items' session lists, their
    types' lists, all aggregates and stats) before returning. A ``find_by_type`` entry
    answers a smaller limit, and a larger one only when it already held everything.

    Redis is an accelerator, never a dependency: when it is down or slow (past
    ``socket_timeout``) reads are answered by the wrapped store and writes still succeed.
    Outages are logged at WARNING at most every 30 s; Redis is left alone for
    ``retry_after_seconds`` after each error, then caching resumes by itself.

    Staleness guarantee:

    - In this process, a read that starts after a write returned sees that write, even
      across an outage: a write that could not invalidate marks the cache dirty, and the
      next read or write deletes every key under ``prefix`` before using Redis again
      (bypassing Redis while that fails).
    - Other processes sharing the prefix see a write on their next read, unless its
      invalidation failed: then they may be served the old entry until it expires (at most
      ``ttl_seconds``, ``stats_ttl_seconds`` for aggregates and stats) or until the writing
      process purges, whichever comes first.
    - A result computed while a write was under way is never cached over it: fills are a
      compare-and-set on a version counter that every write increments.
    - A cached aggregate counts the window that ended when it was computed: items that aged
      out of the window since may still be counted, for at most ``stats_ttl_seconds``. Items
      the wrapped store evicts may still be served for up to ``ttl_seconds``.

    Args:
        store: The wrapped store (save, save_many, get, find_by_session, find_by_type,
            aggregate, stats; ``raw_payloads`` is passed to its save_many only when given).
        redis_url_or_client: A ``redis://`` URL (its client is closed by `aclose`) or a
            ``redis.asyncio.Redis`` client (left open; its own timeouts apply).
        ttl_seconds: Lifetime of cached items and lists.
        stats_ttl_seconds: Lifetime of cached aggregates and stats.
        prefix: Start of every key; one per namespace, none the start of another.
        socket_timeout: Seconds to wait for Redis to connect or reply.
        retry_after_seconds: Seconds to bypass Redis after an error.
        owns_store: Whether `aclose` also closes ``store``.
        limits: Size limits ``save`` checks (the wrapped store checks its own too).

    Raises:
        FeedbackValidationError: An argument is invalid.
    """

    def __init__(
        self,
        store: _Store,
        redis_url_or_client: str | Redis,
        *,
        ttl_seconds: float = 60,
        stats_ttl_seconds: float = 10,
        prefix: str = "ai_feedback:",
        socket_timeout: float = 0.5,
        retry_after_seconds: float = 1.0,
        owns_store: bool = False,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if not all(callable(getattr(store, name, None)) for name in (*_STORE_METHODS, "stats")):
            rule = f"must be a feedback store with {', '.join(_STORE_METHODS)} and stats"
            raise FeedbackValidationError("store", rule, store)
        self._ttl_ms = round(_seconds("ttl_seconds", ttl_seconds) * 1000)
        self._stats_ttl_ms = round(_seconds("stats_ttl_seconds", stats_ttl_seconds) * 1000)
        self._retry_after = _seconds("retry_after_seconds", retry_after_seconds, minimum=0)
        _seconds("socket_timeout", socket_timeout)
        if not isinstance(prefix, str) or not prefix:
            raise FeedbackValidationError("prefix", "must be a non-empty string", prefix)
        self._redis = _client(redis_url_or_client, socket_timeout)
        self._owns_client = isinstance(redis_url_or_client, str)
        self._store, self._owns_store, self._limits = store, owns_store, limits
        self._prefix = prefix
        self._version_key, self._stats_key = prefix + "version", prefix + "stats"
        self._fill = self._redis.register_script(_FILL_SCRIPT)
        self._retry_at = 0.0  # monotonic time before which Redis is bypassed
        self._down_since: float | None = None
        self._last_warning, self._suppressed = -math.inf, 0
        # Failed invalidations vs. those a purge has covered since: unequal means dirty.
        self._dirty = self._purged = 0
        self._purge_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, store: _Store, url: str, **opts: Unpack[_Options]) -> Self:
        """
        Return a cache over ``store`` on the Redis at ``url``, after checking that it answers.

        An unreachable Redis is logged, not raised: the cache starts degraded.

        Raises:
            FeedbackValidationError: An argument is invalid.
        """
        cache = cls(store, url, **opts)
        await cache.ping()
        return cache

    async def ping(self) -> bool:
        """
        Return whether Redis answers now; a failure is logged like any outage.
        """
        try:
            await self._redis.ping()
        except _REDIS_ERRORS as exc:
            self._failed("ping", exc)
            return False
        self._recovered()
        return True

    async def aclose(self) -> None:
        """
        Close the Redis client made from a URL, and the wrapped store if ``owns_store``.
        """
        if self._closed:
            return
        self._closed = True
        closers = [self._redis.aclose] if self._owns_client else []
        if self._owns_store and (store_close := getattr(self._store, "aclose", None)):
            closers.append(store_close)
        for close in closers:
            try:
                await close()
            except Exception:  # noqa: BLE001 - cleanup goes on; the error is logged
                _LOG.exception("Closing %r failed", close, extra={"cache_prefix": self._prefix})

    def __del__(self) -> None:
        if getattr(self, "_owns_client", False) and not getattr(self, "_closed", True):
            msg = f"{self!r} was never closed; use 'async with' or 'await cache.aclose()'."
            warnings.warn(msg, ResourceWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"<CachedFeedbackStore prefix={self._prefix!r} store={self._store!r}>"

    @property
    def inner(self) -> _Store:
        """
        The store being cached.
        """
        return self._store

    @property
    def location(self) -> str | None:
        """
        Where the wrapped store keeps items (the cache keeps nothing of its own).
        """
        return store_location(self._store)

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Save ``feedback`` in the wrapped store, then invalidate what it changes.

        An ``Err`` invalidates too, since a failed write may have been applied anyway.

        Raises:
            FeedbackValidationError: ``feedback`` is not a FeedbackItem or is over a limit.
        """
        check_item(feedback, self._limits)
        result = await self._store.save(feedback)
        await self._invalidate([feedback])
        return result

    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Save a batch in the wrapped store, then invalidate what it changes.

        Raises:
            FeedbackValidationError: An item or ``raw_payloads`` is invalid; nothing is stored.
        """
        batch = list(items)
        for item in batch:
            check_item(item, self._limits)
        if raw_payloads is None:
            result = await self._store.save_many(batch)
        elif isinstance(raw_payloads, Mapping):
            result = await self._store.save_many(batch, raw_payloads=raw_payloads)
        else:
            raise FeedbackValidationError("raw_payloads", "must be a dict or None", raw_payloads)
        await self._invalidate(batch)
        return result

    async def replace_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Replace items in the wrapped store (see `SupportsReplace`), then invalidate.

        A wrapped store that cannot replace items saves them as new ones (a changed item
        is then a conflict), as the writer does with such a store.

        Raises:
            FeedbackValidationError: An item is invalid.
        """
        batch = list(items)
        for item in batch:
            check_item(item, self._limits)
        if not isinstance(self._store, SupportsReplace):  # written as new: a change conflicts
            return await self.save_many(batch, raw_payloads=raw_payloads)
        before = await self._versions_of(batch)
        result = await self._store.replace_many(batch, raw_payloads=raw_payloads)
        await self._invalidate([*batch, *before], replaced=True)
        return result

    async def _versions_of(self, batch: list[FeedbackItem]) -> list[FeedbackItem]:
        """
        Return the stored items ``batch`` replaces, whose cached entries must go too.
        """
        found = [await self._store.get(item_id) for item_id in {item.id for item in batch}]
        return [item for item in found if item is not None]

    async def save_accepted(
        self,
        items: Sequence[FeedbackItem],
        accepted_at: Sequence[float],
        *,
        raw_payloads: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> Result[list[str], Exception]:
        """
        Save accepted items through the wrapped store's deletion log, then invalidate.

        A wrapped store without a deletion log saves (or replaces) them all (``Ok([])``).

        Raises:
            FeedbackValidationError: An item, a time or ``raw_payloads`` is invalid.
        """
        if not isinstance(self._store, SupportsDeletionLog):
            check_accepted(items, accepted_at)
            write = self.replace_many if replace else self.save_many
            return (await write(items, raw_payloads=raw_payloads)).map(lambda _: [])
        batch = list(items)
        for item in batch:
            check_item(item, self._limits)
        before = await self._versions_of(batch) if replace else []
        result = await self._store.save_accepted(
            batch, accepted_at, raw_payloads=raw_payloads, replace=replace
        )
        await self._invalidate([*batch, *before], replaced=replace)
        return result

    async def get_raw_payload(self, item_id: str) -> Any:  # noqa: ANN401 - any JSON value
        """
        Return the raw payload the wrapped store keeps for ``item_id`` (not cached), or None.
        """
        check_id("item_id", item_id)
        read = getattr(self._store, "get_raw_payload", None)
        return None if read is None else await read(item_id)

    async def get(self, item_id: str) -> FeedbackItem | None:
        """
        Return the item with ``item_id``, or None.
        """
        check_id("item_id", item_id)
        key = f"{self._prefix}item:{item_id}"
        return await self._cached(key, None, partial(self._store.get, item_id), _item)

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Return the items of ``session_id``, newest first.
        """
        check_id("session_id", session_id)
        key = f"{self._prefix}session:{session_id}"
        load = partial(self._store.find_by_session, session_id)
        return await self._cached(key, None, load, lambda entry: [_item(i) for i in entry])

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items of ``feedback_type``, newest first.
        """
        kind = coerce_type(feedback_type)
        check_limit(limit)

        def decode(entry: dict[str, Any]) -> list[FeedbackItem] | None:
            # An entry computed for a smaller limit answers only if it holds every item.
            items: list[dict[str, Any]] = entry["items"]
            if entry["limit"] >= limit or len(items) < entry["limit"]:
                return [_item(i) for i in items[:limit]]
            return None

        key = f"{self._prefix}type:{kind.value}"
        load = partial(self._store.find_by_type, kind, limit=limit)
        return await self._cached(
            key, None, load, decode, lambda items: {"limit": limit, "items": items}
        )

    async def aggregate(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> FeedbackSummary:
        """
        Summarize the last ``window_hours``, optionally filtered by model, provider, owner, type.
        """
        check_window(window_hours)
        check_filters(model, provider)
        check_optional_id("owner_id", owner_id)
        kind = None if feedback_type is None else coerce_type(feedback_type).value
        field = orjson.dumps(["aggregate", window_hours, model, provider, owner_id, kind]).decode()
        filters = {"model": model, "provider": provider, **newer_filters(owner_id, kind)}
        load = partial(self._store.aggregate, window_hours=window_hours, **filters)
        return await self._cached(self._stats_key, field, load, lambda e: FeedbackSummary(**e))

    async def stats(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> FeedbackStats:
        """
        Return the window's statistics, optionally filtered by model, provider, owner, type.
        """
        check_window(window_hours)
        check_filters(model, provider)
        check_optional_id("owner_id", owner_id)
        kind = None if feedback_type is None else coerce_type(feedback_type).value
        field = orjson.dumps(["stats", window_hours, model, provider, owner_id, kind]).decode()
        filters = {"model": model, "provider": provider, **newer_filters(owner_id, kind)}
        load = partial(self._store.stats, window_hours=window_hours, **filters)
        return await self._cached(self._stats_key, field, load, _stats)

    async def series(
        self,
        *,
        window_hours: float = 24,
        bucket: SeriesBucket = "hour",
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> list[SeriesPoint]:
        """
        Return the wrapped store's time series of the window (not cached).

        Raises:
            FeedbackStorageError: The wrapped store has no time series.
        """
        series = getattr(self._store, "series", None)
        if series is None:
            msg = f"{type(self._store).__name__} has no time series"
            raise FeedbackStorageError(msg)
        filters = {"model": model, "provider": provider, **newer_filters(owner_id, feedback_type)}
        points: list[SeriesPoint] = await series(
            window_hours=window_hours, bucket=check_bucket(bucket), **filters
        )
        return points

    async def query(
        self,
        where: FeedbackFilter | None = None,
        *,
        limit: int = 100,
        before: Cursor | None = None,
    ) -> list[FeedbackItem]:
        """
        Return the wrapped store's page of items matching ``where`` (pages are not cached).

        Raises:
            FeedbackStorageError: The wrapped store cannot query.
        """
        query = getattr(self._store, "query", None)
        if query is None:
            msg = f"{type(self._store).__name__} cannot list items by filter"
            raise FeedbackStorageError(msg)
        items: list[FeedbackItem] = await query(check_filter(where), limit=limit, before=before)
        return items

    def scan(
        self, where: FeedbackFilter | None = None, *, page_size: int = 1000
    ) -> AsyncIterator[FeedbackItem]:
        """
        Yield the wrapped store's items matching ``where``, newest first (not cached).
        """
        return scan_pages(self.query, where, page_size)

    def raw_lines(self, where: FeedbackFilter | None = None) -> AsyncIterator[bytes] | None:
        """
        The wrapped store's server-built raw export (not cached), or None.
        """
        lines = getattr(self._store, "raw_lines", None)
        return None if lines is None else lines(where)

    async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
        """
        Delete from the wrapped store, then drop every cached entry under the prefix.

        When Redis is unreachable the cache is marked dirty and purged before its next use,
        so no cached answer can return a deleted item.

        Raises:
            FeedbackValidationError: ``where`` is empty.
            FeedbackStorageError: The wrapped store cannot delete or refused.
        """
        where = check_deletion(where)
        delete = getattr(self._store, "delete", None)
        if delete is None:
            msg = f"{type(self._store).__name__} cannot delete items"
            raise FeedbackStorageError(msg)
        removed: Deleted = await delete(where, limit=limit)
        if not removed.items:
            return removed  # nothing changed, nothing cached is stale
        dropped = await self._drop_all()
        return Deleted(removed.items, removed.raw_payloads, dropped, removed.rollup_rows)

    @property
    def purge_pending(self) -> bool:
        """
        True while stale entries could not be dropped from Redis (it was unreachable).

        Entries a write, deletion or rebuild made stale are purged by this object before
        it uses Redis again; other processes may be served them until they expire.
        """
        return self._dirty != self._purged

    async def rebuild_rollup(self) -> int:
        """
        Count the wrapped store's statistics rollup again, then drop every cached entry.

        Returns the number of items counted. When Redis is unreachable the cache is marked
        dirty (`purge_pending`) and this object purges it before its next use of Redis, so
        it serves no statistic cached before the rebuild; other processes may, until
        those entries expire (``stats_ttl_seconds``).

        Raises:
            FeedbackStorageError: The wrapped store has no rollup, or the rebuild failed.
        """
        rebuild = getattr(self._store, "rebuild_rollup", None)
        if rebuild is None:
            msg = f"{type(self._store).__name__} keeps no statistics rollup to rebuild"
            raise FeedbackStorageError(msg)
        counted: int = await rebuild()
        await self._drop_all()
        return counted

    async def _drop_all(self) -> int:
        """
        Drop every cached entry under the prefix (or mark the cache dirty); return how many.
        """
        self._dirty += 1
        dropped = 0
        if not self._closed:
            async with self._purge_lock:
                dirty = self._dirty
                try:
                    dropped = await self._purge()
                except _REDIS_ERRORS as exc:
                    self._failed("purge", exc)
                else:
                    self._purged = dirty
                    self._recovered()
        return dropped

    async def _cached(
        self,
        key: str,
        field: str | None,
        load: Callable[[], Awaitable[_T]],
        decode: Callable[[Any], _T | None],
        encode: Callable[[_T], object] = lambda value: value,
    ) -> _T:
        """
        Return the entry at ``key`` (``field`` of that hash), else ``load()`` and cache it.

        ``decode`` returns None for an entry that cannot answer; a None result is not cached.
        """
        if not await self._usable():
            return await load()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._version_key)
                if field is None:
                    pipe.get(key)
                else:
                    pipe.hget(key, field)
                version, raw = await pipe.execute()
        except _REDIS_ERRORS as exc:
            self._failed("read", exc)
            return await load()
        self._recovered()
        if raw is not None:
            try:
                hit = decode(orjson.loads(raw))
            except (ValueError, KeyError, TypeError):
                hit = None  # an unreadable entry is a miss, and the fill replaces it
            if hit is not None:
                return hit
        result = await load()
        if result is None:
            return result
        try:
            payload = orjson.dumps(encode(result))
        except orjson.JSONEncodeError:  # e.g. an integer past 64 bits: serve it uncached
            return result
        ttl_ms = self._ttl_ms if field is None else self._stats_ttl_ms
        try:
            await self._fill(
                keys=[self._version_key, key], args=[version or b"", payload, ttl_ms, field or ""]
            )
        except _REDIS_ERRORS as exc:
            self._failed("fill", exc)
        return result

    async def _invalidate(self, items: list[FeedbackItem], *, replaced: bool = False) -> None:
        keys = {self._stats_key}
        for item in items:
            keys.add(f"{self._prefix}type:{item.feedback_type.value}")
            if item.session_id is not None:
                keys.add(f"{self._prefix}session:{item.session_id}")
            if replaced:  # a saved item never changes; a replaced one does
                keys.add(f"{self._prefix}item:{item.id}")
        if not await self._usable():
            self._dirty += 1
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(self._version_key)
                pipe.delete(*keys)
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            self._dirty += 1
            self._failed("invalidate", exc)
        else:
            self._recovered()

    async def _usable(self) -> bool:
        """
        Return whether to use Redis now, first purging the prefix if the cache is dirty.
        """
        if self._closed or time.monotonic() < self._retry_at:
            return False
        if self._dirty == self._purged:
            return True
        async with self._purge_lock:
            while self._dirty != self._purged:
                dirty = self._dirty
                try:
                    await self._purge()
                except _REDIS_ERRORS as exc:
                    self._failed("purge", exc)
                    return False
                self._purged = dirty
        self._recovered()
        return True

    async def _purge(self) -> int:
        # Increment the version first so that no fill begun before the purge can land.
        await self._redis.incr(self._version_key)
        keep = (self._version_key, self._version_key.encode())
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self._prefix) + "*"
        batch: list[bytes | str] = []
        dropped = 0
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            if key not in keep:
                batch.append(key)
            if len(batch) >= _PURGE_BATCH:
                dropped += await self._redis.unlink(*batch)
                batch.clear()
        if batch:
            dropped += await self._redis.unlink(*batch)
        return dropped

    def _failed(self, operation: str, exc: BaseException) -> None:
        now = time.monotonic()
        self._retry_at = now + self._retry_after
        if self._down_since is None:
            self._down_since = now
        if now - self._last_warning < _WARN_EVERY_S:
            self._suppressed += 1
            return
        _LOG.warning(
            "Redis cache %r failed during %s (%s: %s); answering from the wrapped store "
            "(%d more failure(s) since the last warning)",
            *(self._prefix, operation, type(exc).__name__, exc, self._suppressed),
            extra={"cache_prefix": self._prefix, "cache_operation": operation},
        )
        self._last_warning, self._suppressed = now, 0

    def _recovered(self) -> None:
        if self._down_since is not None:
            _LOG.info(
                "Redis cache %r is reachable again after %.1f s; caching resumes",
                *(self._prefix, time.monotonic() - self._down_since),
                extra={"cache_prefix": self._prefix},
            )
            self._down_since = None


def _seconds(name: str, value: object, *, minimum: float = 1e-3) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeedbackValidationError(name, "must be a number of seconds", value)
    if not minimum <= value < math.inf:
        raise FeedbackValidationError(name, f"must be finite and at least {minimum:g}", value)
    return float(value)


def _client(url_or_client: object, socket_timeout: float) -> Redis:
    if isinstance(url_or_client, Redis):
        return url_or_client
    rule = "must be a redis://, rediss:// or unix:// URL, or a redis.asyncio.Redis client"
    if not isinstance(url_or_client, str):
        raise FeedbackValidationError("redis_url_or_client", rule, url_or_client)
    try:
        # No retries: a failed call falls through to the wrapped store at once.
        return Redis.from_url(
            url_or_client,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError:
        raise FeedbackValidationError(
            "redis_url_or_client", rule, masked_url(url_or_client)
        ) from None


def _item(data: dict[str, Any]) -> FeedbackItem:
    """
    Rebuild an item this module cached, without validating it again.
    """
    return trusted_item(
        FeedbackType(data["feedback_type"]),
        data["value"],
        data["context"],
        data["metadata"],
        data["id"],
        datetime.fromisoformat(data["created_at"]),
    )


def _stats(data: dict[str, Any]) -> FeedbackStats:
    return FeedbackStats(**{**data, "summary": FeedbackSummary(**data["summary"])})
