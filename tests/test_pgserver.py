"""tests/pgserver.py: a real PostgreSQL cluster that starts, serves and stops."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgserver import PostgresServer


def test_a_server_serves_a_database_and_stops(tmp_path: Path) -> None:
    with PostgresServer.start(tmp_path) as server:
        server.create_database("shop")
        with psycopg.connect(server.url("shop")) as conn:
            conn.execute("CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
            conn.execute("INSERT INTO items VALUES (1, 'espresso'), (2, 'cornetto')")
            assert conn.execute("SELECT name FROM items ORDER BY id").fetchall() == [("espresso",), ("cornetto",)]
            assert conn.execute("SHOW fsync").fetchone() == ("off",)

        server.create_database("copy", template="shop")
        with psycopg.connect(server.url("copy")) as conn:
            assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)
        open_connection = psycopg.connect(server.url("copy"))
        server.drop_database("copy")  # forced: the open connection is ended
        with pytest.raises(psycopg.OperationalError):
            open_connection.execute("SELECT 1")
        open_connection.close()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url("copy"), connect_timeout=5)

        server.stop()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url("shop"), connect_timeout=5)
        server.stop()  # a second time: nothing to do
