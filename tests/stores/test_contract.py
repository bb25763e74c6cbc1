"""The store contract of SPEC §2, run against every backend."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from ai_feedback import (
    FeedbackConflictError,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStoreProtocol,
    FeedbackTooLargeError,
    FeedbackType,
    FeedbackValidationError,
    Ok,
    SupportsDelete,
    SupportsQuery,
    SupportsScan,
    SupportsSeries,
    SupportsStats,
)
from ai_feedback.stores import _common
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.fakes import conflict_ids

NOW = datetime.now(UTC)


def _item(
    kind: FeedbackType = FeedbackType.RATING,
    value: Any = 4,
    *,
    ago: timedelta = timedelta(0),
    **context: Any,
) -> FeedbackItem:
    default_values = {
        FeedbackType.RATING: value,
        FeedbackType.TEXT: "text",
        FeedbackType.CORRECTION: {"original": "a", "corrected": "b"},
        FeedbackType.LABEL: {"label": "l", "input": None},
    }
    return FeedbackItem(
        feedback_type=kind,
        value=default_values[kind] if kind is not FeedbackType.RATING else value,
        context=context,
        created_at=datetime.now(UTC) - ago,
    )


def test_store_implements_the_protocols(store: FeedbackStoreProtocol) -> None:
    """Every built-in store is a FeedbackStoreProtocol and supports filtered stats."""
    assert isinstance(store, FeedbackStoreProtocol)
    assert isinstance(store, SupportsStats)


async def test_save_returns_ok_id_and_is_idempotent(store: FeedbackStoreProtocol) -> None:
    """Saving the same item twice stores it once and returns Ok(id) both times."""
    item = _item(session_id="s")
    assert await store.save(item) == Ok(item.id)
    assert await store.save(item) == Ok(item.id)
    restamped = item.replace(created_at=item.created_at + timedelta(seconds=5))
    assert await store.save(restamped) == Ok(item.id)  # a retry stamped again on arrival
    assert await store.save_many([item, item]) == Ok([item.id, item.id])  # type: ignore[attr-defined]
    [stored] = await store.find_by_session("s")
    assert stored == item
    summary = await store.aggregate()
    assert summary.total_count == 1


@pytest.mark.parametrize(
    "change",
    [
        {"value": 1},
        {"context": {"session_id": "s", "model": "other"}},
        {"metadata": {"source": "elsewhere"}},
    ],
)
async def test_a_different_item_under_a_known_id_is_a_conflict(
    store: FeedbackStoreProtocol, change: dict[str, Any]
) -> None:
    """Save and save_many refuse another item under a stored id; nothing of the batch lands."""
    item = _item(session_id="s")
    await store.save(item)
    changed = item.replace(**change)
    result = await store.save(changed)
    assert result.is_err()
    error = result.unwrap_err()
    assert isinstance(error, FeedbackConflictError)
    assert error.ids == (item.id,)
    fresh = _item(session_id="s")
    batch_result = await store.save_many([fresh, changed])  # type: ignore[attr-defined]
    assert isinstance(batch_result.unwrap_err(), FeedbackConflictError)
    assert [i.id for i in await store.find_by_session("s")] == [item.id]
    assert (await store.get(item.id)) == item  # type: ignore[attr-defined]


async def test_two_items_under_one_id_in_a_batch_conflict(store: FeedbackStoreProtocol) -> None:
    """A batch holding two different items under one id is refused whole."""
    first = _item(session_id="s")
    second = first.replace(value=2)
    result = await store.save_many([first, second])  # type: ignore[attr-defined]
    assert conflict_ids(result) == (first.id,)
    assert await store.find_by_session("s") == []


async def test_values_come_back_exactly(store: FeedbackStoreProtocol) -> None:
    """Floats stay floats (1e16, -0.0), ints stay ints, and extreme timestamps stay aware."""
    numbers = [1e16, -5.033873119180533e16, -0.0, 1.0, 1, 2**63 - 1, -(2**63), 0.1]
    items = [
        _item(session_id="s", n=numbers).replace(metadata={"n": numbers}),
        FeedbackItem(
            feedback_type=FeedbackType.RATING,
            value=-0.0,
            context={"session_id": "s"},
            created_at=datetime(1, 1, 2, tzinfo=UTC),
        ),
        FeedbackItem(
            feedback_type=FeedbackType.RATING,
            value=1e15,
            context={"session_id": "s"},
            created_at=datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
        ),
    ]
    for item in items:
        assert (await store.save(item)).is_ok()
    for item in items:
        back = await store.get(item.id)  # type: ignore[attr-defined]
        assert back is not None
        assert repr(back.value) == repr(item.value)
        assert repr(back.context) == repr(item.context)
        assert repr(back.metadata) == repr(item.metadata)
        assert back.created_at == item.created_at
        assert back.created_at.tzinfo is not None
    zero = await store.get(items[1].id)  # type: ignore[attr-defined]
    assert math.copysign(1, zero.value) == -1.0


async def test_huge_limits_are_accepted(store: FeedbackStoreProtocol) -> None:
    """A limit beyond 64 bits reads everything instead of failing in the database."""
    await store.save(_item())
    assert len(await store.find_by_type(FeedbackType.RATING, limit=2**63)) == 1
    assert len(await store.find_by_type(FeedbackType.RATING, limit=10**30)) == 1


async def test_find_by_session_newest_first(store: FeedbackStoreProtocol) -> None:
    """find_by_session returns only that session, newest first, even if saved out of order."""
    old = _item(ago=timedelta(minutes=5), session_id="s")
    new = _item(session_id="s")
    mid = _item(ago=timedelta(minutes=1), session_id="s")
    other = _item(session_id="other")
    for item in (new, old, other, mid):
        await store.save(item)
    assert [i.id for i in await store.find_by_session("s")] == [new.id, mid.id, old.id]
    assert await store.find_by_session("missing") == []


async def test_find_by_type_newest_first_with_limit(store: FeedbackStoreProtocol) -> None:
    """find_by_type filters by type, orders newest first and honours limit."""
    ratings = [_item(ago=timedelta(seconds=30 - i)) for i in range(5)]
    for item in ratings:
        await store.save(item)
    await store.save(_item(FeedbackType.TEXT))
    found = await store.find_by_type(FeedbackType.RATING, limit=3)
    assert [i.id for i in found] == [i.id for i in ratings[::-1][:3]]
    everything = await store.find_by_type(FeedbackType.RATING)
    assert len(everything) == 5
    assert [i.feedback_type for i in await store.find_by_type(FeedbackType.TEXT)] == [
        FeedbackType.TEXT
    ]
    assert await store.find_by_type(FeedbackType.LABEL) == []
    by_value = await store.find_by_type("rating", limit=1)  # type: ignore[arg-type]
    assert by_value[0].id == ratings[-1].id


async def test_aggregate_counts_only_the_window(store: FeedbackStoreProtocol) -> None:
    """The aggregate counts items created inside the window and averages their ratings."""
    await store.save(_item(value=5))
    await store.save(_item(value=3, ago=timedelta(hours=23)))
    await store.save(_item(FeedbackType.TEXT, ago=timedelta(hours=2)))
    await store.save(_item(value=1, ago=timedelta(hours=25)))
    await store.save(_item(FeedbackType.LABEL, ago=timedelta(days=3)))
    day = await store.aggregate(window_hours=24)
    assert day.total_count == 3
    assert day.average_rating == 4.0
    assert day.count_by_type == {"rating": 2, "text": 1, "correction": 0, "label": 0}
    week = await store.aggregate(window_hours=24 * 7)
    assert week.total_count == 5
    assert week.average_rating == 3.0
    hour = await store.aggregate(window_hours=1)
    assert hour.total_count == 1


async def test_aggregate_of_empty_store(store: FeedbackStoreProtocol) -> None:
    """An empty store aggregates to zero counts for every type and no average."""
    summary = await store.aggregate()
    assert summary.total_count == 0
    assert summary.average_rating is None
    assert summary.count_by_type == {"rating": 0, "text": 0, "correction": 0, "label": 0}


async def test_stats_filter_by_model_and_provider(store: FeedbackStoreProtocol) -> None:
    """stats() filters in the store by model, provider or both."""
    assert isinstance(store, SupportsStats)
    await store.save(_item(value=5, model="a", provider="x"))
    await store.save(_item(value=1, model="a", provider="y"))
    await store.save(_item(value=3, model="b", provider="x"))
    await store.save(_item(FeedbackType.TEXT, model="b"))
    await store.save(_item(value=2, ago=timedelta(hours=30), model="a", provider="x"))
    assert (await store.stats(model="a")).summary.total_count == 2
    assert (await store.stats(model="a")).summary.average_rating == 3.0
    assert (await store.stats(provider="x")).summary.average_rating == 4.0
    assert (await store.stats(model="a", provider="x")).summary.total_count == 1
    stats = await store.stats()
    assert stats.by_model == {
        "a": {"count": 2, "average_rating": 3.0},
        "b": {"count": 2, "average_rating": 3.0},
    }
    assert stats.rating_count == 3
    assert (stats.rating_min, stats.rating_max) == (1, 5)
    assert (await store.stats(model="nobody")).summary.total_count == 0
    assert (await store.stats(window_hours=48, model="a")).summary.total_count == 3


async def test_distribution_is_omitted_for_continuous_ratings(store: FeedbackStoreProtocol) -> None:
    """More than 50 distinct rating values give percentiles but no distribution."""
    assert isinstance(store, SupportsStats)
    for i in range(60):
        await store.save(_item(value=i / 100))
    stats = await store.stats()
    assert stats.rating_distribution is None
    assert stats.rating_percentiles == {"p50": 0.29, "p90": 0.53, "p99": 0.59}


async def test_mutating_inputs_and_outputs_never_changes_the_store(
    store: FeedbackStoreProtocol,
) -> None:
    """Changing the caller's dicts, or an item handed back, leaves what is stored intact."""
    context: dict[str, Any] = {"session_id": "s", "tags": ["a"]}
    item = FeedbackItem(
        feedback_type=FeedbackType.LABEL,
        value={"label": "l", "input": {"x": [1]}},
        context=context,
        metadata={"m": {"deep": 1}},
    )
    await store.save(item)
    item.context["tags"].append("mutated-after-save")
    item.metadata["m"]["deep"] = 2
    item.value["input"]["x"].append(2)
    [returned] = await store.find_by_session("s")
    returned.context["tags"].append("mutated-output")
    returned.metadata.clear()
    [again] = await store.find_by_type(FeedbackType.LABEL)
    assert again.context == {"session_id": "s", "tags": ["a"]}
    assert again.metadata == {"m": {"deep": 1}}
    assert again.value == {"label": "l", "input": {"x": [1]}}


