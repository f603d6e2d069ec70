"""database.py's PostgreSQL connection: what it adds to psycopg's (copy_rows). Marked
`postgresql`: it runs on a real server in both passes of the suite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from clicktochat import database

pytestmark = pytest.mark.postgresql

HEAD = "INSERT INTO tally (day, name, n, flag)"
UPSERT = " ON CONFLICT (day, name) DO UPDATE SET n = tally.n + excluded.n"


@pytest.fixture
def conn(db_path: str) -> Iterator[Any]:
    conn = database.connect(db_path)
    conn.execute("CREATE TABLE tally (day TEXT NOT NULL, name TEXT, n BIGINT NOT NULL, flag BIGINT,"
                 " id BIGINT GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (day, name))")  # fmt: skip
    try:
        yield conn
    finally:
        conn.close()


def rows(conn: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute("SELECT day, name, n, flag FROM tally ORDER BY day, name").fetchall()]


def test_copy_rows_writes_rows_as_an_insert_would(conn: Any) -> None:
    conn.copy_rows(HEAD, [("2026-12-01", "a\0b", 3, True), ("2026-12-02", "ü 👋", 1, None)])  # its own transaction
    assert not conn.in_transaction
    # NUL, which PostgreSQL's text cannot hold, becomes U+FFFD (as `execute` binds it); booleans are 0/1.
    assert rows(conn) == [("2026-12-01", "a\ufffdb", 3, 1), ("2026-12-02", "ü 👋", 1, None)]


def test_an_upsert_adds_to_the_rows_there_and_inserts_the_others(conn: Any) -> None:
    conn.copy_rows(HEAD, [("d1", "a", 1, 0), ("d1", "b", 2, 0)])
    conn.execute("BEGIN")
    conn.copy_rows(HEAD, [("d1", "b", 10, 0), ("d2", "a", 5, 0)], UPSERT)
    conn.copy_rows(HEAD, [("d1", "a", 100, 0)], UPSERT)  # the same staging table, emptied in between
    conn.execute("COMMIT")
    assert rows(conn) == [("d1", "a", 101, 0), ("d1", "b", 12, 0), ("d2", "a", 5, 0)]
    conn.copy_rows(HEAD, [("d2", "a", 1, 0)], UPSERT)  # and again in a later transaction
    assert rows(conn)[-1] == ("d2", "a", 6, 0)


def test_a_rolled_back_copy_leaves_nothing_and_the_next_one_works(conn: Any) -> None:
    conn.execute("BEGIN")
    conn.copy_rows(HEAD, [("d1", "a", 1, 0)], UPSERT)  # creates the staging table, then rolled back with it
    conn.execute("ROLLBACK")
    assert rows(conn) == []
    conn.copy_rows(HEAD, [("d1", "a", 2, 0)], UPSERT)
    conn.copy_rows(HEAD, [("d1", "a", 3, 0)], UPSERT)
    assert rows(conn) == [("d1", "a", 5, 0)]


def test_a_broken_constraint_is_refused_whole(conn: Any) -> None:
    conn.copy_rows(HEAD, [("d1", "a", 1, 0)])
    with pytest.raises(Exception, match="duplicate key|unique"):  # psycopg's UniqueViolation
        conn.copy_rows(HEAD, [("d0", "z", 1, 0), ("d1", "a", 1, 0)])
    assert rows(conn) == [("d1", "a", 1, 0)]


def test_copy_rows_takes_only_an_insert_head(conn: Any) -> None:
    for head in ("INSERT INTO tally", "DELETE FROM tally", "INSERT INTO tally (day); DROP TABLE tally (n)"):
        with pytest.raises(ValueError, match="copy_rows takes"):
            conn.copy_rows(head, [("d1",)])
    assert rows(conn) == []


def test_the_password_is_never_shown() -> None:
    assert database.redacted("postgresql://shop:s3cret@db:5432/c") == "postgresql://shop@db:5432/c"
    assert database.redacted("postgresql://db/c?user=shop&password=s3cret&sslmode=require") == (
        "postgresql://db/c?user=shop&password=***&sslmode=require"
    )
    assert database.redacted("/var/lib/clicktochat.db") == "/var/lib/clicktochat.db"
    # libpq quotes what it cannot read, password and all: the text is masked, raw or decoded
    said = 'invalid percent-encoded token: "s3cr%zzet"; password "pa ss" refused'
    assert database.scrubbed(said, "postgresql://shop:s3cr%zzet@db/c") == 'invalid percent-encoded token: "***"; ' \
        'password "pa ss" refused'
    assert "pa ss" not in database.scrubbed(said, "postgresql://db/c?password=pa%20ss")
    assert database.scrubbed(said, "shop.db") == said
