from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import pytest

from clicktochat.clicks import (
    PRUNE_EVERY,
    ClickEvent,
    ClickRecorder,
    ClickRow,
    analyse,
    analysis,
    describe,
    referrer_host,
)
from clicktochat.clickstore import CLICK_COLUMNS, NO_ZONES, Zones
from clicktochat.sharedstore import SharedStore
from clicktochat.store import Store
from clicktochat.visitors import DAY, Salts
from conftest import ANDROID, DESKTOP, IPHONE, WHATSAPP_PREVIEW


def event(query: bytes = b"", referer: str = "", ua: str = IPHONE, key: str = "vetrina") -> ClickEvent:
    return ClickEvent(1700000000, "short", key, "whatsapp", 3, "summer", "flyer", query, referer, ua)


def row_of(click: ClickEvent, businesses: dict[int, tuple[int, str]] | None = None) -> dict[str, Any]:
    return describe(click, 1, Zones(businesses or {}, {}))._asdict()


def test_a_click_row_is_a_row_of_the_clicks_table() -> None:
    assert ClickRow._fields == CLICK_COLUMNS


def test_a_click_row_keeps_campaign_utm_ad_ids_and_device_but_not_the_url() -> None:
    row = row_of(event(
        b"utm_source=ig&utm_medium=social&utm_campaign=summer&utm_content=reel&utm_term=cake&fbclid=XYZ",
        "https://www.instagram.com/p/secret-post?user=me",
    )._replace(visitor="0123456789abcdef"), {3: (7, "Europe/Rome")})  # fmt: skip
    assert row == {
        "at": 1700000000, "link_kind": "short", "link_key": "vetrina", "channel": "whatsapp", "agent_id": 3,
        "campaign": "summer", "source": "flyer", "utm_source": "ig", "utm_medium": "social",
        "utm_campaign": "summer", "utm_content": "reel", "utm_term": "cake", "ad_click": "fbclid",
        "referrer_host": "www.instagram.com", "device_class": "mobile", "os_family": "iOS",
        "browser_family": "Mobile Safari", "page_path": None, "robot": None, "via": None, "business_id": 7,
        "day": "2023-11-14", "visitor": "0123456789abcdef", "n": 1, "uniques": 0,
    }  # fmt: skip


def test_which_ad_click_id_came_is_kept_never_its_value() -> None:
    row = row_of(event(b"gclid=G1&ctwa_clid=ARAkLkA&fbclid=F1"))
    assert row["ad_click"] == "ctwa_clid"  # a Click-to-WhatsApp ad, whatever else the link carried
    assert "ARAkLkA" not in repr(row)
    assert row_of(event(b"gclid=G1"))["ad_click"] == "gclid"
    assert row_of(event(b"utm_source=x"))["ad_click"] is None


def test_a_click_counts_in_the_day_of_its_business_time_zone() -> None:
    # 2026-11-24 11:30 UTC is already 00:30 on the 25th in Auckland (UTC+13 in November).
    click = event()._replace(at=1795519800)
    assert row_of(click, {3: (1, "Pacific/Auckland")})["day"] == "2026-11-25"
    assert row_of(click, {3: (1, "America/Los_Angeles")})["day"] == "2026-11-24"
    assert row_of(click)["day"] == "2026-11-24"  # no business: UTC
    assert row_of(click._replace(at=1795519800 - 1801), {3: (1, "Pacific/Auckland")})["day"] == "2026-11-24"


def test_robots_and_link_checkers_are_named() -> None:
    assert (
        row_of(event(ua="facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"))["robot"]
        == "facebookexternalhit"
    )
    assert row_of(event()._replace(probe=True))["robot"] == "link checker"
    assert row_of(event())["robot"] is None


@pytest.mark.parametrize(
    ("query", "via"),
    [(b"qr", "qr"), (b"utm_source=x&qr", "qr"), (b"qr=1", "qr"), (b"via=qr&u=https%3A%2F%2Fshop.it", "qr"),
     (b"", None), (b"qr=0", None), (b"qrcode=1", None), (b"utm_source=qr", None), (b"u=qr", None)],
)  # fmt: skip
def test_a_scan_is_told_from_a_tap_by_the_codes_marker(query: bytes, via: str | None) -> None:
    assert row_of(event(query))["via"] == via