async def test_concurrent_saves_of_one_id_store_it_once(store: FeedbackStoreProtocol) -> None:
    """Many concurrent saves of the same item leave exactly one copy."""
    item = _item(session_id="s")
    results = await asyncio.gather(*(store.save(item) for _ in range(20)))
    assert all(r == Ok(item.id) for r in results)
    assert len(await store.find_by_session("s")) == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.save({"feedback_type": "rating"}), "feedback"),
        (lambda s: s.find_by_session(""), "session_id"),
        (lambda s: s.find_by_session(None), "session_id"),
        (lambda s: s.find_by_type("vote"), "feedback_type"),
        (lambda s: s.find_by_type(FeedbackType.TEXT, limit=0), "limit"),
        (lambda s: s.find_by_type(FeedbackType.TEXT, limit=True), "limit"),
        (lambda s: s.find_by_type(FeedbackType.TEXT, limit="5"), "limit"),
        (lambda s: s.aggregate(window_hours=0), "window_hours"),
        (lambda s: s.aggregate(window_hours=-1), "window_hours"),
        (lambda s: s.aggregate(window_hours=float("nan")), "window_hours"),
        (lambda s: s.aggregate(window_hours="24"), "window_hours"),
        (lambda s: s.aggregate(window_hours=float("inf")), "window_hours"),
        (lambda s: s.aggregate(window_hours=1e9), "window_hours"),
        (lambda s: s.aggregate(window_hours=10**400), "window_hours"),
        (lambda s: s.stats(window_hours=1e9), "window_hours"),
        (lambda s: s.stats(model=""), "model"),
    ],
)
async def test_bad_store_calls_raise_validation_errors(
    store: FeedbackStoreProtocol, call: Any, field: str
) -> None:
    """Invalid arguments raise FeedbackValidationError naming the argument."""
    with pytest.raises(FeedbackValidationError) as info:
        await call(store)
    assert info.value.field == field


