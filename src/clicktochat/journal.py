"""Webhook bodies appended to flat files beside the SQLite database before the 200, and moved
into `webhook_events` in the lulls (SQLite only; PostgreSQL keeps `intake.Intake`).

Why: storing a 40 KiB body in SQLite costs more CPU than the whole bare request (see
docs/performance.md), so under a burst of Meta's POSTs the database was the ceiling. Appending
a framed body to a file is one `writev`; the page cache outlives the process, so a kill -9
after the 200 loses nothing (as with SQLite's `synchronous=NORMAL`, which does not fsync each
commit either). The SQLite work is the same, done later, when no body is arriving.

On disk, `<db>-webhooks/` (0700):
- segments `<seq>.seg`: frames, each `MAGIC, body length, received_at, numbers length`, then
  the numbers (JSON) and the body. A frame cut short (a kill -9 in the middle of a write, which
  was never acknowledged) ends the segment, and what it held is logged as dropped. No checksum:
  a body whose bytes a power cut damaged is moved as it is, and the processor skips what is not
  JSON, with a warning (nothing acknowledged is thrown away here);
- `owner.lock`: the one server that journals holds it for its lifetime (another server on the
  same file stores straight into SQLite, `Intake`, and tries again now and then: `take_over`);
- `write.lock`: taken, without waiting, by an append, and kept HOLD s for the appends that
  follow; whoever drains takes it (waiting), so no body is appended to a segment while it is
  being emptied; an append that finds it taken goes to `Intake` instead, and an append that
  fails lets go of it before it does;
- `move.lock`: whoever moves segments into SQLite holds it, so a segment is never moved by two
  at once, nor after a drain has removed it. The server's mover never waits for it (a round a
  drain holds off moves nothing), so Intake's thread never waits behind a drain.

The server seals its segment (closes it and starts the next) at each move, and moves sealed
segments a batch at a time (MOVE_BATCH bodies or MOVE_BYTES), oldest first; a segment is
removed once every frame of it is committed. A frame moved twice (a crash between the commit
and the removal) is kept once: `webhook_events.body_hash` is unique. `drain` moves everything,
the segment being written too, on a connection of its own; `customer export`/`erase`,
`backup` and `db copy` call it first, in any process: none of them misses a body acknowledged
to Meta, and an erased person's words are not left in a segment. `restore` sets the folder
aside with the database it replaces."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import sqlite3
import struct
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import simdjson

from .database import is_postgres, log_failure
from .intake import Intake, Taken

log = logging.getLogger(__name__)

MAGIC = b"CTW1"
FRAME = struct.Struct("<4sIqH")  # magic, body length, received_at, numbers length
MOVE_BATCH = 200  # frames a move commits at once, in a lull (under a burst, webhooks.BURST_BATCH a round)
HOLD = 0.05  # seconds write.lock is kept after an append takes it (for the appends that follow)
MOVE_BYTES = 32 * 1024 * 1024  # ...or fewer, once their bodies reach this
MAX_BACKLOG = 4 * 1024 * 1024 * 1024  # bytes waiting to be moved; past it bodies go straight into SQLite
SUFFIX = ".seg"
APPEND = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC


def journal_dir(db: str | Path) -> Path:
    """`<db>-webhooks`, beside the file itself (a symlinked path names the same folder)."""
    return Path(f"{Path(db).resolve()}-webhooks")


def frame(body: bytes, numbers: Sequence[str], now: int) -> list[bytes]:
    """The frame's parts, for one `writev` (the body is not copied)."""
    listed = listed_numbers(tuple(numbers))
    return [FRAME.pack(MAGIC, len(body), now, len(listed)) + listed, body]


@functools.lru_cache(maxsize=64)
def listed_numbers(numbers: tuple[str, ...]) -> bytes:
    return json.dumps(list(numbers), separators=(",", ":")).encode()


@dataclass
class Frame:
    received_at: int
    numbers: str  # JSON list of phone number ids
    body: bytes
    end: int  # offset just past it