def test_hostile_query_and_referrer_are_harmless() -> None:
    hostile = event(b"a=1&" * 500 + b"utm_source=" + b"x" * 5000, "http://[::1")
    row = row_of(hostile)
    assert row["utm_source"] is None  # too many fields: ignored, not a crash
    assert row["referrer_host"] is None
    long_utm = row_of(event(b"utm_source=" + b"x" * 5000))
    assert len(long_utm["utm_source"]) == 200
    assert referrer_host("not a url") is None


def test_recorder_writes_batches_and_stop_writes_the_rest(db_path: str) -> None:
    async def scenario() -> tuple[int, int]:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60, batch_size=7)  # the timer never fires here
        await recorder.start()
        for i in range(100):  # distinct clicks (identical ones are merged as they come), 15 batches
            recorder.record(event(key=f"k{i % 3}", query=b"n=%d" % i))
        recorder.record(event(key="k0", query=b"n=0"))  # and one merged with the first
        assert recorder.pending == 101
        await recorder.stop()
        counted = sum([await store.click_count("short", f"k{i}") for i in range(3)])
        pending = recorder.pending
        await store.close()
        return counted, pending

    assert asyncio.run(scenario()) == (101, 0)


def test_a_flush_writes_what_was_pending_when_it_began(db_path: str) -> None:
    """Clicks recorded while a flush writes wait for the next one (a writer chasing them would
    write a few at a time, all second long); what a failed write left stays pending, first."""

    async def scenario() -> None:
        store = await Store.open(db_path)
        shared = SharedStore(db_path) if store.postgres else None  # as the server makes it
        recorder = ClickRecorder(store, flush_interval=60, batch_size=10, shared=shared)
        add_clicks, written, fail = store.add_clicks, [], [False]

        async def add_while_clicked(rows: list[ClickRow], *rest: Any) -> None:
            recorder.record(event(key="later"))  # a click arriving during the write
            if fail[0]:
                raise OSError("the database went away")
            await add_clicks(rows, *rest)
            written.append(sum(row.n for row in rows))

        store.add_clicks = add_while_clicked  # type: ignore[method-assign]
        try:
            for i in range(25):  # distinct (identical clicks are merged as they come: a batch counts rows)
                recorder.record(event(key="first", query=b"n=%d" % i))
            assert await recorder.flush() == 25
            assert written == [10, 10, 5] and recorder.pending == 3
            fail[0] = True
            with pytest.raises(OSError):
                await recorder.flush()
            assert recorder.pending == 4  # the three, kept, and one more
            fail[0] = False
            store.add_clicks = add_clicks  # type: ignore[method-assign]
            assert await recorder.flush() == 4
            assert await store.click_count("short", "first") == 25
            assert await store.click_count("short", "later") == 4
        finally:
            if shared is not None:
                await shared.close()
            await store.close()

    asyncio.run(scenario())


def test_two_flushes_at_once_write_every_click_once(db_path: str) -> None:
    """The loop's flush and another (a test's, stop()'s) may meet: they take turns. At once, the
    second took the first's place in `pending` (its clicks uncounted while in flight) and, on
    PostgreSQL, each wrote the other's decided batch and one failed with an IndexError."""

    async def scenario() -> None:
        store = await Store.open(db_path)
        shared = SharedStore(db_path) if store.postgres else None
        recorder = ClickRecorder(store, flush_interval=60, batch_size=10, shared=shared)
        add_clicks, gate, calls = store.add_clicks, asyncio.Event(), []

        async def add_held(*args: Any) -> None:
            calls.append(len(args[0]))
            if len(calls) == 1:
                await gate.wait()  # the first flush stays in flight until the second has started
            await add_clicks(*args)

        store.add_clicks = add_held  # type: ignore[method-assign]
        try:
            for i in range(25):  # distinct: three batches of rows
                recorder.record(event(key="twice", query=b"n=%d" % i))
            first = asyncio.create_task(recorder.flush())
            while not calls:  # until the first flush is inside its write
                await asyncio.sleep(0)
            for i in range(5):
                recorder.record(event(key="twice", query=b"n=%d" % i))  # merged with the first's, until written
            second = asyncio.create_task(recorder.flush())
            await asyncio.sleep(0)  # the second runs as far as it can
            assert recorder.pending == 30
            gate.set()
            assert await first + await second == 30
            assert recorder.pending == 0
            assert await store.click_count("short", "twice") == 30
        finally:
            if shared is not None:
                await shared.close()
            await store.close()

    asyncio.run(scenario())


