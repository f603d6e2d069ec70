from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from clicktochat.database import is_postgres
from clicktochat.keys import signing_keys
from clicktochat.links import ShortLink
from clicktochat.store import Store
from clicktochat.storedb import CHUNKS, _split_sql, insert_rows, migrations
from test_clicks import raw_totals


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [number for number, _ in migrations()] == list(range(1, len(migrations()) + 1))


def test_open_migrates_once_and_uses_wal(sqlite_path: str) -> None:
    async def scenario() -> None:
        for _ in range(2):  # the second open finds the schema in place
            store = await Store.open(sqlite_path)
            (version,) = await store._one("PRAGMA user_version")
            (mode,) = await store._one("PRAGMA journal_mode")
            (fks,) = await store._one("PRAGMA foreign_keys")
            await store.close()
            assert (version, mode, fks) == (len(migrations()), "wal", 1)

    asyncio.run(scenario())


def test_open_migrates_once_on_either_database(db_path: str) -> None:
    """Both databases end at the same version (PostgreSQL's schema is one file, numbered like
    SQLite's last), and a second open finds nothing left to do."""
    newest = max(number for number, _ in migrations("migrations_pg" if is_postgres(db_path) else "migrations"))

    async def scenario() -> list[int]:
        versions = []
        for _ in range(2):
            store = await Store.open(db_path)
            versions.append(await store.schema_version())
            await store.close()
        return versions

    assert newest == len(migrations())
    assert asyncio.run(scenario()) == [newest, newest]


def test_first_signing_key_is_generated_once_and_kept(db_path: str) -> None:
    async def open_keys() -> list[str]:
        store = await Store.open(db_path)
        try:
            return await signing_keys(store, configured=[])
        finally:
            await store.close()

    first = asyncio.run(open_keys())
    assert len(first) == 1 and len(first[0]) >= 40
    assert asyncio.run(open_keys()) == first  # a restart keeps the key: printed links keep working


def test_configured_keys_win_over_stored_ones(db_path: str) -> None:
    async def scenario() -> list[str]:
        store = await Store.open(db_path)
        try:
            return await signing_keys(store, configured=["a", "b"])
        finally:
            await store.close()

    assert asyncio.run(scenario()) == ["a", "b"]


def test_routing_version_moves_with_every_change_that_affects_a_click(db_path: str) -> None:
    async def scenario() -> list[int]:
        store = await Store.open(db_path)
        versions = [await store.routing_version()]
        business = await store.add_business("Shop", "UTC")
        agent = await store.add_agent(business.id, "A", "whatsapp", "393471234567", None, None)
        versions.append(await store.routing_version())
        await store.add_link(ShortLink("x", agent_id=agent.id))
        versions.append(await store.routing_version())
        await store.update_link("x", {"text": "hi"})
        versions.append(await store.routing_version())
        await store.update_business(business.id, {"name": "Shop 2"})
        versions.append(await store.routing_version())
        await store.set_meta("unrelated", "1")
        versions.append(await store.routing_version())
        await store.close()
        return versions

    versions = asyncio.run(scenario())
    assert versions[:5] == sorted(set(versions[:5]))  # strictly increasing
    assert versions[5] == versions[4]  # other writes do not drop the cache


@pytest.mark.parametrize(
    "link",
    [ShortLink("both", channel="whatsapp", address="1", agent_id=1), ShortLink("two", agent_id=1, business_id=1),
     ShortLink("none")],
)  # fmt: skip
def test_a_link_has_exactly_one_destination(db_path: str, link: ShortLink) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        try:
            await store.add_link(link)
        finally:
            await store.close()

    with pytest.raises(sqlite3.IntegrityError, match="(?i)check"):  # SQLite's words, PostgreSQL's
        asyncio.run(scenario())


def test_a_fixed_number_may_belong_to_a_business(db_path: str) -> None:
    """Migration 009: a number and its business (whose name, logo and colour the pages show)."""

    async def scenario() -> tuple[ShortLink | None, bool]:
        store = await Store.open(db_path)
        try:
            shop = await store.add_business("Dolce Vita", "Europe/Rome", "#c2185b")
            await store.add_link(ShortLink("banco", channel="whatsapp", address="393471234567", business_id=shop.id))
            target = await store.target("banco")
            assert target is not None
            assert (target.title, target.business_id, target.agents) == ("Dolce Vita", shop.id, ())
            assert (await store.business(shop.id)) == shop
            deleted = await store.delete_business(shop.id)  # the link keeps its number, without the name
            return await store.link("banco"), deleted
        finally:
            await store.close()

    link, deleted = asyncio.run(scenario())
    assert deleted and link is not None and (link.address, link.business_id) == ("393471234567", None)


