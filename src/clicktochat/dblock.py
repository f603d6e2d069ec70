"""Who has the database open. Every process that opens it through `Store` (a server, a CLI
command) holds a shared lock (flock) on the file `<db>-lock` for as long as it has it open;
`clicktochat restore` takes that lock exclusively, so it can tell a database in use from one at
rest, and nothing opens the database while its file is being replaced.

Why a lock file and not SQLite's own locks: in WAL mode an idle connection holds no lock that
another process can test (a `BEGIN EXCLUSIVE` succeeds next to a running server between two of
its writes), and replacing the file under a server would go unnoticed until its next write.
The kernel drops a flock when the process that held it ends, however it ends (kill -9, a power
cut), so a lock file is never stale: the empty file itself means nothing."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .database import is_postgres, redacted


class InUse(OSError):
    """The lock is held the other way: a restore is under way, or the database is open."""


class NotAFile(ValueError):
    """A PostgreSQL URL given where only a SQLite file makes sense."""


def lock_path(db: str | Path) -> Path:
    """`<db>-lock` beside the file itself: a server and a command reaching it through a symlink
    and through its real path take the same lock."""
    return Path(f"{Path(db).resolve()}-lock")


class DatabaseLock:
    """Held until `release()` (or the process ends). Shared: any number of servers and commands;
    exclusive: nobody else. Never waits: a lock held the other way raises `InUse` at once."""

    def __init__(self, db: str | Path, exclusive: bool = False) -> None:
        if is_postgres(str(db)):  # a URL would make a file named after it, password and all
            raise NotAFile(f"{redacted(str(db))} is a PostgreSQL database, not a file: it has no lock file. PostgreSQL "
                           "locks its own tables; to replace its contents, stop the servers and use pg_restore")
        path = lock_path(db)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)  # flock needs no write access
        try:
            _same_owner(fd, Path(db))
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if exclusive:
                raise InUse(f"{db} is in use by a running clicktochat (a server, or another command)") from None
            raise InUse(f"{db} is being restored (clicktochat restore); start again once it has finished") from None
        except BaseException:
            os.close(fd)
            raise
        self.fd: int | None = fd

    @contextlib.contextmanager
    def alone(self, why: str) -> Iterator[None]:
        """The lock held exclusively for a while (a schema upgrade): `InUse`, saying `why`, when
        another process has the database open; shared again after."""
        assert self.fd is not None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # trying to convert it let ours go
            raise InUse(why) from None
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file drops the lock
            self.fd = None

    def __enter__(self) -> DatabaseLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_owner(fd: int, db: Path) -> None:
    """Run as root (`sudo clicktochat ...` on a service's database), give the lock file to the
    database's owner (its folder's, before it exists), as SQLite does with its -wal and -shm
    files: else the service's own user could not open it."""
    if os.geteuid() != 0:
        return
    owner = db.stat() if db.exists() else db.parent.stat()
    if os.fstat(fd).st_uid != owner.st_uid:
        os.fchown(fd, owner.st_uid, owner.st_gid)
