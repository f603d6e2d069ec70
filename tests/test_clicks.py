from __future__ import annotations

import asyncio

from clicktochat.clicks import ClickEvent, ClickRecorder, referrer_host
from clicktochat.store import CLICK_COLUMNS, Store
from conftest import IPHONE


def event(query: bytes = b"", referer: str = "", ua: str = IPHONE, key: str = "vetrina") -> ClickEvent:
    return ClickEvent(1700000000, "short", key, "whatsapp", 3, "summer", "flyer", query, referer, ua)


def test_a_click_row_keeps_campaign_utm_ad_ids_and_device_but_not_the_url() -> None:
    row = dict(zip(CLICK_COLUMNS, event(
        b"utm_source=ig&utm_medium=social&utm_campaign=summer&utm_content=reel&utm_term=cake&fbclid=XYZ",
        "https://www.instagram.com/p/secret-post?user=me",
    ).to_row(), strict=True))  # fmt: skip
    assert row == {
        "at": 1700000000, "link_kind": "short", "link_key": "vetrina", "channel": "whatsapp", "agent_id": 3,
        "campaign": "summer", "source": "flyer", "utm_source": "ig", "utm_medium": "social",
        "utm_campaign": "summer", "utm_content": "reel", "utm_term": "cake", "has_fbclid": 1, "has_gclid": 0,
        "referrer_host": "www.instagram.com", "device_class": "mobile", "os_family": "iOS",
        "browser_family": "Mobile Safari", "page_path": None,
    }  # fmt: skip


def test_hostile_query_and_referrer_are_harmless() -> None:
    hostile = event(b"a=1&" * 500 + b"utm_source=" + b"x" * 5000, "http://[::1")
    row = dict(zip(CLICK_COLUMNS, hostile.to_row(), strict=True))
    assert row["utm_source"] is None  # too many fields: ignored, not a crash
    assert row["referrer_host"] is None
    long_utm = dict(zip(CLICK_COLUMNS, event(b"utm_source=" + b"x" * 5000).to_row(), strict=True))
    assert len(long_utm["utm_source"]) == 200
    assert referrer_host("not a url") is None


def test_recorder_writes_batches_and_stop_writes_the_rest(db_path: str) -> None:
    async def scenario() -> tuple[int, int]:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60, batch_size=7)  # the timer never fires here
        recorder.start()
        for i in range(100):
            recorder.record(event(key=f"k{i % 3}"))
        assert recorder.pending == 100
        await recorder.stop()
        counted = sum([await store.click_count("short", f"k{i}") for i in range(3)])
        pending = recorder.pending
        await store.close()
        return counted, pending

    assert asyncio.run(scenario()) == (100, 0)


def test_recorder_flushes_on_its_own_within_the_interval(db_path: str) -> None:
    async def scenario() -> int:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=0.02)
        recorder.start()
        recorder.record(event())
        await asyncio.sleep(0.3)
        count = await store.click_count("short", "vetrina")
        await recorder.stop()
        await store.close()
        return count

    assert asyncio.run(scenario()) == 1


def test_a_failed_write_keeps_the_clicks_for_the_next_try(db_path: str) -> None:
    async def scenario() -> tuple[int, int]:
        store = await Store.open(db_path)
        recorder = ClickRecorder(store, flush_interval=60)
        recorder.record(event())
        await store.db.execute("ALTER TABLE clicks RENAME TO clicks_away")  # make the write fail
        try:
            await recorder.flush()
        except Exception:
            pass
        kept = recorder.pending
        await store.db.execute("ALTER TABLE clicks_away RENAME TO clicks")
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
        (1700000000, None, 1000), (1700000000, "ig", 1), (1700000001, None, 1)
    ]


def test_email_addresses_in_utm_values_are_not_kept() -> None:
    row = dict(zip(CLICK_COLUMNS, event(b"utm_source=newsletter&utm_term=ada%40example.com").to_row(), strict=True))
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
