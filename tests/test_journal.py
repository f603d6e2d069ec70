"""The webhook journal (SQLite): bodies appended before the 200, moved into `webhook_events`
later, once each; torn frames after a crash, drains from other processes, erasure and backups
never miss or keep a body."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from clicktochat.backup import backup, restore
from clicktochat.cli import cli
from clicktochat.conversations import parse
from clicktochat.journal import Journal, drain_file, frame, journal_dir, locked, read_frames, segments
from clicktochat.payloads import batch, encode, inbound_message, new_wamid, sign, webhook_body
from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import NUMBER, WhatsAppSetup, connect_db

pytestmark = pytest.mark.sqlite  # PostgreSQL has no journal: its bodies go straight into the database
URL = "/webhooks/whatsapp"


def body_from(wa_id: str, text: str = "Ciao") -> bytes:
    value = inbound_message(wamid=new_wamid(wa_id), timestamp=1_798_000_000, wa_id=wa_id, user_id=None, name="Ana",
                            text=text)  # fmt: skip
    return encode(webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                               display_phone_number=NUMBER.display_phone_number, value=value))  # fmt: skip


def framed(body: bytes, numbers: list[str], now: int) -> bytes:
    return b"".join(frame(body, numbers, now))


def post(setup: WhatsAppSetup, body: bytes) -> int:
    headers = {"content-type": "application/json", "x-hub-signature-256": sign(body, NUMBER.app_secret)}
    return int(setup.client.post(URL, content=body, headers=headers).status_code)


def in_database(db: str) -> list[bytes]:
    with connect_db(db) as conn:
        return [bytes(b) for (b,) in conn.execute("SELECT body FROM webhook_events ORDER BY id")]


def in_journal(db: str) -> list[bytes]:
    return [f.body for path in segments(journal_dir(db)) for f in read_frames(path)]


def test_a_body_is_appended_before_the_200_and_moved_and_applied_later(whatsapp: WhatsAppSetup, db_path: str) -> None:
    journal = whatsapp.service.whatsapp.journal
    assert journal.on
    body = body_from("393471234567")
    assert post(whatsapp, body) == 200
    assert in_journal(db_path) == [body] and in_database(db_path) == []  # the 200 waited for the append only
    assert journal.backlog > len(body)
    whatsapp.process()  # the processor moves, then applies
    assert in_database(db_path) == [body] and in_journal(db_path) == [] and journal.backlog == 0
    conversations = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert [c["wa_id"] for c in conversations] == ["393471234567"]


def test_the_same_body_twice_is_kept_once(whatsapp: WhatsAppSetup, db_path: str) -> None:
    body = body_from("393471234567")
    assert post(whatsapp, body) == 200 and post(whatsapp, body) == 200
    assert in_journal(db_path) == [body, body]
    whatsapp.process()
    assert in_database(db_path) == [body]


def test_a_body_simdjson_refuses_goes_to_sqlite_which_decides(whatsapp: WhatsAppSetup, db_path: str) -> None:
    big = b'{"object": "whatsapp_business_account", "n": 123456789012345678901234567890, "entry": []}'
    assert post(whatsapp, big) == 200  # valid JSON, beyond simdjson's 64-bit numbers: json_valid accepts it
    assert in_journal(db_path) == [] and in_database(db_path) == [big]
    broken = b'{"object": "whatsapp_business_account", "entry": [}'
    assert post(whatsapp, broken) == 400
    assert in_journal(db_path) == [] and in_database(db_path) == [big]


def test_moves_in_batches_keep_the_order_of_arrival(whatsapp: WhatsAppSetup, db_path: str) -> None:
    bodies = [body_from(f"39347{i:07d}") for i in range(7)]
    for body in bodies[:3]:
        assert post(whatsapp, body) == 200
    journal = whatsapp.service.whatsapp.journal
    assert whatsapp.run(journal.move(2)) == 2  # sealed the first segment, moved two of its three
    for body in bodies[3:]:
        assert post(whatsapp, body) == 200
    assert in_database(db_path) == bodies[:2]
    assert whatsapp.run(journal.move(None)) == 5
    assert in_database(db_path) == bodies and in_journal(db_path) == []


def test_a_drain_from_another_process_takes_the_segment_being_written(whatsapp: WhatsAppSetup, db_path: str) -> None:
    first, second = body_from("393470000001"), body_from("393470000002")
    assert post(whatsapp, first) == 200
    assert drain_file(db_path) == 1  # what `clicktochat backup` does, on its own connection
    assert in_database(db_path) == [first] and segments(journal_dir(db_path)) == []
    assert post(whatsapp, second) == 200  # the server saw its segment gone and started another
    assert in_journal(db_path) == [second]
    whatsapp.process()
    assert in_database(db_path) == [first, second]


def test_the_server_keeps_write_lock_across_a_burst_and_lets_go_of_it(whatsapp: WhatsAppSetup, db_path: str) -> None:
    """Taking write.lock for every body cost more than writing it: an append takes it and keeps
    it for the next ones; the processor's round (or HOLD s later, a timer: the drain tests)
    lets go, so a drain waits that long at most."""
    whatsapp.service.whatsapp.journal.hold = 3600  # here, only the round lets go
    bodies = [body_from(f"39347000000{i}") for i in range(3)]
    for body in bodies:
        assert post(whatsapp, body) == 200
    with locked(journal_dir(db_path) / "write.lock", wait=False) as held:
        assert not held  # the server has it
    whatsapp.process()  # a round: moved, and the lock let go
    with locked(journal_dir(db_path) / "write.lock", wait=False) as held:
        assert held
    assert in_database(db_path) == bodies
    last = body_from("393470000009")
    assert post(whatsapp, last) == 200  # taken again
    assert in_journal(db_path) == [last]


def test_while_a_drain_holds_the_journal_bodies_go_straight_to_the_database(whatsapp: WhatsAppSetup,
                                                                           db_path: str) -> None:  # fmt: skip
    body = body_from("393471234567")
    with locked(journal_dir(db_path) / "write.lock") as held:
        assert held
        assert post(whatsapp, body) == 200
        assert in_database(db_path) == [body] and in_journal(db_path) == []


def test_past_its_backlog_the_journal_sends_bodies_to_the_database(whatsapp: WhatsAppSetup, db_path: str) -> None:
    journal = whatsapp.service.whatsapp.journal
    journal.max_backlog = 1
    first, second = body_from("393470000001"), body_from("393470000002")
    assert post(whatsapp, first) == 200 and post(whatsapp, second) == 200
    assert in_journal(db_path) == [first] and in_database(db_path) == [second]


async def journal_starts(db_path: str) -> bool:
    """What a server starting on the file does first with the journal: True if it journals."""
    service = await Service.open(Settings(db=db_path, base_url="https://chat.example.com"))
    try:
        return await service.whatsapp.journal.start()
    finally:
        await service.close()


def test_only_one_server_journals_for_a_file(whatsapp: WhatsAppSetup, db_path: str) -> None:
    assert asyncio.run(journal_starts(db_path)) is False
    assert whatsapp.service.whatsapp.journal.on


def test_after_a_crash_the_next_server_moves_what_was_left_up_to_a_torn_frame(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    asyncio.run(_fresh(db_path))  # a database, and no server on it
    directory = journal_dir(db_path)
    directory.mkdir(mode=0o700)
    bodies = [body_from(f"39347{i:07d}") for i in range(3)]
    whole = b"".join(framed(b, [NUMBER.phone_number_id], 1_798_000_000 + i) for i, b in enumerate(bodies))
    torn = framed(body_from("393479999999"), [NUMBER.phone_number_id], 1_798_000_100)
    (directory / "000000000007.seg").write_bytes(whole + torn[: len(torn) // 2])  # killed in mid-append
    (directory / "000000000003.seg").write_bytes(framed(bodies[0], [NUMBER.phone_number_id], 1_797_999_999))

    with caplog.at_level(logging.WARNING, logger="clicktochat.journal"):
        assert asyncio.run(journal_starts(db_path))
    assert in_database(db_path) == bodies  # once each, in order; the torn frame dropped
    assert "cut short or damaged" in caplog.text and segments(directory) == []
    with connect_db(db_path) as conn:
        assert conn.execute("SELECT received_at FROM webhook_events ORDER BY id").fetchall() == [
            (1_797_999_999,), (1_798_000_001,), (1_798_000_002,)]  # the time each first arrived


async def _fresh(db_path: str) -> None:
    service = await Service.open(Settings(db=db_path))
    await service.close()


def test_a_body_damaged_on_disk_is_kept_and_skipped_when_applied(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    asyncio.run(_fresh(db_path))
    directory = journal_dir(db_path)
    directory.mkdir(mode=0o700)
    bodies = [b'{"n": %d}' % i for i in range(3)]
    frames = [framed(b, ["1"], i) for i, b in enumerate(bodies)]
    data = bytearray(b"".join(frames))
    data[len(frames[0]) + len(frames[1]) - 2] = 0  # in the second frame's body, as a power cut's zeroed page
    (directory / "000000000001.seg").write_bytes(bytes(data))
    assert drain_file(db_path) == 3
    assert in_database(db_path) == [bodies[0], b'{"n": \x00}', bodies[2]]  # kept as it is: nothing acknowledged is lost
    with caplog.at_level(logging.WARNING, logger="clicktochat.conversations"):
        assert parse(in_database(db_path)[1], ["1"]) == []  # what the processor makes of it: nothing, said
    assert "not JSON that can be read" in caplog.text


def test_erasing_a_customer_leaves_nothing_of_them_in_the_journal(whatsapp: WhatsAppSetup, db_path: str) -> None:
    assert post(whatsapp, body_from("393471234567", "Mi chiamo Giulia")) == 200
    whatsapp.process()
    assert post(whatsapp, body_from("393471234567", "Ancora io")) == 200  # still in the journal
    assert any(b"Ancora io" in b for b in in_journal(db_path))
    answer = whatsapp.client.delete("/api/v1/customers/+393471234567", headers=whatsapp.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["deleted"]["webhook_events"] == 2
    assert in_journal(db_path) == [] and in_database(db_path) == [b"", b""]  # emptied; their hashes kept
    leftovers = b"".join(p.read_bytes() for p in journal_dir(db_path).iterdir() if p.is_file())
    assert b"393471234567" not in leftovers


def test_an_export_counts_bodies_still_in_the_journal(whatsapp: WhatsAppSetup) -> None:
    assert post(whatsapp, body_from("393471234567")) == 200
    answer = whatsapp.client.get("/api/v1/customers/+393471234567", headers=whatsapp.auth)
    assert answer.json()["webhook_bodies_held"] == 1


def test_a_backup_holds_the_bodies_still_in_the_journal(whatsapp: WhatsAppSetup, db_path: str,
                                                        tmp_path: Path) -> None:  # fmt: skip
    body = body_from("393471234567")
    assert post(whatsapp, body) == 200
    copy = backup(Path(db_path), tmp_path / "copy.db")
    with sqlite3.connect(copy.path) as conn:
        assert [bytes(b) for (b,) in conn.execute("SELECT body FROM webhook_events")] == [body]


def test_a_journal_that_is_not_started_stores_straight_into_the_database(whatsapp: WhatsAppSetup,
                                                                          db_path: str) -> None:  # fmt: skip
    intake = whatsapp.service.whatsapp.intake
    journal = Journal(intake)  # as in a command, or a second server
    body = encode(batch([]))
    assert whatsapp.run(journal.add(body, [NUMBER.phone_number_id], 1_798_000_000)).value == "stored"
    assert in_database(db_path) == [body]


def test_a_restore_leaves_what_a_killed_server_journaled_with_the_database_it_sets_aside(
    db_path: str, tmp_path: Path
) -> None:
    asyncio.run(_fresh(db_path))
    copy = backup(Path(db_path), tmp_path / "before.db")  # a backup without the body
    directory = journal_dir(db_path)
    directory.mkdir(mode=0o700)
    body = body_from("393471234567")
    (directory / "000000000001.seg").write_bytes(framed(body, [NUMBER.phone_number_id], 1_798_000_000))
    restored = restore(copy.path, Path(db_path))
    assert restored.aside is not None and not directory.exists()  # the restored database gets none of it
    assert in_journal(str(restored.aside)) == [body] and in_database(db_path) == []
    assert drain_file(restored.aside) == 1 and in_database(str(restored.aside)) == [body]


def test_a_failed_append_goes_to_the_database_and_lets_go_of_the_lock(whatsapp: WhatsAppSetup, db_path: str,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    journal = whatsapp.service.whatsapp.journal
    first, second, third = (body_from(f"39347000000{i}") for i in range(3))
    assert post(whatsapp, first) == 200 and in_journal(db_path) == [first]
    read_only = os.open(tmp_path / "read-only", os.O_RDONLY | os.O_CREAT)
    os.dup2(read_only, journal._fd)  # type: ignore[arg-type]  # the segment can no longer be written, as on a full disk
    os.close(read_only)
    assert post(whatsapp, second) == 200
    assert in_database(db_path) == [second]  # straight into the database
    with locked(journal_dir(db_path) / "write.lock", wait=False) as free:
        assert free  # a drain is not held off by a body waiting for the database
    assert post(whatsapp, third) == 200 and in_journal(db_path) == [first, third]  # a new segment
    whatsapp.process()
    assert sorted(in_database(db_path)) == sorted([first, second, third]) and in_journal(db_path) == []


def test_a_body_starting_with_a_byte_order_mark_is_refused_as_before(whatsapp: WhatsAppSetup, db_path: str) -> None:
    body = b"\xef\xbb\xbf" + body_from("393471234567")  # simdjson would skip the mark; JSON has none
    assert post(whatsapp, body) == 400
    assert in_journal(db_path) == [] and in_database(db_path) == []


def test_a_server_that_found_another_journaling_takes_over_once_it_is_gone(db_path: str) -> None:
    body = body_from("393471234567")

    async def scenario() -> tuple[bool, bool, list[bytes], bool]:
        first = await Service.open(Settings(db=db_path, base_url="https://chat.example.com"))
        second = await Service.open(Settings(db=db_path, base_url="https://chat.example.com"))
        try:
            assert await first.whatsapp.journal.start()
            took = await second.whatsapp.journal.start()
            await first.whatsapp.journal.add(body, [NUMBER.phone_number_id], 1_798_000_000)
            left = in_journal(db_path)
            os.close(first.whatsapp.journal._owner)  # type: ignore[arg-type]  # killed: the kernel lets its locks go
            first.whatsapp.journal._owner = None
            await second.whatsapp.journal.take_over(every=0)
            return took, second.whatsapp.journal.on, left, in_journal(db_path) == []
        finally:
            await second.close()
            await first.close()

    took, took_later, left, emptied = asyncio.run(scenario())
    assert not took and took_later and left == [body] and emptied
    assert in_database(db_path) == [body]


def test_a_restore_without_a_database_still_keeps_an_old_journal_out_of_the_restored_one(
    db_path: str, tmp_path: Path
) -> None:
    asyncio.run(_fresh(db_path))
    copy = backup(Path(db_path), tmp_path / "before.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    directory = journal_dir(db_path)
    directory.mkdir(mode=0o700)
    (directory / "000000000001.seg").write_bytes(framed(body_from("393471234567"), [NUMBER.phone_number_id], 1))
    restore(copy.path, Path(db_path))
    assert not directory.exists() and in_database(db_path) == []
    [kept] = directory.parent.glob(f"{directory.name}.before-restore-*")
    assert len(segments(kept)) == 1


def test_restore_says_where_the_bodies_a_killed_server_left_went(db_path: str, tmp_path: Path) -> None:
    asyncio.run(_fresh(db_path))
    copy = backup(Path(db_path), tmp_path / "before.db")
    directory = journal_dir(db_path)
    directory.mkdir(mode=0o700)
    (directory / "000000000001.seg").write_bytes(framed(body_from("393471234567"), [NUMBER.phone_number_id], 1))
    result = CliRunner().invoke(cli, ["restore", str(copy.path), "--db", db_path])
    assert result.exit_code == 0, result.output
    [aside] = Path(db_path).parent.glob(f"{Path(db_path).name}.before-restore-*[0-9]")
    assert f"Webhook bodies its server had not moved yet are in {journal_dir(aside)}" in result.output
    assert f"clicktochat backup COPY --db {aside}" in result.output


def test_a_full_disk_is_a_503_with_retry_after_and_stores_nothing(whatsapp: WhatsAppSetup, db_path: str) -> None:
    intake = whatsapp.service.whatsapp.intake
    whatsapp.run(intake.run(lambda: intake.db.execute("VACUUM")))  # no free page left by a migration's dropped tables
    pages = whatsapp.run(intake.run(lambda: intake.db.execute("PRAGMA page_count").fetchone()[0]))
    whatsapp.run(intake.run(lambda: intake.db.execute(f"PRAGMA max_page_count = {pages}")))  # no room to grow
    body = body_from("393471234567", "x" * 20_000)
    headers = {"content-type": "application/json", "x-hub-signature-256": sign(body, NUMBER.app_secret)}
    with locked(journal_dir(db_path) / "write.lock"):  # a drain under way: the body goes to the full database
        answer = whatsapp.client.post(URL, content=body, headers=headers)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "60", answer.text
    assert "disk is full" in answer.json()["detail"]
    assert in_database(db_path) == [] and in_journal(db_path) == []