async def test_save_enforces_size_limits(store: FeedbackStoreProtocol) -> None:
    """An item over the store's limits is refused and nothing is stored."""
    item = FeedbackItem(
        feedback_type=FeedbackType.TEXT, value="x" * 10_001, context={"session_id": "s"}
    )
    with pytest.raises(FeedbackTooLargeError):
        await store.save(item)
    assert await store.find_by_session("s") == []


async def test_ties_on_created_at_are_ordered_by_id(store: FeedbackStoreProtocol) -> None:
    """Items created at the same instant come back newest-first by id on every store."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    ids = ["b-item", "d-item", "a-item", "c-item"]
    items = [
        FeedbackItem(
            feedback_type=FeedbackType.RATING,
            value=1,
            id=item_id,
            context={"session_id": "tie"},
            created_at=at,
        )
        for item_id in ids
    ]
    await store.save(items[0])
    await store.save(items[1])
    save_many = getattr(store, "save_many", None)
    assert save_many is not None
    await save_many(items[2:])
    expected = sorted(ids, reverse=True)
    assert [i.id for i in await store.find_by_session("tie")] == expected
    assert [i.id for i in await store.find_by_type(FeedbackType.RATING, limit=3)] == expected[:3]


async def test_query_filters_and_pages_newest_first(store: FeedbackStoreProtocol) -> None:
    """query() applies every filter and pages with a (created_at, id) cursor, newest first."""
    assert isinstance(store, SupportsQuery)
    base = datetime.now(UTC) - timedelta(hours=1)
    items = []
    for i in range(30):
        context = {
            "session_id": f"s{i % 3}",
            "model": f"m{i % 2}",
            "provider": "p",
            "trace_id": f"t{i % 5}",
            "owner_id": "a" if i % 4 else "b",
        }
        kind = FeedbackType.RATING if i % 3 else FeedbackType.TEXT
        value = i % 5 + 1 if kind is FeedbackType.RATING else f"text {i}"
        created = base + timedelta(seconds=i // 2)  # pairs share a timestamp: ties by id
        items.append(FeedbackItem(kind, value, context=context, created_at=created))
    await store.save_many(items)  # type: ignore[attr-defined]
    newest_first = sorted(items, key=lambda i: (i.created_at, i.id), reverse=True)

    pages: list[FeedbackItem] = []
    before = None
    while True:
        page = await store.query(limit=7, before=before)
        pages += page
        if len(page) < 7:
            break
        before = (page[-1].created_at, page[-1].id)
    assert [i.id for i in pages] == [i.id for i in newest_first]

    filters = [
        FeedbackFilter(feedback_type=FeedbackType.TEXT),
        FeedbackFilter(model="m1", session_id="s2"),
        FeedbackFilter(trace_id="t3", owner_id="a"),
        FeedbackFilter(owner_id="b", feedback_type="rating"),  # type: ignore[arg-type]
        FeedbackFilter(provider="p", since=base + timedelta(seconds=5)),
        FeedbackFilter(until=base + timedelta(seconds=4), model="m0"),
        FeedbackFilter(owner_id="nobody"),
    ]
    for where in filters:
        expected = [i.id for i in newest_first if where.matches(i)]
        assert [i.id for i in await store.query(where, limit=1000)] == expected, where
        first = await store.query(where, limit=2)
        if len(first) == 2:
            rest = await store.query(where, limit=1000, before=(first[1].created_at, first[1].id))
            assert [i.id for i in first + rest] == expected


async def test_statistics_per_owner(store: FeedbackStoreProtocol) -> None:
    """Aggregate and stats count only the owner's items when owner_id is given."""
    assert isinstance(store, SupportsStats)
    for owner, values in (("a", [5, 4]), ("b", [1])):
        for value in values:
            await store.save(_item(value=value, owner_id=owner, model="m"))
    await store.save(_item(FeedbackType.TEXT, owner_id="a", model="m"))
    await store.save(_item(value=3))
    a = await store.stats(owner_id="a")
    assert (a.summary.total_count, a.summary.average_rating) == (3, 4.5)
    assert a.summary.count_by_type["text"] == 1
    assert a.by_model == {"m": {"count": 3, "average_rating": 4.5}}
    b = await store.aggregate(owner_id="b", model="m")  # type: ignore[call-arg]
    assert (b.total_count, b.average_rating) == (1, 1.0)
    assert (await store.stats(owner_id="c")).summary.total_count == 0
    everyone = await store.stats()
    assert everyone.summary.total_count == 5


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.query(limit=0), "limit"),
        (lambda s: anext(s.scan(page_size=0)), "page_size"),
        (lambda s: s.query({"model": "m"}), "where"),
        (lambda s: s.query(before=("yesterday", "id")), "before"),
        (lambda s: s.query(before=(NOW, "")), "before"),
        (lambda s: s.stats(owner_id=""), "owner_id"),
        (lambda s: s.query(FeedbackFilter(owner_id="")), "owner_id"),
    ],
)
async def test_bad_queries_name_the_argument(
    store: FeedbackStoreProtocol, call: Any, field: str
) -> None:
    """Invalid query arguments raise FeedbackValidationError naming the argument."""
    with pytest.raises(FeedbackValidationError) as info:
        await call(store)
    assert info.value.field == field