def read_frames(path: Path, offset: int = 0) -> Generator[Frame, None, None]:
    """Whole frames from `offset`; stops quietly at the end, and with a warning at a frame cut
    short or corrupted (nothing after it can be trusted)."""
    with open(path, "rb") as file:
        file.seek(offset)
        size = os.fstat(file.fileno()).st_size
        while True:
            head = file.read(FRAME.size)
            if not head:
                return
            broken = len(head) < FRAME.size
            if not broken:
                magic, length, received_at, listed_length = FRAME.unpack(head)
                listed, body = file.read(listed_length), file.read(length)
                broken = magic != MAGIC or len(listed) < listed_length or len(body) < length
            if broken:
                log.warning("webhook journal %s: the frame at byte %d is cut short or damaged;"
                            " %d bytes from there are dropped", path, offset, size - offset)  # fmt: skip
                return
            offset = file.tell()
            yield Frame(received_at, listed.decode(), body, offset)


def segments(directory: Path) -> list[Path]:
    try:
        names = [p for p in directory.iterdir() if p.suffix == SUFFIX and p.stem.isdigit()]
    except FileNotFoundError:
        return []
    return sorted(names, key=lambda p: int(p.stem))


@dataclass
class Sealed:
    path: Path
    offset: int = 0  # moved up to here
    left: int = 0  # bytes not yet moved


@contextlib.contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive flock on `path` (made if missing); yields False if `wait` is off and it is taken."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing drops the lock


def insert(db: sqlite3.Connection, frames: Sequence[Frame]) -> int:
    """Frames into webhook_events, in one transaction; returns how many were new (the same bytes
    moved again, after a crash between a commit and a removal, are kept once)."""
    rows = [(f.received_at, hashlib.sha256(f.body).hexdigest(), f.body, f.numbers) for f in frames]
    db.execute("BEGIN IMMEDIATE")
    try:
        before = db.total_changes
        db.executemany("INSERT INTO webhook_events (received_at, body_hash, body, numbers) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (body_hash) DO NOTHING", rows)  # fmt: skip
        new = db.total_changes - before
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite has rolled back by itself on a full disk
            db.execute("ROLLBACK")
        raise
    return new


def move_segment(db: sqlite3.Connection, path: Path, offset: int, limit: int | None) -> tuple[int, int, bool]:
    """Frames of a sealed segment from `offset` into the database, `limit` at most, in
    transactions of MOVE_BATCH frames or MOVE_BYTES (Meta's bodies reach 2 MiB: memory stays
    bounded by bytes, not by bodies); the segment is removed once all are in. Returns (frames
    moved, the offset reached, whether the segment is done). Call with `move.lock` held."""
    moved, ended = 0, False
    with contextlib.closing(read_frames(path, offset)) as frames:
        while not ended and (limit is None or moved < limit):
            batch: list[Frame] = []
            size, most = 0, MOVE_BATCH if limit is None else min(MOVE_BATCH, limit - moved)
            for found in frames:
                batch.append(found)
                size += len(found.body)
                if len(batch) >= most or size >= MOVE_BYTES:
                    break
            else:
                ended = True
            if batch:
                insert(db, batch)
                moved, offset = moved + len(batch), batch[-1].end
    if ended:
        path.unlink(missing_ok=True)
    return moved, offset, ended


def drain(db: sqlite3.Connection, directory: Path) -> int:
    """Every frame in the journal moved into the database and every segment removed, the one a
    running server is writing too (it starts another). Returns the frames moved. Waits for a
    move or an append under way to finish; appends during the drain go to `Intake`."""
    if not directory.is_dir():
        return 0
    moved = 0
    with locked(directory / "move.lock"), locked(directory / "write.lock"):
        for path in segments(directory):
            moved += move_segment(db, path, 0, None)[0]
    return moved


def drain_file(db: str | Path) -> int:
    """`drain` for a database file, on a connection of its own (commands that read the file
    itself: backup, db copy)."""
    if is_postgres(str(db)) or not journal_dir(db).is_dir():
        return 0
    with contextlib.closing(sqlite3.connect(str(db), isolation_level=None, timeout=10)) as conn:
        conn.execute("PRAGMA secure_delete = ON")
        return drain(conn, journal_dir(db))