def test_clicks_held_in_memory_stay_bounded_while_writes_fail(db_path: str) -> None:
    """The clicks a flush has taken count towards max_pending too: an outage under load must not
    hold max_pending more clicks at each failed flush."""

    async def scenario() -> None:
        store = await Store.open(db_path)
        shared = SharedStore(db_path) if store.postgres else None
        recorder = ClickRecorder(store, flush_interval=60, max_pending=30, shared=shared)

        async def fail(*args: Any) -> None:
            for _ in range(10):  # clicks arriving during the write
                recorder.record(event(key="later"))
            raise OSError("the database went away")

        add_clicks, store.add_clicks = store.add_clicks, fail  # type: ignore[method-assign]
        try:
            for _ in range(25):
                recorder.record(event())
            for attempt in range(3):
                with pytest.raises(OSError):
                    await recorder.flush()
                assert (recorder.pending, recorder.dropped) == (30, 5 + 10 * attempt)
            store.add_clicks = add_clicks  # type: ignore[method-assign]
            assert await recorder.flush() == 30 and recorder.pending == 0
            assert await store.click_count("short", "vetrina") + await store.click_count("short", "later") == 30
        finally:
            if shared is not None:
                await shared.close()
            await store.close()

    asyncio.run(scenario())


def test_the_started_writer_runs_its_step_again_and_again(db_path: str) -> None:
    async def scenario() -> tuple[list[int], int]:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=0.01)
        steps: asyncio.Queue[int] = asyncio.Queue()  # what was pending after each step
        run_once = recorder.run_once

        async def step(now: float | None = None) -> None:
            await run_once(now)
            steps.put_nowait(recorder.pending)

        recorder.run_once = step  # type: ignore[method-assign]
        await recorder.start()
        recorder.record(event())
        # Waits for the loop's steps, however slow the machine; the bound only stops a hang.
        after = [await asyncio.wait_for(steps.get(), timeout=60) for _ in range(2)]
        count = await store.click_count("short", "vetrina")
        await recorder.stop()
        await store.close()
        return after, count

    assert asyncio.run(scenario()) == ([0, 0], 1)


def test_each_step_writes_what_is_pending_and_prunes_once_an_hour(db_path: str) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60, retention_days=400)
        now = 1800000000
        recorder.record(event()._replace(at=now - 500 * DAY))
        await recorder.run_once(now)  # the first step writes it, then prunes it
        assert (await store.clicks("short", "vetrina"), recorder.pending) == ([], 0)
        recorder.record(event()._replace(at=now - 450 * DAY))
        await recorder.run_once(now + PRUNE_EVERY - 1)  # written; the last prune was not an hour ago
        assert len(await store.clicks("short", "vetrina")) == 1
        await recorder.run_once(now + PRUNE_EVERY)
        assert await store.clicks("short", "vetrina") == []
        assert await store.click_count("short", "vetrina") == 2  # the totals stay
        await store.close()

    asyncio.run(scenario())


def test_a_failed_write_keeps_the_clicks_for_the_next_try(db_path: str) -> None:
    async def scenario() -> tuple[int, int]:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60)
        recorder.record(event())
        await store.db.execute("ALTER TABLE click_log RENAME TO clicks_away")  # make the write fail
        try:
            await recorder.flush()
        except Exception:
            pass
        kept = recorder.pending
        await store.db.execute("ALTER TABLE clicks_away RENAME TO click_log")
        await recorder.flush()
        count = await store.click_count("short", "vetrina")
        await store.close()
        return kept, count

    assert asyncio.run(scenario()) == (1, 1)


