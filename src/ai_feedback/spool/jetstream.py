"""
A spool in NATS JetStream, for many processes sharing one store (extra ``nats``).

Any number of processes publish accepted entries to one work-queue stream (file
storage); `append` returns once JetStream acknowledged the message, i.e. stored it.
Writer processes share one durable pull consumer: each takes batches, writes them to the
store, and acknowledges the messages only after the store committed. A writer that dies
mid-batch leaves its messages unacknowledged; JetStream delivers them again after
``ack_wait`` seconds to a live writer, and the store, idempotent on ids, stores nothing
twice. While a store outage lasts, the writer keeps its batch reserved (``in_progress``).

Configure it with ``spool_url: nats://host:4222`` and optional query parameters:
``stream`` (default ``AI_FEEDBACK``), ``subject`` (``ai_feedback.items``), ``consumer``
(``ai_feedback_writer``) and ``ack_wait`` (seconds, default 30). Refused entries go to
the ``<stream>_DEAD`` stream (subject ``<subject>.dead``) with the reason in headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from ai_feedback._models import Entry, FeedbackFilter, Spooled, SpoolStatus
from ai_feedback._urls import masked_url
from ai_feedback.exceptions import (
    FeedbackConfigurationError,
    FeedbackOverloadedError,
    FeedbackStorageError,
    FeedbackValidationError,
)
from ai_feedback.spool._base import FROM_WRITER, decode_entry, encode_entry

__all__ = ["JetStreamSpool", "parse_nats_url"]

_LOG = logging.getLogger("ai_feedback")
_MAX_MESSAGES_EXCEEDED = 10077
_POLL = 0.02
T = TypeVar("T")
_ACK_WAIT_MIN, _ACK_WAIT_MAX = 0.5, 86_400.0
_FETCH_WAIT = 1.0
_DESCRIPTION = "ai-feedback spool for "
_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)


_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""Stream and consumer names (NATS refuses spaces, '.', '*', '>', '/', controls)."""