def test_no_column_can_hold_an_ip_address(db_path: str) -> None:
    async def scenario() -> list[str]:
        store = await Store.open(db_path)
        rows = await store._all(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'clicks'"
            if store.postgres else "SELECT name FROM pragma_table_info('clicks')"
        )
        await store.close()
        return [row[0] for row in rows]

    columns = asyncio.run(scenario())
    assert "referrer_host" in columns
    assert not [c for c in columns if "ip" in c.split("_") or "user_agent" in c or c == "referer"]


def test_a_cancelled_write_leaves_no_transaction_open(sqlite_path: str) -> None:
    async def scenario() -> str:
        store = await Store.open(sqlite_path)
        blocker = sqlite3.connect(sqlite_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        begun = threading.Event()
        await store.db.set_trace_callback(lambda sql: begun.set() if sql == "BEGIN IMMEDIATE" else None)
        write = asyncio.create_task(store.add_business("Shop", "UTC"))
        # Traced as it starts, before it waits on the busy timeout (the blocker holds on until after the cancel).
        assert await asyncio.to_thread(begun.wait, 60)
        write.cancel()
        blocker.execute("ROLLBACK")
        blocker.close()
        try:
            await write
        except asyncio.CancelledError:
            pass
        business = await store.add_business("Later", "UTC")  # the connection is usable again
        await store.close()
        return business.name

    assert asyncio.run(scenario()) == "Later"


def database_at(sqlite_path: str, version: int) -> sqlite3.Connection:
    """A database as an older release left it: the first `version` migrations applied, in an open
    transaction for the test to add its rows and COMMIT."""
    db = sqlite3.connect(sqlite_path, isolation_level=None)
    db.execute("BEGIN")
    for number, script in migrations()[:version]:
        for statement in _split_sql(script):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
    return db


def test_clicks_recorded_before_the_analytics_migration_keep_counting(sqlite_path: str) -> None:
    """SQLite's migrations (PostgreSQL starts at the last). A database at version 2 with clicks in
    it: 003 rebuilds the clicks table and files the old clicks in the daily totals, so no count drops."""
    db = database_at(sqlite_path, 2)
    db.execute("INSERT INTO businesses (id, name, timezone, created_at, updated_at) VALUES (1, 'B', 'UTC', 0, 0)")
    db.execute("INSERT INTO agents (id, business_id, name, channel, address, created_at, updated_at)"
               " VALUES (5, 1, 'Ann', 'whatsapp', '393471234567', 0, 0)")  # fmt: skip
    old = "INSERT INTO clicks (at, n, link_kind, link_key, channel, agent_id, utm_source, has_gclid, referrer_host)"
    db.execute(old + " VALUES (1700000000, 40, 'short', 'vetrina', 'whatsapp', 5, 'ig', 1, 'x.it')")
    db.execute(old + " VALUES (1700086400, 2, 'signed', 'k1', 'whatsapp', NULL, NULL, 0, NULL)")
    db.execute("COMMIT")
    db.close()

    async def scenario() -> None:
        store = await Store.open(sqlite_path)
        try:
            assert await store.click_count("short", "vetrina") == 40
            assert await store.click_count("signed", "k1") == 2
            rows = await store.clicks("short", "vetrina")
            assert (rows[0]["ad_click"], rows[0]["business_id"], rows[0]["day"]) == ("gclid", 1, "2023-11-14")
            days = await store.link_totals("2023-11-01", "2023-11-30", "day", {})
            assert days == [("2023-11-14", 40, 0, 0), ("2023-11-15", 2, 0, 0)]
            sources = await store.dimension_totals("utm_source", "2023-11-01", "2023-11-30", "value", 1)
            assert sources == [("ig", 40, 0, 0)]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_links_and_breakdowns_survive_migration_9(sqlite_path: str) -> None:
    """A database at version 8: 009 makes links and link_dimension_days again (a new CHECK, a
    new key column); every link, its triggers and every total are kept, old clicks are taps."""
    db = database_at(sqlite_path, 8)
    db.execute("INSERT INTO businesses (id, name, timezone, created_at, updated_at) VALUES (1, 'B', 'UTC', 0, 0)")
    db.execute("INSERT INTO agents (id, business_id, name, channel, address, created_at, updated_at)"
               " VALUES (5, 1, 'Ann', 'whatsapp', '393471234567', 0, 0)")  # fmt: skip
    links = "INSERT INTO links (slug, channel, address, agent_id, business_id, text, created_at, updated_at, ref_code)"
    db.execute(links + " VALUES ('n', 'whatsapp', '393470000000', NULL, NULL, 'Ciao', 1, 2, 1)")
    db.execute(links + " VALUES ('a', NULL, NULL, 5, NULL, '', 1, 2, NULL)")
    db.execute(links + " VALUES ('b', NULL, NULL, NULL, 1, '', 1, 2, 0)")
    db.execute("INSERT INTO clicks (at, link_kind, link_key, channel, day, n, uniques)"
               " VALUES (1700000000, 'short', 'n', 'whatsapp', '2023-11-14', 3, 1)")  # fmt: skip
    db.execute("INSERT INTO link_dimension_days VALUES ('short', 'n', '2023-11-14', 0, '', 0, 'whatsapp', '', '',"
               " 'mobile', '', '', '', '', '', '', '', '', '', '', 3, 1, 0)")  # fmt: skip
    db.execute("COMMIT")
    db.close()

    async def scenario() -> None:
        store = await Store.open(sqlite_path)
        try:
            assert [(link.slug, link.address, link.agent_id, link.business_id, link.ref_code)
                    for link in await store.links()] == [
                ("a", None, 5, None, None), ("b", None, None, 1, False), ("n", "393470000000", None, None, True)
            ]  # fmt: skip
            version = await store.routing_version()
            await store.update_link("n", {"business_id": 1})  # a fixed number of business 1 now
            assert await store.routing_version() == version + 1  # the triggers came back
            n = {"link_kind": "short", "link_key": "n"}
            span = ("2023-11-01", "2023-11-30")
            assert await store.link_dimension_totals("device", *span, "value", n) == [("mobile", 3, 1, 0)]
            assert await store.link_dimension_totals("via", *span, "value", n) == [("", 3, 1, 0)]
            assert (await store.clicks("short", "n"))[0]["via"] is None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_existing_clicks_fill_the_per_link_breakdowns_when_migrating(sqlite_path: str) -> None:
    """A database at version 5 with raw rows: 006 files them in link_dimension_days, so a
    link's breakdown by referrer or robot counts what it counted from the raw rows."""
    db = database_at(sqlite_path, 5)
    raw = ("INSERT INTO clicks (at, link_kind, link_key, channel, agent_id, campaign, referrer_host, device_class,"
           " os_family, browser_family, robot, business_id, day, n, uniques) VALUES"
           " (?, 'short', ?, 'whatsapp', NULL, ?, ?, 'mobile', 'iOS', 'Mobile Safari', ?, NULL, ?, ?, ?)")  # fmt: skip
    db.executemany(raw, [
        (1700000000, "vetrina", "summer", "x.it", None, "2023-11-14", 5, 3),
        (1700000100, "vetrina", "summer", "x.it", None, "2023-11-14", 2, 1),
        (1700000200, "vetrina", "summer", None, None, "2023-11-14", 1, 1),
        (1700086400, "vetrina", "summer", "y.it", "Googlebot", "2023-11-15", 4, 0),
        (1700086400, "banco", None, "x.it", None, "2023-11-15", 9, 9),
    ])  # fmt: skip
    db.execute("COMMIT")
    db.close()

    async def scenario() -> None:
        store = await Store.open(sqlite_path)
        try:
            vetrina = {"link_kind": "short", "link_key": "vetrina"}
            span = ("2023-11-01", "2023-11-30")
            by_referrer = await store.link_dimension_totals("referrer", *span, "value", vetrina)
            assert by_referrer == [("x.it", 7, 4, 0), ("", 1, 1, 0), ("y.it", 0, 0, 4)]
            assert by_referrer == await raw_totals(store, "referrer", *span, "value", vetrina)
            robots = await store.link_dimension_totals("robot", "2023-11-15", "2023-11-15", "value", vetrina)
            assert robots == [("Googlebot", 0, 0, 4)]
            assert await store.link_dimension_totals("device", *span, "value", {"campaign": ""}) == [
                ("mobile", 9, 9, 0)
            ]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_rows_are_inserted_in_chunks_exactly_as_given(db_path: str) -> None:
    """insert_rows() writes multi-row statements of CHUNKS rows; whatever the count (each chunk
    size, one more, one less, none), every row arrives once, in order, and an upsert adds up as
    one statement per row would. PostgreSQL refuses a key twice in one upsert statement (add_clicks
    sums its totals per key first): there the keys of one call are distinct, and repeat across calls."""
    counts = sorted({0, 1, 2, *(n + d for n in CHUNKS for d in (-1, 0, 1)), 2 * CHUNKS[0] + 111})
    spread = 10**6 if is_postgres(db_path) else 7

    async def scenario() -> None:
        store = await Store.open(db_path)
        try:
            async with store.transaction() as db:
                await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT, b INTEGER)")
                await db.execute("CREATE TABLE sums (k INTEGER PRIMARY KEY, total INTEGER NOT NULL)")
            for count in counts:
                rows = [(i, f"row {i}", None if i % 3 else i) for i in range(count)]
                async with store.transaction() as db:
                    await db.execute("DELETE FROM t")
                    await insert_rows(db, "INSERT INTO t (k, a, b)", 3, rows)
                    await insert_rows(db, "INSERT INTO sums (k, total)", 2, [(i % spread, i) for i in range(count)],
                                      " ON CONFLICT (k) DO UPDATE SET total = sums.total + excluded.total")  # fmt: skip
                assert await store._all("SELECT k, a, b FROM t ORDER BY k") == rows, count  # k: SQLite's rowid
            expected: dict[int, int] = {}
            for count in counts:
                for i in range(count):
                    expected[i % spread] = expected.get(i % spread, 0) + i
            assert dict(await store._all("SELECT k, total FROM sums")) == expected
        finally:
            await store.close()

    asyncio.run(scenario())