def test_identical_clicks_in_the_same_second_share_a_row(db_path: str) -> None:
    async def scenario() -> list[dict[str, object]]:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60)
        for _ in range(1000):
            recorder.record(event())  # same second, same everything
        recorder.record(event(query=b"utm_source=ig"))  # differs: a row of its own
        recorder.record(ClickEvent(1700000001, "short", "vetrina", "whatsapp", 3, "summer", "flyer", b"", "", IPHONE))
        await recorder.flush()
        rows = await store.clicks("short", "vetrina")
        assert await store.click_count("short", "vetrina") == 1002
        await store.close()
        return rows

    rows = asyncio.run(scenario())
    assert [(r["at"], r["utm_source"], r["n"]) for r in rows] == [
        (1700000000, None, 1000),
        (1700000000, "ig", 1),
        (1700000001, None, 1),
    ]


def test_email_addresses_in_utm_values_are_not_kept() -> None:
    row = row_of(event(b"utm_source=newsletter&utm_term=ada%40example.com"))
    assert (row["utm_source"], row["utm_term"]) == ("newsletter", None)


def test_memory_is_bounded_when_the_database_keeps_failing(db_path: str) -> None:
    async def scenario() -> tuple[int, int]:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, max_pending=10)
        for _ in range(15):
            recorder.record(event())
        await store.close()
        return recorder.pending, recorder.dropped

    assert asyncio.run(scenario()) == (10, 5)


def test_waiting_clicks_leave_the_garbage_collectors_walks() -> None:
    """A second of clicks under load is tens of thousands of tuples: kept tracked, every pass of
    an older generation walked them all, which made the slowest requests (the p99) slower."""
    recorder = ClickRecorder(Store.__new__(Store))  # never opened: nothing is written here
    for key in ("a", "b", "a"):
        recorder.record(event(key=key, referer="https://shop.example/"))
    gc.collect()
    assert not any(gc.is_tracked(fields) for fields in recorder._pending)
    # and identical clicks are merged as they come, not by the writer's thread (holding the GIL)
    assert len(recorder._pending) == 2 and recorder.pending == 3


BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
RAW_COLUMNS = {  # each of DIMENSIONS as a column of the clicks view (the raw rows, migration 023)
    "source": "source", "referrer": "referrer_host", "device": "device_class", "os": "os_family",
    "browser": "browser_family", "utm_source": "utm_source", "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign", "utm_content": "utm_content", "utm_term": "utm_term", "page": "page_path",
    "ad_click": "ad_click", "robot": "robot", "via": "via",
}  # fmt: skip


async def raw_totals(
    store: Store, dimension: str, first_day: str, last_day: str, group: str, filters: dict[str, Any]
) -> list[tuple[Any, int, int, int]]:
    """What the totals say, from the raw rows: the answer every table of totals must agree with."""
    conditions = ["day BETWEEN ? AND ?"] + [f"coalesce({name}, ?) = ?" for name in filters]
    params: list[Any] = [first_day, last_day]
    for value in filters.values():
        params += ["" if isinstance(value, str) else 0, value]
    value = f"coalesce({RAW_COLUMNS[dimension]}, '')" if dimension else "''"
    key = value if group == "value" else store._grouping(group)
    order = "1" if group in ("day", "week", "month") else "2 DESC, 4 DESC, 1"
    rows = await store._all(
        f"SELECT {key}, coalesce(sum(n) FILTER (WHERE robot IS NULL), 0), sum(uniques), coalesce(sum(n) FILTER"
        f" (WHERE robot IS NOT NULL), 0) FROM clicks WHERE {' AND '.join(conditions)} GROUP BY 1 ORDER BY {order}",
        params,
    )  # fmt: skip
    return [(k, int(c), int(u or 0), int(b)) for k, c, u, b in rows]


async def totals(store: Store, dimension: str = "") -> dict[str, tuple[int, int, int]]:
    rows = await store.dimension_totals(dimension, "2000-01-01", "2100-01-01", "value", None)
    return {value: (clicks, uniques, bots) for value, clicks, uniques, bots in rows}


def test_robots_are_counted_apart_and_never_as_clicks(db_path: str) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60)
        recorder.record(event()._replace(visitor="a"))
        recorder.record(event(ua=BOT))
        recorder.record(event(ua=BOT)._replace(at=1700000001))
        recorder.record(event()._replace(probe=True))
        await recorder.flush()
        assert await store.click_count("short", "vetrina") == 1
        assert await totals(store) == {"": (1, 1, 3)}
        assert await totals(store, "robot") == {"": (1, 1, 0), "Googlebot": (0, 0, 2), "link checker": (0, 0, 1)}
        await store.close()

    asyncio.run(scenario())


