"""
`DatabaseFeedbackStore`: a durable store opened from a database URL.

The seed's guide says to wire "a DatabaseFeedbackStore in the provider" for production.
``await DatabaseFeedbackStore.open(url)`` returns an `SQLiteFeedbackStore` for
``sqlite:///path.db`` and a `PostgresFeedbackStore` for ``postgresql://...``; both are
(virtual) subclasses, so ``isinstance(store, DatabaseFeedbackStore)`` holds for either.
Bind it before the module boots and the collector writes to it::

    store = await DatabaseFeedbackStore.open("sqlite:///./feedback.db")
    app = Application()
    app.container.bind(FeedbackStoreProtocol, store)
    app.add_module(FeedbackModule.configure())
"""

from __future__ import annotations

import abc
import importlib.util
from typing import TYPE_CHECKING, Any

from ai_feedback._urls import masked_url
from ai_feedback.exceptions import FeedbackConfigurationError, FeedbackValidationError

if TYPE_CHECKING:
    from ai_feedback.stores.postgres import PostgresFeedbackStore
    from ai_feedback.stores.sqlite import SQLiteFeedbackStore

__all__ = ["DatabaseFeedbackStore"]


class DatabaseFeedbackStore(abc.ABC):  # noqa: B024 - a virtual base with no abstract method
    """
    The durable stores: `SQLiteFeedbackStore` and `PostgresFeedbackStore`.
    """

    @staticmethod
    async def open(url: str, **options: Any) -> SQLiteFeedbackStore | PostgresFeedbackStore:  # noqa: ANN401
        """
        Open the store ``url`` names, creating or migrating its schema.

        Args:
            url: ``sqlite:///path/to/file.db`` or ``postgresql://user@host:port/db``.
            options: Passed to the store's own ``open`` (``limits``; ``schema``,
                ``max_size``, ``command_timeout`` for PostgreSQL; ``busy_timeout_ms``
                for SQLite).

        Raises:
            FeedbackValidationError: ``url`` names no supported database.
            FeedbackConfigurationError: The PostgreSQL driver is not installed.
            FeedbackStorageError: The database cannot be opened.
        """
        if not isinstance(url, str):
            raise FeedbackValidationError("url", "must be a database URL string", url)
        if url.startswith("sqlite:///"):
            from ai_feedback.stores.sqlite import SQLiteFeedbackStore  # noqa: PLC0415

            return await SQLiteFeedbackStore.open(url, **options)
        if url.startswith(("postgresql://", "postgres://")):
            if importlib.util.find_spec("asyncpg") is None:
                msg = "needs the asyncpg package: pip install 'ai-feedback[postgresql]'"
                raise FeedbackConfigurationError("url", msg)
            from ai_feedback.stores.postgres import PostgresFeedbackStore  # noqa: PLC0415

            return await PostgresFeedbackStore.open(url, **options)
        msg = "must start with sqlite:/// or postgresql://"
        raise FeedbackValidationError("url", msg, masked_url(url) if isinstance(url, str) else url)