def test_link_search_ignores_the_case_of_ascii_letters_only_on_either_database(db_path: str) -> None:
    """SQLite's LIKE folds ASCII letters alone; PostgreSQL's search must find exactly the same links
    (its LIKE folds nothing, its ILIKE folds every letter in most locales), and % and _ are literal."""
    links = [ShortLink("Vetrina", channel="whatsapp", address="393471234567", campaign="Estate"),
             ShortLink("upper", channel="whatsapp", address="393471234567", text="CAFÉ"),
             ShortLink("lower", channel="whatsapp", address="393471234567", text="café 50% off"),
             ShortLink("plain", channel="whatsapp", address="393471234567", source="a_b")]  # fmt: skip

    async def scenario() -> dict[str, list[str]]:
        store = await Store.open(db_path)
        try:
            for link in links:
                await store.add_link(link)
            found = {}
            for search in ("", "VETR", "estate", "caf", "é", "É", "%", "a_b", "ab", "a%b"):
                found[search] = sorted(link.slug for link in await store.links(search=search))
            return found
        finally:
            await store.close()

    assert asyncio.run(scenario()) == {
        "": ["Vetrina", "lower", "plain", "upper"], "VETR": ["Vetrina"], "estate": ["Vetrina"],
        "caf": ["lower", "upper"], "é": ["lower"], "É": ["upper"], "%": ["lower"], "a_b": ["plain"], "ab": [],
        "a%b": [],
    }  # fmt: skip