async def test_booleans_are_not_numbers_when_comparing_items(store: FeedbackStoreProtocol) -> None:
    """Under one id, {"flag": 1} and {"flag": true} conflict; 1 and 1.0 are the same value."""
    item = _item(session_id="s").replace(metadata={"flag": 1, "n": 2})
    await store.save(item)
    assert (await store.save(item.replace(metadata={"flag": 1.0, "n": 2.0}))).is_ok()
    assert conflict_ids(await store.save(item.replace(metadata={"flag": True, "n": 2}))) == (
        item.id,
    )
    batch = await store.save_many([item.replace(metadata={"flag": True, "n": 2})])  # type: ignore[attr-defined]
    assert conflict_ids(batch) == (item.id,)


def _population() -> list[FeedbackItem]:
    base = datetime.now(UTC) - timedelta(hours=2)
    items = []
    for i in range(24):
        context = {
            "session_id": f"s{i % 3}",
            "trace_id": f"t{i % 4}",
            "owner_id": f"o{i % 2}",
            "model": "m",
        }
        created = base + timedelta(seconds=i // 2)
        items.append(
            FeedbackItem(FeedbackType.RATING, i % 5 + 1, context=context, created_at=created)
        )
    return items


async def test_scan_streams_every_match_newest_first(store: FeedbackStoreProtocol) -> None:
    """scan() yields exactly what query() would, across many small pages, newest first."""
    assert isinstance(store, SupportsScan)
    items = _population()
    await store.save_many(items)  # type: ignore[attr-defined]
    newest_first = [i.id for i in sorted(items, key=lambda i: (i.created_at, i.id), reverse=True)]
    assert [i.id async for i in store.scan(page_size=5)] == newest_first
    assert [i.id async for i in store.scan(page_size=24)] == newest_first  # a full last page
    where = FeedbackFilter(session_id="s1", owner_id="o1")
    expected = [i for i in newest_first if where.matches(next(x for x in items if x.id == i))]
    assert [i.id async for i in store.scan(where, page_size=2)] == expected
    assert [i async for i in store.scan(FeedbackFilter(owner_id="nobody"))] == []
    with pytest.raises(FeedbackValidationError) as info:
        [i async for i in store.scan(page_size=0)]
    assert info.value.field == "page_size"


async def _reads(store: Any, item: FeedbackItem) -> dict[str, Any]:
    """What every read path says about ``item`` and its session, trace and owner."""
    stats = await store.stats(owner_id=item.owner_id)
    return {
        "get": await store.get(item.id),
        "raw": await store.get_raw_payload(item.id),
        "session": [i.id for i in await store.find_by_session(item.session_id)],
        "type": [i.id for i in await store.find_by_type(item.feedback_type, limit=1000)],
        "query": [i.id for i in await store.query(FeedbackFilter(trace_id=item.trace_id))],
        "scan": [i.id async for i in store.scan(FeedbackFilter(owner_id=item.owner_id))],
        "aggregate": (await store.aggregate(window_hours=24)).total_count,
        "stats": stats.summary.total_count,
    }


@pytest.mark.parametrize("key", ["item_id", "trace_id", "session_id", "owner_id"])
async def test_deleted_items_are_gone_from_every_read(
    store: FeedbackStoreProtocol, key: str
) -> None:
    """After delete(), no read path returns the items, including reads cached before it."""
    assert isinstance(store, SupportsDelete)
    items = _population()
    payloads = {i.id: {"received": i.id} for i in items}
    await store.save_many(items, raw_payloads=payloads)  # type: ignore[attr-defined]
    target = items[5]
    value = target.id if key == "item_id" else target.context[key]
    where = FeedbackFilter(**{key: value})  # type: ignore[arg-type]
    doomed = {i.id for i in items if where.matches(i)}
    before = await _reads(store, target)  # warms a cache, if there is one
    assert before["get"] == target
    assert before["raw"] == {"received": target.id}

    removed = await store.delete(where)

    assert (removed.items, removed.raw_payloads) == (len(doomed), len(doomed))
    rows = {  # the rollup's rows: an hour, the indexed keys, the type and the rating
        (
            i.created_at.replace(minute=0, second=0, microsecond=0),
            i.model,
            i.provider,
            i.owner_id,
            i.feedback_type,
            i.value if i.feedback_type is FeedbackType.RATING else None,
        )
        for i in items
        if i.id in doomed
    }
    has_rollup = isinstance(store, SQLiteFeedbackStore | PostgresFeedbackStore)
    assert removed.rollup_rows == (len(rows) if has_rollup else 0)
    after = await _reads(store, target)
    assert after["get"] is None
    assert after["raw"] is None
    for path in ("session", "type", "query", "scan"):
        assert not doomed & set(after[path]), path
        assert set(before[path]) - doomed == set(after[path]), path
    assert after["aggregate"] == len(items) - len(doomed)
    assert after["stats"] == before["stats"] - len(
        doomed & {i.id for i in items if i.owner_id == target.owner_id}
    )
    assert (await store.delete(where)).items == 0  # deleting again finds nothing
    survivors = [i.id async for i in store.scan()]  # type: ignore[attr-defined]
    assert sorted(survivors) == sorted({i.id for i in items} - doomed)


async def test_delete_with_a_limit_removes_the_oldest_first(store: FeedbackStoreProtocol) -> None:
    """delete(where, limit=n) removes at most n matches, oldest first (retention batches)."""
    assert isinstance(store, SupportsDelete)
    items = _population()
    await store.save_many(items)  # type: ignore[attr-defined]
    oldest_first = sorted(items, key=lambda i: (i.created_at, i.id))
    cutoff = oldest_first[9].created_at + timedelta(microseconds=1)
    where = FeedbackFilter(until=cutoff)
    assert (await store.delete(where, limit=4)).items == 4
    left = {i.id async for i in store.scan()}  # type: ignore[attr-defined]
    assert left == {i.id for i in oldest_first[4:]}
    assert (await store.delete(where, limit=100)).items == 6
    assert (await store.delete(where, limit=100)).items == 0
    left = {i.id async for i in store.scan()}  # type: ignore[attr-defined]
    assert left == {i.id for i in oldest_first[10:]}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.delete(FeedbackFilter()), "where"),
        (lambda s: s.delete({"session_id": "s"}), "where"),
        (lambda s: s.delete(None), "where"),
        (lambda s: s.delete(FeedbackFilter(session_id="s"), limit=0), "limit"),
        (lambda s: s.delete(FeedbackFilter(item_id="")), "item_id"),
    ],
)
async def test_bad_deletions_name_the_argument_and_remove_nothing(
    store: FeedbackStoreProtocol, call: Any, field: str
) -> None:
    """An empty or invalid filter is refused (it would mean "everything") and removes nothing."""
    await store.save(_item(session_id="s"))
    with pytest.raises(FeedbackValidationError) as info:
        await call(store)
    assert info.value.field == field
    assert len(await store.find_by_session("s")) == 1


