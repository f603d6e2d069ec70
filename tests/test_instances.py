"""Several `clicktochat serve` processes on one PostgreSQL database (issue 13): every click
counted once, every edit seen by the others at once (by notification), one rotation, one sign-in
throttle, one count of unique visitors, each scheduled job run once, the same key written by two
at once kept once (or refused cleanly), and a database restart survived. These tests always run
on PostgreSQL: on the SQLite run of the suite they take a database of the session's server
(conftest's `postgres_server`)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from clicktochat.accounts import LoginThrottle
from clicktochat.agents import Agent
from clicktochat.app import create_app
from clicktochat.clicks import ClickEvent, ClickRecorder
from clicktochat.errors import Conflict
from clicktochat.links import ShortLink, Target, resolve
from clicktochat.message_templates import Template
from clicktochat.optinstore import OptinRequest, PendingExists
from clicktochat.payloads import encode, inbound_message, new_wamid, webhook_body
from clicktochat.service import Service
from clicktochat.settings import Settings
from clicktochat.sharedstore import SharedStore, Unreachable, merge_salts
from clicktochat.store import Store
from clicktochat.visitors import DAY, Salts
from clicktochat.webhooks import match_failed
from conftest import (
    IPHONE,
    NUMBER,
    POSTGRES,
    TEMPLATE,
    call,
    connect_db,
    flush,
    free_port,
    running,
    until_waiting_for_a_lock,
)
from pgserver import PostgresServer

SIGN_IN_KEY = b"the instances' common key".ljust(32)

_names = itertools.count()
# Seconds within which an edit through one instance is seen by every other. Notifications make
# it well under a second; the bound is generous for a busy machine, and still far below the
# 30 s safety poll (listen.SAFETY_POLL), so five edits in a row all seen within it prove the
# notifications work.
SEEN_WITHIN = 10.0


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A migrated PostgreSQL database for this test, whichever database the suite runs on."""
    if POSTGRES:
        return str(request.getfixturevalue("db_path"))
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"instances_{os.getpid()}_{next(_names)}"
    server.create_database(name, template=TEMPLATE)
    return server.url(name)


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "clicktochat", *args], capture_output=True, text=True, check=True)
    return done.stdout


# -- three servers ------------------------------------------------------------------------


