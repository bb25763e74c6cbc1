"""
Spools: where accepted items wait for the background writer.

- `MemorySpool` — ``ack: queued``: a bounded queue in memory; fast, lost if the process
  dies.
- `SQLiteSpool` (`ai_feedback.spool.sqlite`) — ``ack: durable`` (the default): an
  SQLite file next to the store; an item is fsync'd before the submitter gets its
  acknowledgement, and whatever was not stored is replayed at the next start.
- `JetStreamSpool` (`ai_feedback.spool.jetstream`, extra ``nats``) — ``spool_url:
  nats://...``: NATS JetStream, shared by many processes and writer processes.

`open_spool` picks one from the configuration and the store.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

from ai_feedback._urls import masked_url
from ai_feedback.config import FeedbackConfig
from ai_feedback.exceptions import FeedbackConfigurationError
from ai_feedback.protocols import Spool
from ai_feedback.spool.memory import MemorySpool
from ai_feedback.stores._common import store_location

__all__ = ["MemorySpool", "Spool", "default_spool_path", "open_spool", "report_leftovers"]

_LOG = logging.getLogger("ai_feedback")


def default_spool_path(location: str) -> Path:
    """
    Return the spool file used for a store at ``location`` when ``spool_url`` is unset.

    Next to an SQLite database (``<database>-spool``); in the working directory for
    other stores (``ai_feedback-<hash of the location>.spool``).
    """
    if location.startswith("sqlite:///"):
        return Path(location.removeprefix("sqlite:///") + "-spool")
    digest = hashlib.sha256(location.encode()).hexdigest()[:12]
    return Path.cwd() / f"ai_feedback-{digest}.spool"


def open_spool(config: FeedbackConfig, store: object) -> Spool:
    """
    Return the spool the configuration asks for, not yet started.

    ``ack: queued``, and stores that keep nothing across restarts (the in-memory store,
    an in-memory SQLite database), get a `MemorySpool`: there is nothing durable to
    acknowledge. Otherwise ``spool_url`` decides, or a local SQLite file by default.

    Raises:
        FeedbackConfigurationError: ``spool_url`` needs an extra that is not installed.
    """
    full_wait = config.backpressure_wait_ms / 1000
    location = store_location(store)
    if config.ack == "queued" or location is None:
        return MemorySpool(capacity=config.queue_max_size, full_wait=full_wait)
    url = config.spool_url
    if url is not None and url.startswith(("nats://", "tls://")):
        if importlib.util.find_spec("nats") is None:
            msg = "needs the nats-py package: pip install 'ai-feedback[nats]'"
            raise FeedbackConfigurationError("spool_url", msg)
        from ai_feedback.spool.jetstream import JetStreamSpool  # noqa: PLC0415 - optional

        return JetStreamSpool(
            url,
            identity=location,
            capacity=config.spool_max_items,
            full_wait=full_wait,
            consume=config.run_writer,
        )
    from ai_feedback.spool.sqlite import SQLiteSpool  # noqa: PLC0415 - keeps imports light

    path = Path(url.removeprefix("sqlite:///")) if url else default_spool_path(location)
    return SQLiteSpool(
        path,
        identity=location,
        capacity=config.spool_max_items,
        full_wait=full_wait,
        memory_items=config.queue_max_size,
    )


def report_leftovers(location: str | None, spool: Spool | None) -> int:
    """
    Log an ERROR for each local spool file whose acknowledged items this run won't write.

    A spool is found by its store's URL as written and the working directory (or next
    to an SQLite database): started with another ``database_url`` spelling, in another
    directory, with ``ack: queued`` or without async processing, an application would
    leave what an earlier run spooled where nothing reads it. Files a live process holds
    are its own, and the family this run's SQLite spool adopts is drained by it.
    Returns how many files were reported.
    """
    from ai_feedback.spool.sqlite import SQLiteSpool, leftover_entries, members  # noqa: PLC0415

    candidates: set[Path] = set()
    try:
        if location is not None:
            candidates.update(members(default_spool_path(location).absolute()))
        for found in Path.cwd().glob("ai_feedback-*.spool*"):
            if not found.name.endswith((".lock", "-wal", "-shm", "-journal")):
                candidates.add(found.absolute())
    except OSError:  # e.g. the working directory was removed: a check, not a reason to stop
        _LOG.debug("Could not look for leftover spool files", exc_info=True)
        return 0
    if isinstance(spool, SQLiteSpool):
        candidates.difference_update(members(spool.family))
    reported = 0
    for path in sorted(candidates):
        left = leftover_entries(path)
        if left is None:
            continue
        store, count = left
        reported += 1
        _LOG.error(
            "The spool %s holds %d acknowledged feedback item(s) for %s that this run will "
            "not write: it uses %s. Start the application once as it ran then (ack: "
            "durable, that database_url as written, in %s) so that it stores them.",
            path,
            count,
            masked_url(store),
            "no spool file"
            if spool is None or not isinstance(spool, SQLiteSpool)
            else f"the spool {spool.family}",
            path.parent,
            extra={"spool": str(path), "count": count},
        )
    return reported