def _series_population() -> list[FeedbackItem]:
    """Items over three days for two owners, two models and two providers, all types."""
    rng = random.Random(7)  # noqa: S311 - test data
    kinds = list(FeedbackType)
    items = []
    for n in range(400):
        kind = kinds[n % 4] if n % 3 else FeedbackType.RATING
        context = {"owner_id": rng.choice(["a", "b"]), "model": rng.choice(["m1", "m2"])}
        if rng.random() < 0.7:
            context["provider"] = rng.choice(["p1", "p2"])
        items.append(
            _item(
                kind, rng.choice([1, 2, 3.5, 5]), ago=timedelta(hours=rng.uniform(0, 72)), **context
            )
        )
    return items


def _raw_series(
    items: list[FeedbackItem], since: datetime, bucket: str, **where: str
) -> list[tuple[datetime, int, int, float]]:
    """The series computed item by item: (start, count, rating count, rating sum)."""
    sums: dict[datetime, list[Any]] = {}
    where = dict(where)
    kind = where.pop("feedback_type", None)
    for item in items:
        if item.created_at < since or any(item.context.get(k) != v for k, v in where.items()):
            continue
        if kind is not None and item.feedback_type.value != kind:
            continue
        start = item.created_at.replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            start = start.replace(hour=0)
        acc = sums.setdefault(start, [0, 0, 0.0])
        acc[0] += 1
        if item.feedback_type is FeedbackType.RATING:
            acc[1] += 1
            acc[2] += item.value
    return [(start, *acc) for start, acc in sorted(sums.items())]