def test_three_instances_count_every_click_once_and_see_every_edit_within_a_second(pg_url: str) -> None:
    key = re.findall(r"ctc_\S+", cli("apikey", "create", "--db", pg_url, "test"))[0]
    ports = [free_port() for _ in range(3)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    auth = {"Authorization": f"Bearer {key}"}
    servers = [running([sys.executable, "-m", "clicktochat", "serve", "--db", pg_url, "--port", str(port),
                        "--base-url", bases[0]], port) for port in ports]  # fmt: skip
    sent = [0, 0, 0]  # people's clicks sent to each instance, polls included
    lock = threading.Lock()
    with servers[0] as first, servers[1] as second, servers[2] as third:
        created = httpx.post(f"{bases[0]}/api/v1/links", headers=auth, json={"to": "+39 347 000 0000", "slug": "saldi"})
        assert created.status_code == 201, created.text

        def click(i: int, client: httpx.Client) -> str:
            response = client.get(f"{bases[i]}/s/saldi", headers={"user-agent": IPHONE})
            assert response.status_code == 302, response.text
            with lock:
                sent[i] += 1
            return response.headers["location"]

        stop = threading.Event()

        def clicker(i: int) -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    click(i, client)

        threads = [threading.Thread(target=clicker, args=(i,)) for i in range(3) for _ in range(2)]
        for thread in threads:
            thread.start()
        lags = []
        try:
            with httpx.Client(timeout=10) as client:
                for n in range(1, 6):
                    number = f"+39 347 000 000{n}"
                    edited = client.patch(f"{bases[0]}/api/v1/links/saldi", headers=auth, json={"to": number})
                    assert edited.status_code == 200, edited.text
                    done = time.monotonic()
                    wanted = f"https://wa.me/3934700000{n:02d}"
                    for i in (1, 2):
                        while (location := click(i, client)) != wanted:
                            assert time.monotonic() - done < SEEN_WITHIN, f"instance {i} still sends to {location}"
                    lags.append(time.monotonic() - done)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert all(lag < SEEN_WITHIN for lag in lags)
        for process in (first, second, third):  # SIGTERM: each writes what it still holds
            process.send_signal(signal.SIGTERM)
        for process in (first, second, third):
            assert process.wait(30) in (0, -signal.SIGTERM)  # uvicorn raises the signal again once stopped
    with connect_db(pg_url) as db:
        clicks, uniques, bots = db.execute(
            "SELECT sum(clicks), sum(uniques), sum(bots) FROM link_days WHERE link_key = 'saldi'"
        ).fetchone()
        (raw,) = db.execute("SELECT sum(n) FROM clicks WHERE link_key = 'saldi'").fetchone()
    assert min(sent) > 5
    assert (clicks, raw, bots) == (sum(sent), sum(sent), 0)
    assert uniques == 1  # one phone, one address: one visitor, whichever instance it reached


# -- what the instances share, in-process ---------------------------------------------------


def agent(agent_id: int) -> Agent:
    return Agent(agent_id, 7, f"agent {agent_id}", "whatsapp", f"39347000{agent_id:04d}", None, "UTC")


def test_the_rotation_is_one_turn_across_instances(pg_url: str) -> None:
    """Clicks alternating between two instances still reach the agents in turn: alone, each
    instance would start with the first agent (1, 1, 2, 2, 3, 3, ...)."""
    target = Target(ShortLink("team", business_id=7), "Shop", (agent(3), agent(1), agent(2)), None, 7, ())

    async def scenario() -> list[int | None]:
        one, two = await Service.open(Settings(db=pg_url)), await Service.open(Settings(db=pg_url))
        try:
            chosen = []
            for n in range(9):
                service = (one, two)[n % 2]
                destination = await service.in_turn(lambda rotation: resolve(target, None, rotation), True)
                assert destination is not None
                chosen.append(destination.agent_id)
            previewed = await one.in_turn(lambda rotation: resolve(target, None, rotation, advance=False), False)
            assert previewed is not None and previewed.agent_id in (1, 2, 3)  # a preview takes no turn
            destination = await two.in_turn(lambda rotation: resolve(target, None, rotation), True)
            assert destination is not None
            chosen.append(destination.agent_id)
            return chosen
        finally:
            await one.close()
            await two.close()

    assert asyncio.run(scenario()) == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1]


def test_the_sign_in_throttle_counts_tries_made_on_every_instance(pg_url: str) -> None:
    async def scenario() -> None:
        stores = [SharedStore(pg_url), SharedStore(pg_url)]
        one, two = (LoginThrottle(shared=store, secret=SIGN_IN_KEY) for store in stores)
        try:
            now = 1_800_000_000.0
            for n in range(5):  # five wrong tries for one name from one address, alternating instances
                assert await (one, two)[n % 2].check("anna", "203.0.113.9", now + n) == 0
            assert await one.check("anna", "203.0.113.9", now + 5) == 15 * 60 - 4  # the first try's age
            assert await two.check("anna", "203.0.113.9", now + 6) == 15 * 60 - 5
            assert await two.check("bruno", "203.0.113.9", now + 6) == 0  # another name from there may still try
            assert await one.check("anna", "203.0.113.9", now + 15 * 60 + 1) == 0  # the first try is past
            await two.passed("anna", "203.0.113.9")  # a right one: the pair's tries stop counting
            assert await one.check("anna", "203.0.113.9", now + 15 * 60 + 2) == 0
            with connect_db(pg_url) as db:
                keys = [k for (k,) in db.execute("SELECT key FROM login_failures")]
            assert len([k for k in keys if k.startswith("pair:") and k.endswith(":anna")]) == 1  # the last one
            plain = hashlib.sha256(b"203.0.113.9").hexdigest()[:32]  # undone by hashing every IPv4 address
            assert keys and not any(plain in k for k in keys)  # a keyed hash (a privacy review)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(scenario())