def parse_nats_url(url: str) -> dict[str, Any]:
    """
    Split a ``nats://`` spool URL into servers and options.

    Raises:
        FeedbackValidationError: The URL or an option is malformed.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"nats", "tls"} or not parts.netloc:
        msg = "must look like nats://host:4222[?stream=...&subject=...]"
        raise FeedbackValidationError("spool_url", msg, masked_url(url))
    query = {
        key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()
    }
    known = {"stream", "subject", "consumer", "ack_wait"}
    unknown = sorted(set(query) - known)
    if unknown:
        msg = f"has an unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})"
        raise FeedbackValidationError("spool_url", msg, masked_url(url))
    try:
        ack_wait = float(query.get("ack_wait", "30"))
    except ValueError:
        ack_wait = -1.0
    if not _ACK_WAIT_MIN <= ack_wait <= _ACK_WAIT_MAX:
        msg = "ack_wait must be 0.5 to 86400 seconds"
        raise FeedbackValidationError("spool_url", msg, masked_url(url))
    for option in ("stream", "consumer"):
        name = query.get(option)
        if name is not None and not _NAME.fullmatch(name):
            msg = f"{option} must be 1-255 letters, digits, '_' or '-'"
            raise FeedbackValidationError("spool_url", msg, masked_url(url))
    servers = [f"{parts.scheme}://{netloc}" for netloc in parts.netloc.split(",")]
    return {
        "servers": servers,
        "stream": query.get("stream", "AI_FEEDBACK"),
        "subject": query.get("subject", "ai_feedback.items"),
        "consumer": query.get("consumer", "ai_feedback_writer"),
        "ack_wait": ack_wait,
    }


class JetStreamSpool:
    """
    A durable spool shared by processes through a NATS JetStream work-queue stream.

    Args:
        url: ``nats://host:port`` with the options described in the module.
        identity: Names the store the stream feeds; a stream feeding another store, with
            messages in it, is refused.
        capacity: Most messages in the stream before submitters wait.
        full_wait: Seconds a submitter waits for room (or for the server) before
            `FeedbackOverloadedError` (full) or `FeedbackStorageError` (unreachable).
        consume: Take batches for a writer in this process (False for processes that
            only publish).
    """

    def __init__(
        self,
        url: str,
        *,
        identity: str,
        capacity: int = 1_000_000,
        full_wait: float = 5.0,
        consume: bool = True,
    ) -> None:
        options = parse_nats_url(url)
        self._url = url
        self._servers: list[str] = options["servers"]
        self._stream: str = options["stream"]
        self._subject: str = options["subject"]
        self._consumer: str = options["consumer"]
        self._ack_wait: float = options["ack_wait"]
        self._identity = identity
        self._capacity = capacity
        self._full_wait = full_wait
        self._consume = consume
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._last_mark = 0
        self._taken = 0
        self._hurry = 0
        self._started = False
        self._start_lock = asyncio.Lock()
        self._closed = asyncio.Event()  # set by aclose: ends a wait_done at once

    def __repr__(self) -> str:
        state = "connected" if self._nc is not None else "closed"
        return f"<JetStreamSpool {self.location} {state}>"

    @property
    def durable(self) -> bool:
        """
        True: JetStream stored the message before `append` returns.
        """
        return True

    @property
    def location(self) -> str:
        """
        The servers and the stream, e.g. ``nats://127.0.0.1:4222/AI_FEEDBACK``.
        """
        return f"{','.join(masked_url(server) for server in self._servers)}/{self._stream}"

    @property
    def last_mark(self) -> int:
        """
        The stream sequence of the newest entry this process published.
        """
        return self._last_mark

    @property
    def hold_every(self) -> float:
        """
        How often a writer working on a batch should `hold` it (a third of ack_wait).
        """
        return self._ack_wait / 3

    async def start(self) -> None:
        """
        Connect, create the streams (and the consumer) when missing.

        Raises:
            FeedbackStorageError: The server cannot be reached or refused the setup.
            FeedbackConfigurationError: The stream feeds another store.
        """
        async with self._start_lock:
            if self._started:
                return
            try:
                async with asyncio.timeout(self._full_wait * 2):  # the first connection
                    self._nc = await nats.connect(
                        servers=self._servers,
                        name="ai-feedback",
                        connect_timeout=self._full_wait,
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=0.5,
                    )
                self._js = self._nc.jetstream(timeout=self._full_wait)
                await self._ensure_streams()
                if self._consume:
                    await self._update_consumer()
                    self._sub = await self._js.pull_subscribe(
                        self._subject,
                        durable=self._consumer,
                        stream=self._stream,
                        config=ConsumerConfig(
                            ack_policy=AckPolicy.EXPLICIT,
                            ack_wait=self._ack_wait,
                            max_deliver=-1,
                            max_ack_pending=-1,
                        ),
                    )
            except _ERRORS as exc:
                await self.aclose()
                msg = f"Could not set up the NATS JetStream spool {self.location}: {exc!r}."
                if isinstance(exc, nats.js.errors.BadRequestError):
                    msg += (
                        f" If another stream already takes the subject {self._subject!r}, "
                        "give this one its own (?subject=...)."
                    )
                raise FeedbackStorageError(msg) from exc
            except BaseException:
                await self.aclose()
                raise
            self._started = True
            self._closed.clear()

    async def _ensure_streams(self) -> None:
        js = self._jetstream()
        description = _DESCRIPTION + self._identity
        config = StreamConfig(
            name=self._stream,
            description=description,
            subjects=[self._subject],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            max_msgs=self._capacity,
            discard=DiscardPolicy.NEW,
        )
        try:
            info = await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
        else:
            known = info.config.description or ""
            # Another store's stream is refused even when empty: a second application
            # would share its consumer and write the first one's items into its own store.
            if known != description and (known.startswith(_DESCRIPTION) or info.state.messages):
                msg = (
                    f"the stream {self._stream} feeds {known.removeprefix(_DESCRIPTION) or '?'}"
                    f" ({info.state.messages} item(s) waiting), not {self._identity}; name "
                    "another stream in spool_url (?stream=...), or delete this one to move it"
                )
                raise FeedbackConfigurationError("spool_url", msg)
            limit = info.config.max_msgs
            if limit is None or limit < 0 or limit > self._capacity:  # None, -1: no limit
                # Lowering the limit below the messages waiting makes the server delete the
                # oldest of them at once: items already acknowledged to their submitters.
                _LOG.warning(
                    "The NATS JetStream stream %s keeps its limit (%s); spool_max_items "
                    "(%d) only ever raises it, as lowering it could delete waiting items.",
                    self._stream,
                    "none" if limit is None or limit < 0 else f"{limit} items",
                    self._capacity,
                )
                config.max_msgs = limit
                if limit is not None and limit > 0:
                    self._capacity = limit
            if info.config.max_msgs != config.max_msgs or info.config.description != description:
                await js.update_stream(config)
        dead = StreamConfig(
            name=f"{self._stream}_DEAD",
            subjects=[f"{self._subject}.dead"],
            storage=StorageType.FILE,
        )
        try:
            await js.stream_info(dead.name or "")
        except nats.js.errors.NotFoundError:
            await js.add_stream(dead)

    async def _update_consumer(self) -> None:
        """
        Give an existing consumer the ``ack_wait`` of this spool's URL.
        """
        js = self._jetstream()
        try:
            info = await js.consumer_info(self._stream, self._consumer)
        except nats.js.errors.NotFoundError:
            return
        if info.config.ack_wait != self._ack_wait:
            config = info.config
            config.ack_wait = self._ack_wait
            await js.add_consumer(self._stream, config=config)

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            msg = f"The NATS JetStream spool {self.location} is closed."
            raise FeedbackStorageError(msg)
        return self._js

    async def append(self, entry: Entry) -> int:
        """
        Publish ``entry`` and wait for JetStream to store it; return its stream sequence.

        Raises:
            FeedbackOverloadedError: The stream stayed full for ``full_wait`` seconds.
            FeedbackStorageError: JetStream did not store it within ``full_wait`` seconds.
        """
        if not self._started:
            await self.start()
        js = self._jetstream()
        data = encode_entry(entry)
        deadline = time.monotonic() + self._full_wait
        delay = 0.05
        while True:
            try:
                ack = await js.publish(self._subject, data, stream=self._stream)
            except nats.js.errors.APIError as exc:
                if exc.err_code != _MAX_MESSAGES_EXCEEDED:
                    raise self._error("spool feedback", exc) from exc
                # The writer's own append (a step submitting) cannot wait for room it
                # would have to make itself: the stream's limit is the server's.
                if time.monotonic() + delay > deadline or FROM_WRITER.get():
                    raise FeedbackOverloadedError(
                        f"NATS JetStream spool {self.location}",
                        capacity=self._capacity,
                        retry_after=max(1.0, self._full_wait),
                    ) from None
            except _ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    raise self._error("spool feedback", exc) from exc
            else:
                self._last_mark = max(self._last_mark, ack.seq)
                return int(ack.seq)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def append_many(self, entries: Sequence[Entry]) -> list[int]:
        """
        Publish ``entries`` concurrently; return their stream sequences.

        Raises:
            FeedbackOverloadedError: The stream stayed full.
            FeedbackStorageError: JetStream did not store one of them.
        """
        return list(await asyncio.gather(*(self.append(entry) for entry in entries)))

    async def take(self, limit: int, max_delay: float) -> list[Spooled]:
        """
        Fetch the next messages of the shared consumer (waiting for at least one).

        Raises:
            FeedbackConfigurationError: This spool was opened with ``consume=False``.
        """
        if not self._started:
            await self.start()
        if self._sub is None:
            msg = "this process only publishes (run_writer is false); it cannot take batches"
            raise FeedbackConfigurationError("run_writer", msg)
        messages = await self._fetch(limit, None)
        if len(messages) < limit and max_delay > 0 and self._hurry <= self._taken:
            await asyncio.sleep(max_delay)
            messages += await self._fetch(limit - len(messages), 0.05)
        batch = []
        for message in messages:
            try:
                entry, _ = decode_entry(message.data)
            except ValueError as exc:
                try:
                    await self._publish_dead(message.data, "spool", exc, 0)
                except FeedbackStorageError:
                    _LOG.exception("Kept undecodable message in %s for now", self.location)
                    continue  # not acknowledged: delivered again once the dead letter fits
                await _quietly(message.ack())
                continue
            again = (message.metadata.num_delivered or 1) > 1
            batch.append(Spooled(message.metadata.sequence.stream, entry, message, replayed=again))
        if batch:
            self._taken = max(self._taken, batch[-1].mark)
        return batch

    async def _fetch(self, limit: int, wait: float | None) -> list[Any]:
        assert self._sub is not None  # noqa: S101 - checked by take
        while True:
            try:
                return await self._sub.fetch(limit, timeout=wait or _FETCH_WAIT)
            except (TimeoutError, nats.errors.TimeoutError):
                if wait is not None:
                    return []
            except _ERRORS:
                _LOG.warning("Fetching from the NATS spool %s failed", self.location, exc_info=True)
                if wait is not None:
                    return []
                await asyncio.sleep(0.5)
            finally:
                _raise_if_cancelled()

    async def hold(self, batch: Sequence[Spooled]) -> None:
        """
        Reset the messages' ``ack_wait`` timers: the writer still works on them.
        """
        for spooled in batch:
            await _quietly(spooled.handle.in_progress())

    async def complete(self, batch: Sequence[Spooled]) -> None:
        """
        Acknowledge ``batch``: JetStream removes the messages.
        """
        for spooled in batch:
            await _quietly(spooled.handle.ack())
        if self._nc is not None:
            await _quietly(self._nc.flush())

    async def dead_letter(
        self, spooled: Spooled, stage: str, error: BaseException, attempts: int
    ) -> None:
        """
        Publish ``spooled`` to the dead-letter stream with the reason in its headers.

        Raises:
            FeedbackStorageError: The dead letter was not stored (the stream is full or
                the server unreachable); the entry must then stay in the spool.
        """
        await self._publish_dead(spooled.handle.data, stage, error, attempts)

    async def _publish_dead(
        self, data: bytes, stage: str, error: BaseException, attempts: int
    ) -> None:
        headers = {"stage": stage, "error": repr(error)[:1000], "attempts": str(attempts)}
        try:
            await self._jetstream().publish(f"{self._subject}.dead", data, headers=headers)
        except _ERRORS as exc:
            raise self._error("keep a dead letter", exc) from exc

    async def delete_dead_letters(self, where: FeedbackFilter) -> int:
        """
        Remove the dead letters whose item matches ``where``; return how many.

        Raises:
            FeedbackStorageError: The server cannot be reached.
        """
        js = self._jetstream()
        stream = f"{self._stream}_DEAD"
        removed = 0
        try:
            state = (await js.stream_info(stream)).state
            seq = state.first_seq
            while state.messages and seq <= state.last_seq:
                try:
                    # With a subject, the server answers the next message at or after
                    # seq; without one, only seq itself (a deleted one ends the walk).
                    message = await js.get_msg(
                        stream, seq=seq, next=True, subject=f"{self._subject}.dead"
                    )
                except nats.js.errors.NotFoundError:
                    break
                seq = (message.seq or seq) + 1
                try:
                    item = decode_entry(message.data or b"")[0].item
                except ValueError:
                    continue
                if where.matches(item) and message.seq is not None:
                    await js.delete_msg(stream, message.seq)
                    removed += 1
        except _ERRORS as exc:
            raise self._error("delete dead letters", exc) from exc
        return removed

    async def hurry(self, mark: int) -> None:
        """
        Fetch without waiting for batches to fill until ``mark`` is taken.
        """
        self._hurry = max(self._hurry, mark)

    async def wait_done(self, mark: int) -> None:
        """
        Wait until JetStream removed every message up to ``mark`` (all acknowledged).
        """
        while True:
            js = self._jetstream()  # raises once the spool is closed
            try:
                state = (await self._unless_closed(js.stream_info(self._stream))).state
            except nats.errors.ConnectionClosedError as exc:
                raise self._error("wait for the writers", exc) from exc
            except _ERRORS:
                _LOG.debug("Reading the state of %s failed; trying again", self.location)
            else:
                if state.messages == 0 or state.first_seq > mark:
                    return
            await asyncio.sleep(_POLL)

    async def _unless_closed(self, request: Awaitable[T]) -> T:
        """
        Await ``request``, or raise ConnectionClosedError as soon as the spool is closed.

        A request in flight when the connection closes may otherwise wait out its own
        timeout (seconds on a loaded server).
        """
        answer = asyncio.ensure_future(request)
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({answer, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not answer.done():
                answer.cancel()
        if answer.cancelled():
            raise nats.errors.ConnectionClosedError
        return answer.result()

    async def status(self) -> SpoolStatus:
        """
        Messages in the stream, the age of the oldest, and the dead letters.

        Raises:
            FeedbackStorageError: The server cannot be reached.
        """
        js = self._jetstream()
        try:
            state = (await js.stream_info(self._stream)).state
            dead = (await js.stream_info(f"{self._stream}_DEAD")).state.messages
            oldest = None
            if state.messages:
                with contextlib.suppress(nats.js.errors.NotFoundError):  # just acknowledged
                    first = await js.get_msg(self._stream, seq=state.first_seq, next=True)
                    if first.time is not None:
                        oldest = max(0.0, (datetime.now(UTC) - first.time).total_seconds())
        except _ERRORS as exc:
            raise self._error("read the status", exc) from exc
        return SpoolStatus(
            kind="nats",
            location=self.location,
            durable=True,
            depth=state.messages,
            oldest_age_seconds=oldest,
            capacity=self._capacity,
            dead_letters=dead,
        )

    async def aclose(self) -> None:
        """
        Close the connection; messages not acknowledged are delivered again later.
        """
        nc, self._nc = self._nc, None
        self._js = self._sub = None
        self._started = False
        self._closed.set()
        if nc is not None:
            await _quietly(nc.close())

    def _error(self, action: str, exc: BaseException) -> FeedbackStorageError:
        return FeedbackStorageError(f"Could not {action} in {self.location}: {exc!r}.")


def _raise_if_cancelled() -> None:
    # asyncio.wait_for (which nats-py's fetch uses) can swallow a cancellation that comes
    # as its wait ends (fixed in Python 3.12); without this check the fetch loop would
    # go on forever in a task that was asked to stop.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _quietly(awaitable: Any) -> None:  # noqa: ANN401 - any nats coroutine
    try:
        await awaitable
    except _ERRORS:
        _LOG.warning("A NATS spool operation failed; JetStream redelivers", exc_info=True)
