"""DatabaseFeedbackStore: the seed's durable store, opened from a URL, wired in the container."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_feedback import (
    Application,
    DatabaseFeedbackStore,
    FeedbackModule,
    FeedbackProtocol,
    FeedbackStoreProtocol,
    FeedbackValidationError,
)
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema


async def test_a_sqlite_url_opens_the_sqlite_store(tmp_path: Path) -> None:
    """sqlite:/// opens an SQLiteFeedbackStore, which is a DatabaseFeedbackStore."""
    store = await DatabaseFeedbackStore.open(f"sqlite:///{tmp_path / 'f.db'}")
    async with store:
        assert isinstance(store, SQLiteFeedbackStore)
        assert isinstance(store, DatabaseFeedbackStore)
        assert isinstance(store, FeedbackStoreProtocol)


@pytest.mark.postgres
async def test_a_postgresql_url_opens_the_postgres_store() -> None:
    """postgresql:// opens a PostgresFeedbackStore, with options passed through."""
    async with fresh_schema() as schema:
        store = await DatabaseFeedbackStore.open(POSTGRES_URL, schema=schema, max_size=2)
        async with store:
            assert isinstance(store, PostgresFeedbackStore)
            assert isinstance(store, DatabaseFeedbackStore)
            assert store.schema == schema


@pytest.mark.parametrize("url", ["mysql://x", "feedback.db", 42])
async def test_other_urls_are_refused(url: object) -> None:
    """Anything but sqlite:/// and postgresql:// is a validation error naming 'url'."""
    with pytest.raises(FeedbackValidationError) as info:
        await DatabaseFeedbackStore.open(url)  # type: ignore[arg-type]
    assert info.value.field == "url"


async def test_a_bound_store_is_the_one_the_collector_writes_to(tmp_path: Path) -> None:
    """A store bound to FeedbackStoreProtocol before boot receives the feedback; it stays open."""
    store = await DatabaseFeedbackStore.open(f"sqlite:///{tmp_path / 'f.db'}")
    app = Application()
    app.container.bind(FeedbackStoreProtocol, store)
    app.add_module(FeedbackModule.configure())
    async with app:
        feedback = await app.container.resolve(FeedbackProtocol)
        await feedback.submit_feedback("t-1", 5)
        view = await app.container.resolve(FeedbackStoreProtocol)
        assert (await view.aggregate()).total_count == 1  # read-your-writes over the bound store
    assert (await store.aggregate()).total_count == 1  # still open: its owner closes it
    assert Path(f"{tmp_path / 'f.db'}-spool").exists()
    await store.aclose()