def test_every_instance_hashes_addresses_for_the_sign_in_throttle_with_one_key(pg_url: str) -> None:
    """The key comes from the signing key every instance shares: each counts the others' tries."""
    secrets = []
    for _ in range(2):
        with TestClient(create_app(Settings(db=pg_url)), base_url="http://127.0.0.1") as client:
            secrets.append(client.app.state.login_throttle.secret)  # type: ignore[attr-defined]
    assert secrets[0] == secrets[1] and len(secrets[0]) == 64
    with TestClient(create_app(Settings(db=pg_url, secret_keys="another-key-" + "k" * 40)),
                    base_url="http://127.0.0.1") as client:  # fmt: skip
        assert client.app.state.login_throttle.secret != secrets[0]  # type: ignore[attr-defined]


def test_a_name_past_its_count_is_paced_on_every_instance_not_locked(pg_url: str) -> None:
    """One try every `pace` seconds for the name, from any address, whichever instance takes it."""

    async def scenario() -> None:
        stores = [SharedStore(pg_url), SharedStore(pg_url)]
        one, two = (LoginThrottle(shared=store, user_attempts=6, pace=10, secret=SIGN_IN_KEY) for store in stores)
        try:
            now = 1_800_000_000.0
            for n in range(6):  # the name's count, from six addresses (one try each)
                assert await (one, two)[n % 2].check("anna", f"198.51.100.{n}", now) == 0
            assert await one.check("anna", "203.0.113.1", now + 1) == 0  # its turn
            assert await two.check("anna", "203.0.113.2", now + 2) == 10  # the next is ten seconds on
            assert await two.check("anna", "203.0.113.2", now + 12) == 0
        finally:
            for store in stores:
                await store.close()

    asyncio.run(scenario())


def test_a_scheduled_job_runs_on_one_instance_per_period(pg_url: str) -> None:
    async def scenario() -> list[bool]:
        one, two = SharedStore(pg_url), SharedStore(pg_url)
        try:
            now = 1_800_000_000
            return [
                await one.due("prune_clicks", now, 3600), await two.due("prune_clicks", now + 1, 3600),
                await one.due("prune_clicks", now + 3599, 3600), await two.due("prune_clicks", now + 3600, 3600),
                await one.due("prune_clicks", now + 3601, 3600), await one.due("sync_templates", now + 3601, 3600),
            ]  # fmt: skip
        finally:
            await one.close()
            await two.close()

    assert asyncio.run(scenario()) == [True, False, False, True, False, True]


def test_a_visitor_is_unique_once_whichever_instance_their_clicks_reach(pg_url: str) -> None:
    """Two writers with no salt yet: the first to need one makes it, the other takes it, so the
    visitor has one key; the database says who was seen within the window."""
    now = int(time.time()) // DAY * DAY + 60  # today's: one day's salt for every click here

    def click(at: int, address: str = "198.51.100.7") -> ClickEvent:
        return ClickEvent(at, "short", "saldi", "whatsapp", None, None, None, b"", "", IPHONE, address=address)

    async def scenario() -> tuple[int, int, int]:
        stores = [await Store.open(pg_url), await Store.open(pg_url)]
        shared = [SharedStore(pg_url), SharedStore(pg_url)]
        one, two = (ClickRecorder(store, Salts(1800), shared=s) for store, s in zip(stores, shared, strict=True))
        try:
            one.record(click(now))
            two.record(click(now + 1))
            two.record(click(now + 1, "198.51.100.8"))
            await one.flush()
            await two.flush()
            one.record(click(now + 2))
            await one.flush()
            two.record(click(now + 1803))  # past the window after the last click: new again
            await two.flush()
            assert one.salts.current == two.salts.current
        finally:
            for s in shared:
                await s.close()
            for store in stores:
                await store.close()
        with connect_db(pg_url) as db:
            return tuple(db.execute("SELECT sum(n), sum(uniques), count(DISTINCT visitor) FROM clicks").fetchone())

    assert asyncio.run(scenario()) == (5, 3, 2)


