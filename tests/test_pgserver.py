"""tests/pgserver.py: a real PostgreSQL cluster that starts, serves and stops."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgserver import MEMORY, PostgresServer


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


def databases(server: PostgresServer) -> set[str]:
    with psycopg.connect(server.url("postgres")) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")}


def test_a_cluster_in_memory_lives_in_a_folder_of_its_own_removed_at_the_end(tmp_path: Path) -> None:
    with PostgresServer.start(tmp_path / "unused", in_memory=True) as server:
        server.create_database("shop")
        assert server.folder.parent == MEMORY if MEMORY.is_dir() else server.folder == tmp_path / "unused"
        assert (server.data / "PG_VERSION").is_file()
    assert not (server.folder / "data").exists()


def test_a_pool_gives_each_taker_a_new_copy_of_the_template_and_drops_what_it_is_given_back(tmp_path: Path) -> None:
    with PostgresServer.start(tmp_path) as server:
        server.create_database("shop")
        with psycopg.connect(server.url("shop"), autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id BIGINT PRIMARY KEY)")
        pool = server.pool("shop", "copy_", size=2)
        first, second = pool.take(), pool.take()
        assert first != second and {first, second} <= databases(server)
        with psycopg.connect(server.url(first), autocommit=True) as conn:
            conn.execute("INSERT INTO items VALUES (1)")
        pool.give_back(first)
        third = pool.take()
        assert third not in (first, second)
        with psycopg.connect(server.url(third)) as conn:
            assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)  # a copy of the template, not reused
        pool.give_back(second)
        pool.give_back(third)
        pool.close()  # what was made ahead and what was given back are dropped
        assert databases(server) == {"postgres", "shop"}
