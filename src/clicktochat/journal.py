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
  a body is checked again as it is moved (SQLite's `json_valid`), which is what a power cut's
  zeroed pages would fail, and that check costs nothing while Meta waits;
- `owner.lock`: the one server that journals holds it for its lifetime (another server on the
  same file, or one that cannot write here, stores straight into SQLite: `Intake`);
- `write.lock`: taken, without waiting, around each append; whoever drains takes it (waiting),
  so no body is appended to a segment while it is being emptied; an append that finds it taken
  goes to `Intake` instead;
- `move.lock`: whoever moves segments into SQLite (the server's mover, a drain) holds it, so a
  segment is never moved by two at once, nor moved after a drain has removed it.

The server seals its segment (closes it and starts the next) at each move, and moves sealed
segments a batch at a time, oldest first; a segment is removed once every frame of it is
committed. A frame moved twice (a crash between the commit and the removal) is kept once:
`webhook_events.body_hash` is unique. `drain` moves everything, the segment being written
too, and is what `customer export`/`erase`, `backup`, `db copy` and `restore` call first, in
any process: no body acknowledged to Meta is ever missed by them, nor left in a segment after
an erase."""

from __future__ import annotations

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import simdjson

from .database import is_postgres
from .intake import Intake, Taken

log = logging.getLogger(__name__)

MAGIC = b"CTW1"
FRAME = struct.Struct("<4sIqH")  # magic, body length, received_at, numbers length
MOVE_BATCH = 200  # frames a move commits at once (and, under a burst, at most per MAX_YIELD)
MAX_BACKLOG = 1024 * 1024 * 1024  # bytes waiting to be moved; past it bodies go straight into SQLite
SUFFIX = ".seg"
APPEND = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC


def journal_dir(db: str | Path) -> Path:
    return Path(f"{db}-webhooks")


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


def read_frames(path: Path, offset: int = 0, limit: int | None = None) -> Iterator[Frame]:
    """Whole frames from `offset`, at most `limit`; stops quietly at the end, and with a warning
    at a frame cut short or corrupted (nothing after it can be trusted)."""
    with open(path, "rb") as file:
        file.seek(offset)
        size = os.fstat(file.fileno()).st_size
        count = 0
        while limit is None or count < limit:
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
            count += 1
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
    """Frames into webhook_events, in one transaction; returns how many were new. A body that
    is not JSON any more (damaged on disk by a power cut) is left out, and logged."""
    rows = []
    for f in frames:
        try:
            text = f.body.decode()
        except UnicodeDecodeError:
            text = ""
        rows.append((f.received_at, hashlib.sha256(f.body).hexdigest(), f.body, f.numbers, text))
    db.execute("BEGIN IMMEDIATE")
    try:
        before = db.total_changes
        damaged = 0
        for row in rows:
            cursor = db.execute("INSERT INTO webhook_events (received_at, body_hash, body, numbers) SELECT ?, ?, ?, ?"
                                " WHERE json_valid(?) ON CONFLICT (body_hash) DO NOTHING", row)  # fmt: skip
            if not cursor.rowcount and not db.execute("SELECT 1 FROM webhook_events WHERE body_hash = ?",
                                                      (row[1],)).fetchone():  # fmt: skip
                damaged += 1
        new = db.total_changes - before
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if damaged:
        log.warning("webhook journal: %d bodies damaged on disk were left out", damaged)
    return new


def move_segment(db: sqlite3.Connection, path: Path, offset: int, limit: int | None) -> tuple[int, int, bool]:
    """Frames of a sealed segment from `offset` into the database, `limit` at most (in
    transactions of MOVE_BATCH); the segment is removed once all are in. Returns (frames moved,
    the offset reached, whether the segment is done). Call with `move.lock` held."""
    moved, done = 0, False
    while limit is None or moved < limit:
        batch = list(read_frames(path, offset, MOVE_BATCH if limit is None else min(MOVE_BATCH, limit - moved)))
        if batch:
            insert(db, batch)
            moved, offset = moved + len(batch), batch[-1].end
        if len(batch) < MOVE_BATCH and (limit is None or moved < limit):
            done = True
            break
    if done:
        path.unlink(missing_ok=True)
    return moved, offset, done


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
    `intake`; a body simdjson finds invalid goes there too, to have SQLite's `json_valid` decide
    exactly as before (numbers too large for simdjson, say)."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.directory = journal_dir(intake.path)
        self._owner: int | None = None
        self._write_lock: int | None = None
        self._fd: int | None = None
        self._seq = 0
        self._size = 0  # bytes in the segment being written
        self._sealed: list[Sealed] = []  # oldest first
        self._parser = simdjson.Parser()
        self._last_arrival = 0.0
        self.max_backlog = MAX_BACKLOG
        self.appended = 0  # bodies appended (tests and benchmarks read it)

    @property
    def on(self) -> bool:
        return self._fd is not None

    @property
    def last_arrival(self) -> float:
        return max(self._last_arrival, self.intake.last_arrival)

    @property
    def backlog(self) -> int:
        """Bytes appended and not yet moved (as this server knows them)."""
        return self._size + sum(s.left for s in self._sealed)

    async def start(self) -> bool:
        """Become the journaling server for this file and move what a previous one left."""
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
            return False
        self._owner = owner
        moved = await self.intake.run(drain, self.intake.db, self.directory)
        if moved:
            log.info("moved %d webhook bodies left in the journal into the database", moved)
        self._write_lock = os.open(self.directory / "write.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._open_next()
        return True

    def _open_next(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        while True:
            self._seq += 1
            try:
                self._fd = os.open(self.directory / f"{self._seq:012d}{SUFFIX}", APPEND, 0o600)
                break
            except FileExistsError:
                continue
        self._size = 0

    def _valid(self, body: bytes) -> bool:
        try:
            self._parser.parse(body)
        except (ValueError, RuntimeError):  # simdjson's errors (and UnicodeDecodeError, a ValueError)
            return False
        return True

    async def add(self, body: bytes, numbers: Sequence[str], now: int) -> Taken:
        """Keep a signed body; returns once it is on its way to disk (appended, or committed).
        simdjson checks the UTF-8 too: the body is decoded only when it goes to `intake`."""
        if self._fd is None or self.backlog >= self.max_backlog or not self._valid(body):
            return await self._to_database(body, numbers, now)
        assert self._write_lock is not None
        try:
            fcntl.flock(self._write_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a drain is emptying the journal
            return await self._to_database(body, numbers, now)
        try:
            if os.fstat(self._fd).st_nlink == 0:  # a drain took this segment
                self._open_next()
            parts = frame(body, numbers, now)
            size = sum(len(part) for part in parts)
            try:
                written = os.writev(self._fd, parts)
                if written != size:
                    raise OSError(f"only {written} of {size} bytes written")
            except OSError as exc:  # a full disk, say: cut the partial frame off, and try the database
                log.warning("could not append a webhook body to the journal (%s); storing it in the database", exc)
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                return await self._to_database(body, numbers, now)
        finally:
            fcntl.flock(self._write_lock, fcntl.LOCK_UN)
        self._size += size
        self.appended += 1
        self._last_arrival = time.monotonic()
        return Taken.STORED

    async def _to_database(self, body: bytes, numbers: Sequence[str], now: int) -> Taken:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return Taken.NOT_UTF8
        return await self.intake.add(body, text, numbers, now)

    def seal(self) -> None:
        """Close the segment being written (if it holds anything) and start the next."""
        if self._fd is None or not self._size:
            return
        self._sealed.append(Sealed(self.directory / f"{self._seq:012d}{SUFFIX}", 0, self._size))
        self._open_next()

    async def move(self, limit: int | None = None) -> int:
        """Seal, then move sealed segments into the database, `limit` frames at most (None: all).
        Returns the frames moved."""
        self.seal()
        moved = 0
        while self._sealed and (limit is None or moved < limit):
            oldest = self._sealed[0]
            count, reached, done = await self.intake.run(self._move_locked, oldest.path, oldest.offset,
                                                         None if limit is None else limit - moved)  # fmt: skip
            moved += count
            oldest.left, oldest.offset = max(0, oldest.left - (reached - oldest.offset)), reached
            if done:
                self._sealed.pop(0)
        return moved

    def _move_locked(self, path: Path, offset: int, limit: int | None) -> tuple[int, int, bool]:
        with locked(self.directory / "move.lock"):
            if not path.exists():  # a drain moved it
                return 0, offset, True
            return move_segment(self.intake.db, path, offset, limit)

    async def drain(self) -> int:
        """Everything in the journal into the database (any process: see `drain`)."""
        if self.intake.postgres:
            return 0
        moved = await self.intake.run(drain, self.intake.db, self.directory)
        self._sealed = [s for s in self._sealed if s.path.exists()]
        if self._fd is not None and os.fstat(self._fd).st_nlink == 0:
            self._open_next()
        return moved

    async def close(self) -> None:
        """Move everything, then let go of the journal (the next server starts from an empty one)."""
        if self._fd is None:
            return
        try:
            await self.intake.run(drain, self.intake.db, self.directory)
        finally:
            for fd in (self._fd, self._write_lock, self._owner):
                if fd is not None:
                    os.close(fd)
            self._fd = self._write_lock = self._owner = None
            self._sealed = []