def test_a_new_signing_key_reaches_a_running_instance_at_once(pg_url: str) -> None:
    """What signed links are opened with, held in memory, from `keys rotate` in another process.
    (API keys and sessions are read from the database at every request: a revoked key or an
    ended session is refused by every instance at once.)"""
    with TestClient(create_app(Settings(db=pg_url)), base_url="http://127.0.0.1") as client:
        service: Service = client.app.state.service  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not client.app.state.watcher.listener.up:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "not listening"
            threading.Event().wait(0.05)
        keys = service.signer.keys
        cli("keys", "rotate", "--db", pg_url)
        done = time.monotonic()
        while service.signer.keys == keys:
            assert time.monotonic() - done < SEEN_WITHIN, "the new key was not loaded"
            threading.Event().wait(0.01)
        assert len(service.signer.keys) == len(keys) + 1


def test_salts_merge_to_the_newest_day_and_a_dropped_salt_stays_dropped() -> None:
    def salts(day: int, current: str, previous: str) -> str:
        return json.dumps({"day": day, "current": current, "previous": previous})

    assert merge_salts(salts(2, "bb", "aa"), salts(1, "aa", "")) == salts(2, "bb", "aa")  # ours: a new day
    assert merge_salts(salts(2, "cc", "aa"), salts(2, "bb", "aa")) == salts(2, "bb", "aa")  # theirs came first
    assert merge_salts(salts(2, "bb", ""), salts(2, "bb", "aa")) == salts(2, "bb", "")  # yesterday's let go
    assert merge_salts(salts(1, "aa", ""), salts(2, "bb", "aa")) == salts(2, "bb", "aa")  # behind: theirs


def test_one_sqlite_process_keeps_its_state_in_memory_as_before(sqlite_path: str) -> None:
    """The SQLite default stays light: no shared connection, the rotation and throttle in memory,
    uniques decided from the window's filters; migration 012's tables stay empty."""
    with TestClient(create_app(Settings(db=sqlite_path)), base_url="http://127.0.0.1") as client:
        service: Service = client.app.state.service  # type: ignore[attr-defined]
        assert service.shared is None and client.app.state.watcher.listener is None  # type: ignore[attr-defined]
        call(client, service.create_link(to="+39 347 000 0000", slug="saldi"))
        for _ in range(3):
            assert client.get("/s/saldi", headers={"user-agent": IPHONE}, follow_redirects=False).status_code == 302
        flush(client)
        assert client.get("/healthz").json() == {"status": "ok", "pending_clicks": 0}
    with connect_db(sqlite_path) as db:
        assert db.execute("SELECT sum(clicks), sum(uniques) FROM link_days").fetchone() == (3, 1)
        for table in ("rotations", "login_failures", "seen_visitors", "job_runs"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


# -- the same key, written by two instances at once ---------------------------------------
# Each of these was a 500, or a wrong answer, when two requests for the same thing reached two
# instances together (found by a review): both looked, found nothing, and wrote.


async def two_instances(pg_url: str) -> tuple[Service, Service, int]:
    """Two instances on one database, and a business with a connected number and a template."""
    one, two = await Service.open(Settings(db=pg_url)), await Service.open(Settings(db=pg_url))
    shop = await one.add_business("Dolce Vita", "Europe/Rome")
    await one.whatsapp.chats.connect_number(
        shop.id, NUMBER.phone_number_id, NUMBER.waba_id, NUMBER.display_phone_number, NUMBER.verified_name,
        NUMBER.access_token, NUMBER.app_secret, hashlib.sha256(b"verify").hexdigest(), int(time.time()),
    )  # fmt: skip
    for service in (one, two):
        await service.whatsapp.reload()
    return one, two, shop.id


def test_one_number_signing_up_twice_at_once_gets_one_confirmation(pg_url: str) -> None:
    """A double opt-in sent twice at once (a double tap reaching two instances): one request, and
    the other is told one is waiting."""

    async def scenario() -> list[object]:
        one, two, shop = await two_instances(pg_url)
        try:
            now, outcomes = int(time.time()), []
            for n in range(20):
                outcomes += await asyncio.gather(*(
                    service.whatsapp.chats.add_request(shop, None, f"3934712345{n:02d}", "orders", "page", "Yes", "1",
                                                       None, now, now + DAY, DAY)
                    for service in (one, two)
                ), return_exceptions=True)  # fmt: skip
            return outcomes
        finally:
            await one.close()
            await two.close()

    outcomes = asyncio.run(scenario())
    assert [type(outcome) for outcome in outcomes].count(OptinRequest) == 20, outcomes
    assert [type(outcome) for outcome in outcomes].count(PendingExists) == 20, outcomes


def test_one_reply_key_sent_twice_at_once_with_two_texts_is_one_message_and_a_conflict(pg_url: str) -> None:
    """The loser was told its message was queued, and handed the winner's."""

    async def scenario() -> list[object]:
        one, two, _ = await two_instances(pg_url)
        try:
            now = int(time.time())
            value = inbound_message(wamid=new_wamid("393471234567"), timestamp=now, wa_id="393471234567",
                                    user_id=None, name="Giulia", text="Ciao!")  # fmt: skip
            body = encode(webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                                       display_phone_number=NUMBER.display_phone_number, value=value))  # fmt: skip
            await one.whatsapp.journal.add(body, [NUMBER.phone_number_id], now)
            await one.whatsapp.processor.run_once()
            (conversation,) = await one.whatsapp.chats.conversations()
            return await asyncio.gather(*(
                service.whatsapp.reply(conversation.id, text, "same-key", "cli")
                for service, text in zip((one, two) * 4, ["one", "two"] * 4, strict=True)
            ), return_exceptions=True)  # fmt: skip
        finally:
            await one.close()
            await two.close()

    outcomes = asyncio.run(scenario())
    asked = ["one", "two"] * 4
    queued = [(asked[n], outcome) for n, outcome in enumerate(outcomes) if isinstance(outcome, tuple)]
    assert [created for _, (_, created) in queued].count(True) == 1, outcomes
    assert len({row.id for _, (row, _) in queued}) == 1  # one message, and each got the text it asked for
    assert all(row.payload["text"]["body"] == text for text, (row, _) in queued) and len(queued) == 4, outcomes
    assert all(isinstance(outcome, Conflict) for outcome in outcomes if not isinstance(outcome, tuple)), outcomes