def test_a_visitor_clicking_again_within_the_window_is_one_unique(db_path: str) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, Salts(window=1800), flush_interval=60)
        at = 1700000000
        # The window is rounded up to whole generations (uniques.py: up to 1800 + 225 seconds),
        # so ann comes back 2,301 seconds after her last click, not 1,801, to be new again.
        for offset, visitor in [(0, "ann"), (60, "ann"), (1799, "ann"), (0, "bob"), (4100, "ann")]:
            recorder.record(event()._replace(at=at + offset, visitor=visitor))
        await recorder.flush()
        recorder.record(event()._replace(at=at + 4200, visitor="ann"))  # another batch: still remembered
        await recorder.flush()
        assert await totals(store) == {"": (6, 3, 0)}  # ann at 0, bob, ann over half an hour later
        # A restarted writer recalls who clicked in the last window from the raw rows.
        rows = [chunk async for chunk in store.recent_visitors(at + 4200 - 1800, chunk=2)]
        assert rows == [[("ann", at + 4100), ("ann", at + 4200)]]
        again = ClickRecorder(store, Salts(window=1800), flush_interval=60)
        await again.start(loop=False, now=at + 4300)
        again.record(event()._replace(at=at + 4300, visitor="ann"))
        await again.flush()
        assert await totals(store) == {"": (7, 3, 0)}
        await store.close()

    asyncio.run(scenario())


def test_a_click_just_after_midnight_is_matched_under_yesterdays_salt(db_path: str) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        salts = Salts(window=1800)
        recorder = ClickRecorder(store, salts, flush_interval=60)
        midnight = 1700006400  # 2023-11-15 00:00 UTC
        parts = ("203.0.113.9", IPHONE, "short", "vetrina")
        late, _ = salts.hashes(midnight - 60, *parts)
        early, before = salts.hashes(midnight + 60, *parts)
        assert early != late and before == late  # a new salt, and the old one kept for the window
        recorder.record(event()._replace(at=midnight - 60, visitor=late))
        recorder.record(event()._replace(at=midnight + 60, visitor=early, visitor_before=before))
        await recorder.flush()
        assert await totals(store) == {"": (2, 1, 0)}
        await store.close()

    asyncio.run(scenario())