@pytest.mark.parametrize("bucket", ["hour", "day"])
@pytest.mark.parametrize(
    "where",
    [
        {},
        {"owner_id": "a"},
        {"owner_id": "b", "model": "m1"},
        {"provider": "p2"},
        {"feedback_type": "text"},
        {"owner_id": "a", "feedback_type": "rating", "model": "m2"},
    ],
)
async def test_series_equals_the_raw_computation(
    store: FeedbackStoreProtocol, bucket: str, where: dict[str, str]
) -> None:
    """Each bucket's counts and rating sum equal the items' own, and add up to the stats."""
    assert isinstance(store, SupportsSeries)
    assert isinstance(store, SupportsStats)
    items = _series_population()
    await store.save_many(items)  # type: ignore[attr-defined]
    window = 50.5
    since = datetime.now(UTC) - timedelta(hours=window)
    points = await store.series(window_hours=window, bucket=bucket, **where)  # type: ignore[arg-type]
    expected = _raw_series(items, since, bucket, **where)
    # Items are spread over 72 hours, so none falls in the milliseconds between the two
    # window starts (this test's and the store's).
    assert [(p.start, p.count, p.rating_count) for p in points] == [e[:3] for e in expected]
    for point, (_, _, rated, total) in zip(points, expected, strict=True):
        assert point.rating_sum == pytest.approx(total)
        assert point.average_rating == (pytest.approx(total / rated) if rated else None)
    assert all(p.start.tzinfo is not None and p.count > 0 for p in points)
    stats = await store.stats(window_hours=window, **where)
    assert sum(p.count for p in points) == stats.summary.total_count
    assert sum(p.rating_count for p in points) == stats.rating_count
    summary = await cast("Any", store).aggregate(window_hours=window, **where)
    assert summary == stats.summary
    if "feedback_type" in where:  # only that type counts, in the model breakdown too
        others = {
            k: n for k, n in stats.summary.count_by_type.items() if k != where["feedback_type"]
        }
        assert set(others.values()) == {0}
        assert sum(row["count"] for row in stats.by_model.values()) == stats.summary.total_count