def test_an_id_is_never_given_twice_on_either_database(db_path: str) -> None:
    """Clicks, daily totals and consents keep a business's and an agent's id after they are
    deleted: a new one given the same id would inherit another's history (SQLite gives the
    largest id again unless the table says AUTOINCREMENT; PostgreSQL's identities never do)."""

    async def scenario() -> list[tuple[int, int]]:
        store = await Store.open(db_path)
        try:
            shop = await store.add_business("Shop", "UTC")
            gone = await store.add_business("Gone", "UTC")
            ann = await store.add_agent(shop.id, "Ann", "whatsapp", "393471234567", None, None)
            admin = await store.add_admin("ana", "hash")
            assert await store.delete_agent(ann.id) and await store.delete_business(gone.id)
            assert await store.delete_admin("ana")
            again = await store.add_business("New", "UTC")
            bob = await store.add_agent(shop.id, "Bob", "whatsapp", "393471234568", None, None)
            other = await store.add_admin("bea", "hash")
            return [(gone.id, again.id), (ann.id, bob.id), (admin.id, other.id)]
        finally:
            await store.close()

    for old, new in asyncio.run(scenario()):
        assert new > old


def test_migration_13_keeps_every_row_key_and_trigger(sqlite_path: str) -> None:
    """A database at version 12: 013 makes the tables whose ids outlive their rows AUTOINCREMENT
    (rebuilt with foreign keys off, as SQLite asks); rows, foreign keys, indexes and triggers
    stay, and ids go on from the largest."""
    db = database_at(sqlite_path, 12)
    db.execute("INSERT INTO businesses (id, name, timezone, created_at, updated_at) VALUES (1, 'B', 'UTC', 0, 0)")
    db.execute("INSERT INTO businesses (id, name, timezone, created_at, updated_at) VALUES (2, 'C', 'UTC', 0, 0)")
    db.execute("INSERT INTO agents (id, business_id, name, channel, address, created_at, updated_at)"
               " VALUES (5, 1, 'Ann', 'whatsapp', '393471234567', 0, 0)")  # fmt: skip
    db.execute("INSERT INTO agent_channels (agent_id, channel, address, position)"
               " VALUES (5, 'whatsapp', '393471234567', 0)")  # fmt: skip
    db.execute("UPDATE businesses SET fallback_agent_id = 5 WHERE id = 1")
    db.execute("INSERT INTO links (slug, agent_id, text, created_at, updated_at) VALUES ('a', 5, '', 0, 0)")
    db.execute("COMMIT")
    db.close()

    async def scenario() -> None:
        store = await Store.open(sqlite_path)
        try:
            assert (await store._one("PRAGMA foreign_keys"))[0] == 1
            assert await store._all("PRAGMA foreign_key_check") == []
            assert [(b.id, b.fallback_agent_id) for b in await store.businesses()] == [(1, 5), (2, None)]
            assert [(link.slug, link.agent_id) for link in await store.links()] == [("a", 5)]
            (sql,) = await store._one("SELECT sql FROM sqlite_master WHERE name = 'agents'")
            assert "AUTOINCREMENT" in sql
            indexes = {name for (name,) in await store._all("SELECT name FROM sqlite_master WHERE type = 'index'"
                                                            " AND tbl_name = 'agents'")}  # fmt: skip
            assert "agents_business" in indexes
            version = await store.routing_version()
            await store.update_agent(5, {"name": "Anna"})
            assert await store.routing_version() == version + 1  # the agents' triggers came back
            assert await store.delete_business(2)
            assert (await store.add_business("D", "UTC")).id == 3
            with pytest.raises(sqlite3.IntegrityError):  # foreign keys hold again: links still lead to agent 5
                await store.delete_agent(5)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_whatsapp_ids_stored_in_metas_own_form_become_e164_digits(sqlite_path: str) -> None:
    """Migration 015: Mexico's 521... and Brazil's eight-digit mobiles, as Meta writes them and as
    earlier releases kept them, become the E.164 digits the consents and notifications key by: the
    person's conversation, opt-out and statuses stay theirs. A conversation whose twin exists is
    merged into it (migration 016)."""
    db = database_at(sqlite_path, 14)
    db.execute("INSERT INTO businesses (id, name, timezone, created_at, updated_at) VALUES (1, 'B', 'UTC', 0, 0)")
    db.execute("INSERT INTO whatsapp_numbers (id, business_id, phone_number_id, waba_id, display_phone_number,"
               " connected_at) VALUES (1, 1, '100', '200', '15550100', 0)")  # fmt: skip
    for id_, wa_id in ((1, "5215512345678"), (2, "551187654321"), (3, "5215500000000"), (4, "525500000000"),
                       (5, "551133334444"), (6, "393471234567")):  # 5: a Brazilian landline (2 to 5)
        db.execute("INSERT INTO conversations (id, number_id, business_id, wa_id, created_at, last_message_at)"
                   " VALUES (?, 1, 1, ?, 0, 0)", (id_, wa_id))  # fmt: skip
    db.execute("INSERT INTO consents (business_id, phone, topic, state, at, source, wording)"
               " VALUES (1, '5215512345678', '*', 'out', 5, 'chat', 'STOP')")  # fmt: skip
    db.execute("INSERT INTO wa_statuses (wamid, number_id, status, at, recipient) VALUES ('w', 1, 'sent', 0,"
               " '551187654321')")  # fmt: skip
    db.execute("COMMIT")
    db.close()

    async def upgrade() -> None:
        store = await Store.open(sqlite_path)
        await store.close()

    asyncio.run(upgrade())
    with sqlite3.connect(sqlite_path) as db:
        assert dict(db.execute("SELECT id, wa_id FROM conversations").fetchall()) == {
            1: "525512345678", 2: "5511987654321", 4: "525500000000", 5: "551133334444",
            6: "393471234567"}  # fmt: skip
        assert db.execute("SELECT phone, wording FROM consents").fetchall() == [("525512345678", "STOP")]
        assert db.execute("SELECT recipient FROM wa_statuses").fetchall() == [("5511987654321",)]