class Journal:
    """The server's side: appends (on the event loop), seals and moves (the move on `intake`'s
    thread and connection). Until `start()` succeeds, and on PostgreSQL, every body goes to
    `intake`; so does a body simdjson refuses, to have SQLite's `json_valid` decide as before
    (numbers beyond 64 bits, say), and one that starts with a byte-order mark, which simdjson
    skips and `json_valid` refuses."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.directory = journal_dir(intake.path)
        self._owner: int | None = None
        self._write_lock: int | None = None
        self._holding = False  # this server holds write.lock (taken by an append, kept until `let_go`)
        self._hold_timer: asyncio.TimerHandle | None = None
        self.hold = HOLD  # (tests set it)
        self._fd: int | None = None
        self._seq = 0
        self._size = 0  # bytes in the segment being written
        self._sealed: list[Sealed] = []  # oldest first
        self._parser = simdjson.Parser()
        self._last_arrival = 0.0
        self._retry = False  # start() found another server journaling, or could not drain: take_over() tries again
        self._tried_at = 0.0
        self.max_backlog = MAX_BACKLOG

    @property
    def on(self) -> bool:
        return self._owner is not None

    @property
    def last_arrival(self) -> float:
        return max(self._last_arrival, self.intake.last_arrival)

    @property
    def backlog(self) -> int:
        """Bytes appended and not yet moved (as this server knows them)."""
        return self._size + sum(s.left for s in self._sealed)

    async def start(self) -> bool:
        """Become the journaling server for this file and move what a previous one left; False
        (bodies go straight into SQLite) on PostgreSQL, or while another server journals."""
        self._tried_at = time.monotonic()
        if self.intake.postgres or self.on:
            return self.on
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            owner = os.open(self.directory / "owner.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("webhook bodies go straight into the database: cannot use %s (%s)", self.directory, exc)
            return False
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another server on this file journals; this one stores straight into SQLite
            os.close(owner)
            self._retry = True
            return False
        self._retry = False
        try:
            moved = await self._drain()
            self._write_lock = os.open(self.directory / "write.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except Exception:  # the database locked or full, say: serve from SQLite alone, and try again later
            os.close(owner)
            log_failure(log, "could not move what the webhook journal holds into the database")
            self._retry = True
            return False
        except BaseException:
            os.close(owner)
            raise
        self._owner = owner
        if moved:
            log.info("moved %d webhook bodies left in the journal into the database", moved)
        with contextlib.suppress(OSError):  # else the first append tries again
            self._open_next()
        return True

    async def take_over(self, every: float = 5.0) -> None:
        """A server that found another journaling, or could not move what the journal held,
        tries again now and then: once that one has stopped (or was killed, leaving bodies
        behind), or the database takes writes again, this one moves them and journals."""
        if self._retry and not self.on and time.monotonic() - self._tried_at >= every:
            await self.start()

    def _segment(self) -> Path:
        """The segment being written (`_seq`'s)."""
        return self.directory / f"{self._seq:012d}{SUFFIX}"

    def _open_next(self) -> None:
        """Close the segment being written and start the next (OSError if it cannot be made)."""
        fd, self._fd, self._size = self._fd, None, 0
        if fd is not None:
            os.close(fd)
        while True:
            self._seq += 1
            try:
                self._fd = os.open(self._segment(), APPEND, 0o600)
                return
            except FileExistsError:
                continue

    def _valid(self, body: bytes) -> bool:
        if body.startswith(b"\xef\xbb\xbf"):  # simdjson skips a byte-order mark; JSON (RFC 8259) has none
            return False
        try:
            self._parser.parse(body)
        except (ValueError, RuntimeError):  # simdjson's errors (and UnicodeDecodeError, a ValueError)
            return False
        return True

    async def add(self, body: bytes, numbers: Sequence[str], now: int) -> Taken:
        """Keep a signed body; returns once it is on its way to disk (appended, or committed).
        simdjson checks the UTF-8 too: the body is decoded only when it goes to `intake`."""
        valid = self._valid(body)
        if self._write_lock is None or self.backlog >= self.max_backlog or not valid:
            return await self._to_database(body, numbers, now, valid)
        if not self._append(body, numbers, now):  # the lock is let go before the database is waited for
            return await self._to_database(body, numbers, now, True)
        self._last_arrival = time.monotonic()
        return Taken.STORED

    def _append(self, body: bytes, numbers: Sequence[str], now: int) -> bool:
        """One `writev` of the framed body, under `write.lock`; False if a drain holds the lock
        or the segment cannot be written (a full disk: what was written is cut off again).

        The lock is taken by an append and kept for the appends of the next HOLD seconds (then
        `let_go`, on a timer): taking and letting go of it for every body, and checking the
        segment each time, cost more than the write does (docs/performance.md). A drain, in
        this process or another, waits HOLD s at most."""
        assert self._write_lock is not None
        if not self._holding:
            try:
                fcntl.flock(self._write_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a drain is emptying the journal
                return False
            self._holding = True
            self._hold_timer = asyncio.get_running_loop().call_later(self.hold, self.let_go)
            try:
                if self._fd is not None and os.fstat(self._fd).st_nlink == 0:  # a drain took it
                    os.close(self._fd)
                    self._fd = None
            except OSError:
                self._fd = None
        try:
            if self._fd is None:
                self._open_next()
            assert self._fd is not None
            parts = frame(body, numbers, now)
            size = sum(len(part) for part in parts)
            written = os.writev(self._fd, parts)
            if written != size:
                raise OSError(f"only {written} of {size} bytes written")
        except OSError as exc:
            log.warning("could not append a webhook body to the journal (%s); storing it in the database", exc)
            self._retire()
            self.let_go()
            return False
        self._size += size
        return True

    def let_go(self) -> None:
        """Let go of `write.lock` (kept across a burst's appends): a drain may take it now."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if self._holding and self._write_lock is not None:
            fcntl.flock(self._write_lock, fcntl.LOCK_UN)
        self._holding = False

    def _retire(self) -> None:
        """After a failed write: cut off what it wrote, keep the segment's whole frames for the
        mover (sealed), and leave the next append to start a new segment."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, self._size)
        with contextlib.suppress(OSError):
            os.close(fd)
        if self._size:
            self._sealed.append(Sealed(self._segment(), 0, self._size))
        else:  # nothing in it: a full disk must not leave a file per body
            self._segment().unlink(missing_ok=True)
        self._size = 0

    async def _to_database(self, body: bytes, numbers: Sequence[str], now: int, checked: bool) -> Taken:
        """`checked`: simdjson parsed it; else the intake checks it with `read_json`'s rules."""
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return Taken.NOT_UTF8
        return await self.intake.add(body, text, numbers, now, checked)

    def seal(self) -> None:
        """Close the segment being written (if it holds anything) and start the next; let go of
        `write.lock`."""
        self.let_go()
        if self._fd is None or not self._size:
            return
        self._sealed.append(Sealed(self._segment(), 0, self._size))
        try:
            self._open_next()
        except OSError as exc:  # the next append tries again
            log.warning("could not start a new webhook journal segment (%s)", exc)

    async def move(self, limit: int | None = None) -> int:
        """Seal, then move sealed segments into the database, `limit` frames at most (None: all).
        Returns the frames moved. A round a drain holds off (`move.lock`) moves nothing: the
        drain moves them."""
        self.seal()
        moved = 0
        while self._sealed and (limit is None or moved < limit):
            oldest = self._sealed[0]
            result = await self.intake.run(self._move_locked, oldest.path, oldest.offset,
                                           None if limit is None else limit - moved)  # fmt: skip
            if result is None:
                break
            count, reached, done = result
            moved += count
            oldest.left, oldest.offset = max(0, oldest.left - (reached - oldest.offset)), reached
            if done and self._sealed and self._sealed[0] is oldest:  # a drain may have emptied the list meanwhile
                self._sealed.pop(0)
        return moved

    def _move_locked(self, path: Path, offset: int, limit: int | None) -> tuple[int, int, bool] | None:
        """None when a drain holds `move.lock`: Intake's thread never waits behind a drain, as
        bodies stored straight into the database wait on that thread."""
        with locked(self.directory / "move.lock", wait=False) as held:
            if not held:
                return None
            if not path.exists():  # a drain moved it
                return 0, offset, True
            return move_segment(self.intake.db, path, offset, limit)

    async def _drain(self) -> int:
        """`drain_file` on a thread and connection of its own: appends that find it under way
        go straight to the database on Intake's, and never wait behind it."""
        return await asyncio.to_thread(drain_file, self.intake.path)

    async def drain(self) -> int:
        """Everything in the journal into the database (any process: see `drain`)."""
        if self.intake.postgres:
            return 0
        self.let_go()  # else the drain's thread would wait for it
        moved = await self._drain()
        self._sealed[:] = [s for s in self._sealed if s.path.exists()]
        return moved

    async def close(self) -> None:
        """Stop appending, move everything, then let go of the journal (a server stopped cleanly
        leaves it empty)."""
        self.let_go()
        fd, self._fd = self._fd, None
        write_lock, self._write_lock = self._write_lock, None  # appends from now go to the database
        if fd is not None:
            os.close(fd)
        try:
            if self._owner is not None:
                await self._drain()
        finally:
            for held in (write_lock, self._owner):
                if held is not None:
                    os.close(held)
            self._owner = None
            self._sealed = []
            self._size = 0