async def test_series_of_an_empty_window_and_bad_arguments(store: FeedbackStoreProtocol) -> None:
    """An empty window has no points; a bad bucket or window names the argument."""
    assert isinstance(store, SupportsSeries)
    assert await store.series(window_hours=1) == []
    with pytest.raises(FeedbackValidationError) as info:
        await store.series(bucket="week")  # type: ignore[arg-type]
    assert info.value.field == "bucket"
    with pytest.raises(FeedbackValidationError) as info:
        await store.series(window_hours=0)
    assert info.value.field == "window_hours"
    for name in ("series", "stats", "aggregate"):
        call = getattr(store, name)
        with pytest.raises(FeedbackValidationError) as info:
            await call(feedback_type="thumbs")
        assert info.value.field == "feedback_type"


async def test_items_dated_in_the_future_count_in_every_window(
    store: FeedbackStoreProtocol,
) -> None:
    """A window is everything from now - window_hours on: a future item counts in each."""
    assert isinstance(store, SupportsStats)
    ahead = _item(value=5, ago=-timedelta(days=400), model="m")
    for item in (ahead, _item(value=1, ago=timedelta(hours=2), model="m")):
        await store.save(item)
    assert (await store.aggregate(window_hours=1)).total_count == 1
    assert (await store.aggregate(window_hours=3)).total_count == 2
    assert (await store.stats(window_hours=1, model="m")).summary.average_rating == 5