def test_the_daily_totals_always_agree_with_the_raw_rows(db_path: str) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60, batch_size=50)
        for i in range(500):
            ua = BOT if i % 7 == 0 else IPHONE
            recorder.record(
                event(query=f"utm_source=s{i % 4}{'&qr' if i % 3 else ''}".encode(), ua=ua, key=f"k{i % 5}")._replace(
                    at=1700000000 + i * 20000, visitor=f"v{i % 13}"
                )
            )  # fmt: skip  (over four months)
        await recorder.flush()
        raw = await store._one("SELECT sum(n), sum(uniques) FROM clicks")
        clicks, uniques, bots = (await totals(store))[""]
        assert (clicks + bots, uniques) == tuple(raw)
        per_link = await store.link_totals("2000-01-01", "2100-01-01", "link", {})
        assert sum(r[1] for r in per_link) == clicks and len(per_link) == 5
        by_source = await totals(store, "utm_source")
        assert sum(c for c, _, _ in by_source.values()) == clicks and set(by_source) == {"s0", "s1", "s2", "s3"}
        # Every way of reading gives the same answer: dimension_days, each scope's cells, link_days, raw rows.
        span = ("2000-01-01", "2100-01-01")
        for group, dimension in (("day", ""), ("value", "utm_source"), ("value", "device"), ("value", "robot"),
                                 ("value", "via")):  # fmt: skip
            everything = await store.dimension_totals(dimension, *span, group, None)
            assert await raw_totals(store, dimension, *span, group, {}) == everything
            for scope in ({"campaign": "summer"}, {"agent_id": 3}, {"channel": "whatsapp"}):  # every click is in each
                if dimension:
                    assert await store.link_dimension_totals(dimension, *span, group, scope) == everything
                else:
                    assert await store.link_totals(*span, group, scope) == everything
            one_link = await raw_totals(store, dimension, *span, group, {"link_kind": "short", "link_key": "k1"})
            assert sum(r[1] + r[3] for r in one_link) == 100
        # One link's clicks by any dimension: link_dimension_days says what the raw rows say.
        for dimension in ("utm_source", "device", "robot", "referrer", "browser", "via"):
            for filters in ({"link_kind": "short", "link_key": "k1"}, {"link_kind": "short", "link_key": "k1",
                            "campaign": "summer", "agent_id": 3}, {"campaign": "summer", "channel": "whatsapp"}):
                for first, last in (span, ("2023-12-02", "2024-01-15")):
                    rolled = await store.link_dimension_totals(dimension, first, last, "value", filters)
                    assert rolled == await raw_totals(store, dimension, first, last, "value", filters)
                    assert rolled  # fmt: skip
        k1 = await store.link_dimension_totals("utm_source", *span, "value", {"link_kind": "short", "link_key": "k1"})
        assert sum(c + b for _, c, _, b in k1) == 100 and {key for key, *_ in k1} == {"s0", "s1", "s2", "s3"}
        assert await store.link_totals(*span, "day", {}) == await store.dimension_totals("", *span, "day", None
        )
        # Whole months come from link_months, the days at either end from link_days.
        for group in ("link", "month", "campaign"):
            for first, last in (
                ("2023-11-20", "2024-02-10"),
                ("2023-12-01", "2024-01-31"),
                ("2023-12-02", "2023-12-30"),
            ):
                assert await store.link_totals(first, last, group, {}) == await raw_totals(store, 
                    "", first, last, group, {}
                )
        await store.close()

    asyncio.run(scenario())


def test_pruning_deletes_old_raw_rows_and_keeps_the_totals(db_path: str) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60, retention_days=400)
        now = 1800000000
        for days_ago in (500, 401, 399, 1):
            recorder.record(event()._replace(at=now - days_ago * 86400))
        await recorder.flush()
        assert await recorder.prune(now) == 2
        assert [r["at"] for r in await store.clicks("short", "vetrina")] == [now - 399 * 86400, now - 86400]
        assert await store.click_count("short", "vetrina") == 4  # the totals stay
        by_device = await store.link_dimension_totals(
            "device", "2000-01-01", "2100-01-01", "value", {"link_kind": "short", "link_key": "vetrina"}
        )
        assert by_device == [("mobile", 4, 0, 0)]  # so does the link's breakdown
        await store.close()

    asyncio.run(scenario())


def test_the_memoised_analysis_is_the_analysis() -> None:
    """describe() reads each distinct (query, referrer, user agent, HEAD or not) once; what it
    reads must be what analysing each click afresh gives, in any order, for a corpus of real
    browsers, robots and hostile strings, and whether a click was a HEAD must never leak."""
    agents = [IPHONE, ANDROID, DESKTOP, WHATSAPP_PREVIEW, "", " ", "curl/8.4.0", "python-requests/2.31",
              "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
              "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Mobile/15E148 Instagram 309.0.0.0",
              "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
              "x" * 512]  # fmt: skip
    queries = [b"", b"utm_source=ig&utm_medium=paid&fbclid=X", b"gclid=1", b"utm_source=a@b.it", b"a=1&" * 300]
    referrers = ["", "https://www.instagram.com/p/x", "http://[::1", "https://l.facebook.com/?u=" + "y" * 1200]
    combos = [(q, r, ua, probe) for q in queries for r in referrers for ua in agents for probe in (False, True)]
    analysis.cache_clear()
    for combo in [*combos, *reversed(combos)]:  # the second pass answers from the cache
        assert analysis(*combo) == analyse(*combo), combo
        row = describe(event(combo[0], combo[1], combo[2])._replace(probe=combo[3]), 1, NO_ZONES)
        assert tuple(row)[7:17] + (row.robot, row.via) == analyse(*combo)
    assert analysis.cache_info().hits >= len(combos)


