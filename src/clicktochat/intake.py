"""Webhook bodies written to the database before they are acknowledged.

Two things make this cheap under a burst of Meta's POSTs:
- a group commit: bodies that arrive while a transaction is being written wait for the next
  one, so a burst costs one commit per round, not one per body;
- its own SQLite connection on its own thread, where the work on a body runs with the GIL
  released: its SHA-256 (hashlib lets go of the GIL for large buffers), the check that it is
  JSON (SQLite's `json_valid`, in C, inside the INSERT; on PostgreSQL, which has none,
  `is_json` in Python on the same thread, and one INSERT a round) and the write. The event loop keeps only the HTTP,
  the signature and the UTF-8 check, and an acknowledgement never waits behind the processor
  applying earlier bodies (WAL: the two connections share the file; SQLite
  serialises their writes, and the processor keeps its transactions short).

`last_arrival` tells the processor when the last body came: applying yields to receiving."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any

import simdjson

from .chatdb import ChatDB


class Taken(Enum):
    STORED = "stored"
    AGAIN = "again"  # the same bytes were stored before: Meta delivering again
    NOT_JSON = "not json"  # nothing stored
    NOT_UTF8 = "not utf-8"  # nothing stored


Row = tuple[int, bytes, str, str, bool]  # received_at, body, body as text, numbers (JSON), read by simdjson already


class Intake(ChatDB):
    def __init__(self, path: str) -> None:
        super().__init__(path, "clicktochat-intake")
        self._waiting: list[tuple[Row, asyncio.Future[Taken]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.last_arrival = 0.0  # time.monotonic() of the last body, 0 before the first
        self.rounds = 0  # transactions written (bodies / rounds: how well commits are shared)

    async def add(self, body: bytes, text: str, numbers: Sequence[str], now: int, checked: bool = False) -> Taken:
        """Store a signed body (`text`: the same, decoded from UTF-8); returns once it is
        committed, or once it is known not to be JSON. `checked`: simdjson parsed it (the
        journal's check), so `read_json` will; otherwise `is_json` decides, on this thread."""
        future: asyncio.Future[Taken] = asyncio.get_running_loop().create_future()
        self._waiting.append(((now, body, text, json.dumps(list(numbers)), checked), future))
        self.last_arrival = time.monotonic()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="clicktochat-intake")
        return await future  # a client that hangs up cancels only its own wait: the commit goes on

    async def _flush(self) -> None:
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            try:
                taken = await self.run(self._insert, [row for row, _ in waiting])
            except Exception as exc:  # a locked or broken database: every waiting request gets a 5xx
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(waiting, taken, strict=True):
                if not future.done():
                    future.set_result(result)

    def _insert(self, rows: list[Row]) -> list[Taken]:
        self.rounds += 1
        hashes = [hashlib.sha256(body).hexdigest() for _, body, _, _, _ in rows]
        # What read_json cannot read is not taken: SQLite's json_valid takes more (nesting to
        # 2,000, numbers past 64 bits at any depth), and such a body got its 200, then was skipped.
        valid = [checked or is_json(text) for _, _, text, _, checked in rows]

        def work(db: sqlite3.Connection) -> list[Taken]:
            if self.postgres:
                return self._insert_postgres(db, rows, hashes, valid)
            taken = []
            for (now, body, text, numbers, _), digest, ok in zip(rows, hashes, valid, strict=True):
                if not ok:
                    taken.append(Taken.NOT_JSON)
                    continue
                cursor = db.execute(
                    "INSERT INTO webhook_events (received_at, body_hash, body, numbers) SELECT ?, ?, ?, ?"
                    " WHERE json_valid(?) ON CONFLICT (body_hash) DO NOTHING", (now, digest, body, numbers, text),
                )  # fmt: skip
                if cursor.rowcount:
                    taken.append(Taken.STORED)
                elif self._one("SELECT 1 FROM webhook_events WHERE body_hash = ?", (digest,)):
                    taken.append(Taken.AGAIN)
                else:
                    taken.append(Taken.NOT_JSON)
            return taken

        return self._retry(work)

    def _insert_postgres(self, db: sqlite3.Connection, rows: list[Row], hashes: list[str],
                         valid: list[bool]) -> list[Taken]:  # fmt: skip
        """PostgreSQL has no json_valid, and a failed cast would fail the whole round: the check
        is `is_json` (`valid`), and the JSON bodies go in one statement (one round trip), which
        says which it stored; the others were stored before."""
        json_rows = [(now, digest, body, numbers)
                     for (now, body, _, numbers, _), digest, ok in zip(rows, hashes, valid, strict=True) if ok]
        stored: set[str] = set()
        if json_rows:
            cursor = db.execute(
                "INSERT INTO webhook_events (received_at, body_hash, body, numbers) VALUES"
                f" {', '.join(['(?, ?, ?, ?)'] * len(json_rows))}"
                " ON CONFLICT (body_hash) DO NOTHING RETURNING body_hash",
                [value for row in json_rows for value in row],
            )  # fmt: skip
            stored = {row[0] for row in cursor.fetchall()}
        taken = []
        for digest, ok in zip(hashes, valid, strict=True):
            if digest in stored:
                taken.append(Taken.STORED)
                stored.discard(digest)  # the same bytes twice in one round: the second came again
            else:
                taken.append(Taken.AGAIN if ok else Taken.NOT_JSON)
        return taken


def is_json(text: str) -> bool:
    """Whether a body is JSON that `read_json` reads: the check before a body is stored (on
    PostgreSQL, which has no json_valid, and on SQLite for a body simdjson refused)."""
    try:
        read_json(text)
    except ValueError:
        return False
    return True


def read_json(data: str | bytes) -> Any:
    """JSON as a stored body is read, the same answer from any thread, so that what the intake
    takes the processor reads (a review found bodies taken with a 200, then skipped).

    simdjson first (C++: nesting to 1,024 whatever the caller's stack; 12 % faster than
    json.loads on Meta's bodies); what it refuses, Python's parser on a thread of its own:
    integers past 64 bits (past 4,300 digits, kept as their digits), numbers past a double, an
    escaped lone surrogate. ValueError if neither reads it: not JSON (NaN, a byte-order mark),
    nested deeper than 1,024, or a number simdjson refuses nested deeper than Python reaches."""
    if data.startswith(b"\xef\xbb\xbf") if isinstance(data, bytes) else data.startswith("\ufeff"):
        raise ValueError("a byte-order mark: not JSON (RFC 8259)")  # simdjson would skip it
    try:
        return simdjson.loads(data)
    except (ValueError, RuntimeError) as exc:  # RuntimeError: its DEPTH_ERROR, BIGINT_ERROR
        if "DEPTH_ERROR" in str(exc):
            raise ValueError(f"not JSON that can be read: {exc}") from None
    try:
        return _PYTHON.submit(_python_json, data).result()
    except RecursionError:
        raise ValueError("not JSON that can be read: a number simdjson refuses, nested too deep") from None


def _python_json(data: str | bytes) -> Any:
    text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, bytes) else data
    return _DECODER.decode(text)


def _whole(digits: str) -> int | str:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else digits


MAX_INT_DIGITS = 4000  # Python refuses int() of more than 4,300 digits (sys.get_int_max_str_digits)


def _refuse(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_refuse, parse_int=_whole)  # json.loads's options, made once
# One thread for Python's parser: how deep it reaches depends on the stack it starts from, so the
# intake's check and the processor's read must start from the same one.
_PYTHON = ThreadPoolExecutor(1, thread_name_prefix="clicktochat-json")