def test_two_template_syncs_at_once_end_with_the_templates_meta_lists(pg_url: str) -> None:
    """They deadlocked on PostgreSQL when Meta listed them in two orders."""
    listed = [Template(f"t{n}", "en_US", "APPROVED", "UTILITY", "Ciao", (), []) for n in range(20)]

    async def scenario() -> tuple[list[object], list[str]]:
        one, two, _ = await two_instances(pg_url)
        try:
            (number,) = await one.whatsapp.chats.numbers()
            outcomes = await asyncio.gather(*(
                service.whatsapp.chats.replace_templates(number.id, listed[::order], int(time.time()))
                for service, order in zip((one, two) * 4, (1, -1) * 4, strict=True)
            ), return_exceptions=True)  # fmt: skip
            return outcomes, [template.name for template, _ in await two.whatsapp.chats.templates(number.id)]
        finally:
            await one.close()
            await two.close()

    outcomes, names = asyncio.run(scenario())
    assert outcomes == [None] * 8 and names == sorted(template.name for template in listed)


def test_the_template_sync_that_commits_last_leaves_exactly_its_list(pg_url: str) -> None:
    """Found by a review: a sync that began while another was writing kept what the other wrote,
    a template Meta no longer listed among them (its DELETE could not see rows committed later)."""
    listed = [Template(name, "en_US", "APPROVED", "UTILITY", "Ciao", (), []) for name in ("t0", "tx")]

    async def arranged() -> int:
        one, two, _ = await two_instances(pg_url)
        (number,) = await one.whatsapp.chats.numbers()
        await one.close()
        await two.close()
        return number.id

    async def sync(templates: list[Template]) -> list[str]:
        service = await Service.open(Settings(db=pg_url))
        try:
            await service.whatsapp.chats.replace_templates(number_id, templates, int(time.time()))
            return [template.name for template, _ in await service.whatsapp.chats.templates(number_id)]
        finally:
            await service.close()

    number_id = asyncio.run(arranged())
    names: list[list[str]] = []
    with connect_db(pg_url) as other:  # another instance's sync of both templates, not committed yet
        other.execute("BEGIN")
        other.execute("SELECT 1 FROM whatsapp_numbers WHERE id = ? FOR NO KEY UPDATE", (number_id,))
        other.execute("INSERT INTO message_templates (number_id, name, language, status, category, body_parameters,"
                      " body, components, synced_at) VALUES (?, 't0', 'en_US', 'APPROVED', 'UTILITY', 0, 'Ciao',"
                      " '{}', 0), (?, 'tx', 'en_US', 'APPROVED', 'UTILITY', 0, 'Ciao', '{}', 0)",
                      (number_id, number_id))  # fmt: skip
        later = threading.Thread(target=lambda: names.append(asyncio.run(sync(listed[:1]))))  # tx is gone now
        later.start()
        until_waiting_for_a_lock(pg_url, "the later sync")
        other.execute("COMMIT")
    later.join()
    assert names == [["t0"]]