@pytest.mark.parametrize("seed", range(8))
def test_random_failures_and_flushes_lose_and_double_nothing(db_path: str, seed: int) -> None:
    """Clicks, writes failing part way, one or two flushes at once, a small max_pending: after
    each step, written + pending + dropped is what was recorded; after stop(), all but the
    dropped are written. (From a review of the merge of identical clicks as they come.)"""
    rng = random.Random(seed)  # a seed a case: the same interleaving every run

    async def scenario() -> None:
        store = await Store.open(db_path)
        shared = SharedStore(db_path) if store.postgres else None
        recorder = ClickRecorder(store, flush_interval=60, batch_size=rng.choice([1, 3, 7]), max_pending=60,
                                 shared=shared)  # fmt: skip
        add_clicks, zones = store.add_clicks, store.click_zones
        recorded = [0]

        def click() -> None:
            key = f"k{rng.randrange(4)}"
            address = rng.choice(["", "10.0.0.1", "10.0.0.2"])
            recorder.record(ClickEvent(1700000000 + rng.randrange(3), "short", key, "whatsapp", 3, None, None,
                                       b"", "", IPHONE, None, "", "", False, address))
            recorded[0] += 1

        async def flaky_add(*args: Any) -> None:
            for _ in range(rng.randrange(3)):
                click()
            await asyncio.sleep(0)
            if rng.random() < 0.3:
                raise OSError("away")
            await add_clicks(*args)

        async def flaky_zones() -> Any:
            click()
            if rng.random() < 0.1:
                raise OSError("away")
            return await zones()

        store.add_clicks = flaky_add  # type: ignore[method-assign]
        store.click_zones = flaky_zones  # type: ignore[method-assign]
        try:
            for _ in range(40):
                for _ in range(rng.randrange(10)):
                    click()
                results = await asyncio.gather(*(recorder.flush() for _ in range(rng.choice([1, 2]))),
                                               return_exceptions=True)
                assert all(isinstance(r, int | OSError) for r in results), results
                total = sum((await store.click_counts("short", [f"k{i}" for i in range(4)])).values())
                assert total + recorder.pending + recorder.dropped == recorded[0]
            store.add_clicks, store.click_zones = add_clicks, zones  # type: ignore[method-assign]
            await recorder.stop()
            total = sum((await store.click_counts("short", [f"k{i}" for i in range(4)])).values())
            assert (total, recorder.pending) == (recorded[0] - recorder.dropped, 0)
        finally:
            if shared is not None:
                await shared.close()
            await store.close()

    asyncio.run(scenario())


def test_an_agent_moved_to_another_business_counts_its_next_clicks_there(db_path: str) -> None:
    """The writer remembers each click's cell (its link, business and dimension values) by the
    click's raw fields; a business's agent moving, or its time zone changing, must not leave the
    next clicks in the old business or day."""

    async def scenario() -> list[tuple[Any, ...]]:
        store = await Store.open(db_path)
        async with store.transaction() as db:
            for name, zone in (("Roma", "Europe/Rome"), ("Tokyo", "Asia/Tokyo")):
                await db.execute("INSERT INTO businesses (name, timezone, created_at, updated_at) VALUES (?, ?, 0, 0)",
                                 (name, zone))  # fmt: skip
            await db.execute("INSERT INTO agents (id, business_id, name, channel, address, created_at, updated_at)"
                             " VALUES (3, 1, 'Ada', 'whatsapp', '393471234567', 0, 0)")  # fmt: skip
        recorder = ClickRecorder(store, flush_interval=60)
        late = event()._replace(at=1700000000 + 23 * 3600)  # 21:13 UTC on 15 November: the 16th in Tokyo
        for visitor in ("a", "b"):  # the second is met in the writer's cache
            recorder.record(late._replace(visitor=visitor))
            await recorder.flush()
        async with store.transaction() as db:
            await db.execute("UPDATE agents SET business_id = 2 WHERE id = 3")
        recorder.record(late._replace(visitor="c"))  # the same link, referrer, device: the same raw fields
        await recorder.flush()
        found = await store._all("SELECT business_id, day, clicks FROM link_days ORDER BY business_id")
        await store.close()
        return [tuple(row) for row in found]

    assert asyncio.run(scenario()) == [(1, "2023-11-15", 2), (2, "2023-11-16", 1)]
