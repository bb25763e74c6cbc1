"""Which spool the configuration and the store select."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_feedback import (
    FeedbackConfig,
    FeedbackConfigurationError,
    FeedbackValidationError,
    MemoryFeedbackStore,
)
from ai_feedback.spool import default_spool_path, open_spool
from ai_feedback.spool.jetstream import JetStreamSpool, parse_nats_url
from ai_feedback.spool.memory import MemorySpool
from ai_feedback.spool.sqlite import SQLiteSpool
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.fakes import WrappedStore


async def test_a_durable_store_gets_a_spool_file_next_to_it(tmp_path: Path) -> None:
    """An SQLite store's spool is <database>-spool; ack queued keeps items in memory."""
    async with await SQLiteFeedbackStore.open(f"sqlite:///{tmp_path / 'f.db'}") as store:
        spool = open_spool(FeedbackConfig(), store)
        assert isinstance(spool, SQLiteSpool)
        assert spool.location == str(tmp_path / "f.db-spool")
        assert isinstance(open_spool(FeedbackConfig(ack="queued"), store), MemorySpool)


async def test_stores_that_keep_nothing_get_the_memory_spool() -> None:
    """The in-memory store and an in-memory SQLite database have nothing durable to ack."""
    assert isinstance(open_spool(FeedbackConfig(), MemoryFeedbackStore()), MemorySpool)
    async with await SQLiteFeedbackStore.open("sqlite:///:memory:") as store:
        assert isinstance(open_spool(FeedbackConfig(), store), MemorySpool)


def test_other_stores_spool_in_the_working_directory() -> None:
    """A store without a file of its own spools to ./ai_feedback-<hash>.spool."""
    spool = open_spool(FeedbackConfig(), WrappedStore())
    assert isinstance(spool, SQLiteSpool)
    assert Path(spool.location).parent == Path.cwd()
    assert default_spool_path("postgresql://h:5432/db") != default_spool_path("postgresql://h/x")


def test_spool_url_chooses_the_file_or_nats(tmp_path: Path) -> None:
    """spool_url: sqlite:///path is that file; nats:// is JetStream with its options."""
    chosen = open_spool(FeedbackConfig(spool_url=f"sqlite:///{tmp_path}/x.spool"), WrappedStore())
    assert chosen.location == f"{tmp_path}/x.spool"
    url = "nats://127.0.0.1:4222?stream=S&subject=s.x&consumer=w&ack_wait=5"
    nats_spool = open_spool(FeedbackConfig(spool_url=url), WrappedStore())
    assert isinstance(nats_spool, JetStreamSpool)
    assert nats_spool.location == "nats://127.0.0.1:4222/S"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://x", "must look like nats://"),
        ("nats://", "must look like nats://"),
        ("nats://h:1?streem=x", "unknown option 'streem'"),
        ("nats://h:1?ack_wait=0", "ack_wait must be 0.5 to 86400"),
        ("nats://h:1?ack_wait=soon", "ack_wait must be 0.5 to 86400"),
        ("nats://h:1?stream=bad.name", "stream must be 1-255 letters, digits, '_' or '-'"),
        ("nats://h:1?consumer=a%20b", "consumer must be 1-255"),
        ("nats://h:1?stream=", "stream must be 1-255"),
        ("nats://h:1?stream=" + "s" * 256, "stream must be 1-255"),
        ("nats://tok3n@h:1?stream=a%01b", "nats://****@h:1"),
    ],
)
def test_bad_nats_urls_are_refused(url: str, needle: str) -> None:
    """A malformed nats:// spool URL names spool_url and the problem."""
    with pytest.raises(FeedbackValidationError) as info:
        parse_nats_url(url)
    assert info.value.field == "spool_url"
    assert needle in str(info.value)
    assert "tok3n" not in str(info.value)


def test_a_missing_nats_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without nats-py, a nats:// spool_url says which extra to install."""
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(FeedbackConfigurationError, match=r"ai-feedback\[nats\]"):
        open_spool(FeedbackConfig(spool_url="nats://127.0.0.1:4222"), WrappedStore())