# -- a database restart --------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own: it is stopped and started again, which the session's must not be."""
    with PostgresServer.start(tmp_path / "pg") as server:
        server.create_database("app")
        yield server


def make_saldi(url: str) -> None:
    """The short link `saldi` to one number, made through the Service as the CLI would."""

    async def make() -> None:
        service = await Service.open(Settings(db=url))
        try:
            await service.create_link(to="+39 347 000 0000", slug="saldi")
        finally:
            await service.close()

    asyncio.run(make())


def until_health(client: TestClient, want: str, seconds: float) -> dict[str, object]:
    """/healthz polled until it says `want` (bounded: a generous limit, not a timing assumption)."""
    deadline = time.monotonic() + seconds
    while (health := client.get("/healthz").json())["status"] != want:
        assert time.monotonic() < deadline, health
        threading.Event().wait(0.05)
    return health


def test_clicks_wait_through_a_database_restart_and_health_says_degraded(
        own_server: PostgresServer, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    url = own_server.url("app")
    make_saldi(url)
    phone = {"user-agent": IPHONE}
    sent = 0

    with TestClient(create_app(Settings(db=url, flush_interval=0.2)), base_url="http://127.0.0.1") as client:

        def click() -> str:
            nonlocal sent
            response = client.get("/s/saldi", headers=phone, follow_redirects=False)
            assert response.status_code == 302
            sent += 1
            return response.headers["location"]

        until_health(client, "ok", 10)
        click()
        own_server.halt()
        for _ in range(5):  # answered from the cache, kept in memory
            assert click() == "https://wa.me/393470000000"
        # A link not in the cache needs the database: a moment to wait, said in the visitor's language,
        # not a 500 with two tracebacks a request (found from outside).
        client.app.away_warn_every = 3600  # type: ignore[attr-defined]  # one warning, however slow the machine
        away = client.get("/s/mai-vista", headers=phone | {"accept": "application/json"}, follow_redirects=False)
        assert away.status_code == 503 and away.headers["retry-after"] == "5"
        page = client.get("/s/mai-vista", headers=phone | {"accept-language": "it"}, follow_redirects=False)
        assert page.status_code == 503 and "Per un momento non riusciamo ad aprire questo link" in page.text
        key = {"authorization": "Bearer ctc_" + "x" * 40}  # a 404 with a key to check while the database is away
        assert client.get("/api/v1/businesses/abc", headers=key).status_code == 404
        said = [r for r in caplog.records if r.name == "clicktochat.app"]
        assert [r.levelname for r in said if "not answering" in r.getMessage()] == ["WARNING"]  # once, not a request
        assert not [r for r in said if r.levelno >= logging.ERROR or r.exc_info]
        health = until_health(client, "degraded", 10)
        assert health["pending_clicks"] in (5, 6)  # the first one may have been written before
        shared = client.app.state.service.shared  # type: ignore[attr-defined]
        with pytest.raises(Unreachable):  # a turn of the rotation, say: the instance does without
            call(client, shared.take_turn(7, [1, 2]))
        team = Target(ShortLink("team", business_id=7), "Shop", (agent(1), agent(2)), None, 7, ())
        service: Service = client.app.state.service  # type: ignore[attr-defined]
        turns = [call(client, service.in_turn(lambda rotation: resolve(team, None, rotation), True)) for _ in "ab"]
        assert [turn.agent_id for turn in turns] == [1, 2]  # type: ignore[attr-defined]  # its own turns
        # The background loops (the watcher, the writer, the outbox, the webhook processor) say it in
        # a line each, not a traceback a loop (found by an operator's review restarting PostgreSQL).
        call(client, client.app.state.watcher.run_once())  # type: ignore[attr-defined]  # each at least once now
        call(client, client.app.state.recorder.run_once())  # type: ignore[attr-defined]
        match_failed._at = None  # the processor's step that ties chats to clicks: its warning is due now
        with pytest.raises(psycopg.OperationalError):  # its loop catches it; alone it says it
            call(client, client.app.state.service.whatsapp.processor.run_once())  # type: ignore[attr-defined]
        loops = [r for r in caplog.records if r.name.startswith("clicktochat") and r.name != "clicktochat.app"]
        assert not [r for r in loops if r.levelno >= logging.ERROR or r.exc_info], [r.getMessage() for r in loops]
        for name in ("clicktochat.listen", "clicktochat.clicks", "clicktochat.webhooks"):
            said = {r.levelname for r in loops if r.name == name and "not answering" in r.getMessage()}
            assert said == {"WARNING"}, name  # once a loop, though a loop's own tick may have said it first
        own_server.resume()
        health = until_health(client, "ok", 15)
        assert call(client, service.whatsapp.chats.numbers()) == []  # the WhatsApp side's connection, reopened
        deadline = time.monotonic() + 30
        while client.get("/healthz").json()["pending_clicks"]:
            assert time.monotonic() < deadline, "clicks not written after the restart"
            threading.Event().wait(0.05)
        with connect_db(url) as db:  # an edit by another process is heard again
            db.execute("UPDATE links SET address = '393470000009' WHERE slug = 'saldi'")
        done = time.monotonic()
        while click() != "https://wa.me/393470000009":
            assert time.monotonic() - done < SEEN_WITHIN
    with connect_db(url) as db:  # every click, written once (the app's shutdown wrote the last ones)
        (raw,) = db.execute("SELECT sum(n) FROM clicks WHERE link_key = 'saldi'").fetchone()
        (totals,) = db.execute("SELECT sum(clicks) FROM link_days WHERE link_key = 'saldi'").fetchone()
    assert raw == totals == sent


def test_an_instance_holds_five_named_connections_and_opens_none_per_request(pg_url: str) -> None:
    """What the README tells operators to size max_connections by: five a running instance, named
    in pg_stat_activity, however many requests it answers."""
    name = pg_url.rsplit("/", 1)[1]

    def connections() -> list[str]:
        with connect_db(pg_url) as db:
            rows = db.execute("SELECT application_name FROM pg_stat_activity WHERE datname = ?"
                              " AND pid <> pg_backend_pid() ORDER BY 1", (name,)).fetchall()  # fmt: skip
        return [row[0] for row in rows]

    make_saldi(pg_url)
    with TestClient(create_app(Settings(db=pg_url)), base_url="http://127.0.0.1") as client:
        until_health(client, "ok", 10)  # the listener connects in the background
        service: Service = client.app.state.service  # type: ignore[attr-defined]
        assert service.shared is not None  # opened at its first use: a scheduled job's turn, say
        assert call(client, service.shared.due("connections-test", time.time(), 60)) is True
        started = connections()
        assert started == ["clicktochat listen", "clicktochat shared", *["clicktochat store"] * 3]
        for _ in range(50):
            assert client.get("/s/saldi", headers={"user-agent": IPHONE}, follow_redirects=False).status_code == 302
            assert client.get("/s/nothing-here").status_code == 404
        assert client.get("/api/v1/links", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert connections() == started
    deadline = time.monotonic() + 10
    while connections():  # all closed at shutdown (a backend leaves pg_stat_activity as it exits)
        assert time.monotonic() < deadline, connections()
        threading.Event().wait(0.05)
