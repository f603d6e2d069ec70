"""Webhook bodies stored before the 200 (intake.py): one transaction for the bodies that
arrive together, the same bytes stored once, and what is not JSON never stored."""

from __future__ import annotations

import asyncio
import time

import pytest

from clicktochat.intake import Taken
from clicktochat.journal import MOVE_BATCH
from clicktochat.payloads import encode, sign
from clicktochat.webhooks import BURST_BATCH, MAX_YIELD, QUIET
from conftest import NUMBER, WhatsAppSetup, connect_db
from test_journal import post
from test_webhooks import URL, stored, text_body


def test_bodies_that_arrive_together_share_one_commit(whatsapp: WhatsAppSetup) -> None:
    intake = whatsapp.service.whatsapp.intake
    bodies = [encode(text_body(f"Ciao {n}")) for n in range(5)]
    before = intake.rounds

    async def together() -> list[Taken]:
        return list(await asyncio.gather(*(intake.add(b, b.decode(), [NUMBER.phone_number_id], 1) for b in bodies)))

    assert whatsapp.run(together()) == [Taken.STORED] * 5
    assert intake.rounds == before + 1 and stored(whatsapp) == 5
    again = whatsapp.run(together())
    assert again == [Taken.AGAIN] * 5 and stored(whatsapp) == 5


def test_one_round_tells_stored_again_and_not_json_apart(whatsapp: WhatsAppSetup) -> None:
    intake = whatsapp.service.whatsapp.intake
    first, second, bad = encode(text_body("Uno")), encode(text_body("Due")), b'{"a": NaN}'
    before = intake.rounds

    async def together(bodies: list[bytes]) -> list[Taken]:
        return list(await asyncio.gather(*(intake.add(b, b.decode(), [NUMBER.phone_number_id], 1) for b in bodies)))

    assert whatsapp.run(together([first])) == [Taken.STORED]
    assert whatsapp.run(together([second, first, bad, second])) == [Taken.STORED, Taken.AGAIN, Taken.NOT_JSON,
                                                                    Taken.AGAIN]  # fmt: skip
    assert intake.rounds == before + 2 and stored(whatsapp) == 2


def test_a_signed_body_that_is_not_json_or_not_utf8_is_refused_and_not_stored(whatsapp: WhatsAppSetup) -> None:
    for body in (b'{"object": "whatsapp_business_account",}', b'{"a": "\xff"}', b"NaN", b"{'a': 1}", b""):
        answer = whatsapp.client.post(URL, content=body, headers={
            "content-type": "application/json", "x-hub-signature-256": sign(body, NUMBER.app_secret)})  # fmt: skip
        assert answer.status_code == 400, body
        assert "not valid JSON" in answer.json()["detail"]
    assert stored(whatsapp) == 0
    ok = encode(text_body("Ciao"))
    answer = whatsapp.client.post(URL, content=ok, headers={
        "content-type": "application/json", "x-hub-signature-256": sign(ok, NUMBER.app_secret)})  # fmt: skip
    assert answer.status_code == 200 and stored(whatsapp) == 1


def test_applying_waits_while_bodies_arrive_but_never_for_ever(whatsapp: WhatsAppSetup) -> None:
    processor, intake = whatsapp.service.whatsapp.processor, whatsapp.service.whatsapp.intake
    now = time.monotonic()
    intake.last_arrival = now - 10 * QUIET  # quiet: apply now
    assert processor.wait_before_applying(now, 0.0) == 0.0
    intake.last_arrival = now  # a body just came: wait for a lull
    assert processor.wait_before_applying(now, 0.0) == QUIET
    assert processor.wait_before_applying(now, MAX_YIELD - QUIET / 2) == pytest.approx(QUIET / 2)  # not past MAX_YIELD
    assert processor.wait_before_applying(now, MAX_YIELD) == 0.0


def test_under_a_burst_a_round_applies_one_body(whatsapp: WhatsAppSetup) -> None:
    """A round's SQLite work takes the GIL in turns with the event loop: while bodies keep
    coming, a round applies (and moves) BURST_BATCH bodies; in a lull, its batch."""
    processor, intake = whatsapp.service.whatsapp.processor, whatsapp.service.whatsapp.intake
    processor.max_yield = 0.0  # no waiting here: the round is due
    intake.last_arrival = time.monotonic() + 3600  # bodies still coming
    assert whatsapp.run(processor.yield_to_intake()) == BURST_BATCH < processor.batch
    intake.last_arrival = time.monotonic() - 10 * QUIET  # a lull
    assert whatsapp.run(processor.yield_to_intake()) == processor.batch
    for phone in ("393470000001", "393470000002", "393470000003"):
        assert post(whatsapp, encode(text_body("Ciao", phone))) == 200
    assert whatsapp.run(processor.run_once(BURST_BATCH, BURST_BATCH)) == 1  # what a round under a burst does
    assert processor.moved == (1 if whatsapp.service.whatsapp.journal.on else 0)  # PostgreSQL: no journal
    assert whatsapp.run(processor.run_once(MOVE_BATCH)) == 2


@pytest.mark.postgresql  # a SQLite file has no connection to lose
def test_the_intake_connects_again_after_postgresql_dropped_it(whatsapp: WhatsAppSetup) -> None:
    """A restart of the server (here: its connection ended by an administrator): the intake's
    BEGIN finds the connection gone, sends it once more on a new one (nothing was written that a
    second try could double), and the body is stored before the 200, once."""
    intake = whatsapp.service.whatsapp.intake
    pid = whatsapp.run(intake.run(lambda: intake.db.info.backend_pid))  # type: ignore[attr-defined]
    with connect_db(whatsapp.service.settings.db) as admin:
        assert admin.execute("SELECT pg_terminate_backend(?)", (pid,)).fetchone()[0]
    body = encode(text_body("Ciao"))
    headers = {"content-type": "application/json", "x-hub-signature-256": sign(body, NUMBER.app_secret)}
    assert whatsapp.client.post(URL, content=body, headers=headers).status_code == 200
    assert stored(whatsapp) == 1
    assert whatsapp.client.post(URL, content=body, headers=headers).status_code == 200  # Meta, again
    assert stored(whatsapp) == 1
    assert whatsapp.run(intake.run(lambda: intake.db.info.backend_pid)) != pid  # type: ignore[attr-defined]