class _FixedClock(datetime):
    """datetime whose now() is a fixed moment, for the stores' window start."""

    moment = datetime(2026, 3, 1, 12, 27, 34, 615_998, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return cls.moment


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Every store's window ends at the same fixed moment."""
    monkeypatch.setattr(_common, "datetime", _FixedClock)
    return _FixedClock.moment


async def test_every_store_counts_an_item_at_the_window_start_and_not_before(
    store: Any, fixed_clock: datetime
) -> None:
    """Every store counts an item created at the window's start, none created before it.

    The start is now minus the window, rounded to the microsecond, whatever fraction of an
    hour the window is.
    """
    at_start = fixed_clock - timedelta(seconds=3.6)
    before = fixed_clock - timedelta(hours=1, microseconds=1)
    await store.save_many(
        [
            FeedbackItem(FeedbackType.RATING, 5, context={"model": "a"}, created_at=at_start),
            FeedbackItem(FeedbackType.RATING, 5, context={"model": "b"}, created_at=before),
        ]
    )
    micro = 1 / 3.6e9  # one microsecond, in hours
    assert (await store.aggregate(window_hours=0.001, model="a")).total_count == 1
    assert (await store.aggregate(window_hours=0.001 - micro, model="a")).total_count == 0
    # The start is rounded to the microsecond: 0.4 µs more is the same start, 0.6 µs more
    # is one microsecond earlier.
    assert (await store.aggregate(window_hours=1 + 0.4 * micro, model="b")).total_count == 0
    assert (await store.stats(window_hours=1 + 0.6 * micro, model="b")).summary.total_count == 1


async def test_a_large_rating_outside_the_window_does_not_change_its_average(
    store: Any, fixed_clock: datetime
) -> None:
    """Items before the window's start in its first hour cancel out exactly.

    No float rounding of a huge rating reaches the small ones inside the window.
    """
    start_hour = fixed_clock.replace(minute=0, second=0, microsecond=0)
    outside = FeedbackItem(
        FeedbackType.RATING,
        1e15,
        context={"model": "m"},
        created_at=start_hour + timedelta(minutes=5),
    )
    inside = FeedbackItem(
        FeedbackType.RATING,
        3.7,
        context={"model": "m"},
        created_at=start_hour + timedelta(minutes=15),
    )
    await store.save_many([outside, inside])
    window = (fixed_clock - (start_hour + timedelta(minutes=10))).total_seconds() / 3600
    summary = await store.aggregate(window_hours=window)
    assert (summary.total_count, summary.average_rating) == (1, 3.7)
    stats = await store.stats(window_hours=window)
    assert stats.summary.average_rating == 3.7
    assert stats.by_model["m"]["average_rating"] == 3.7
    if hasattr(store, "series"):
        [point] = [p for p in await store.series(window_hours=window) if p.count]
        assert (point.rating_count, point.rating_sum) == (1, 3.7)
