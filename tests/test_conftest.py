"""The PostgreSQL pass runs only the tests whose outcome depends on the database (conftest.py,
`--only-database-tests`): it must not drop one that looks at which database the run is on."""

from __future__ import annotations

import inspect
import re

import pytest

from conftest import depends_on_the_database

# What tells a test (or a fixture it takes) which pass it runs in.
PASS = re.compile(r"\b(POSTGRES|TEST_DB|is_postgres)\b")
# Fixtures that look at the pass to give the same kind of database in both: the test's and the module's
# database, and test_instances' `pg_url` (PostgreSQL whichever the pass: its tests need one server).
SOURCES = {"db_path", "module_db_path", "pg_url", "postgres_server"}


def looks_at_the_pass(item: pytest.Item) -> list[str]:
    """The test's own function and the fixtures it takes (but SOURCES) whose code reads the pass."""
    found = []
    function = getattr(item, "function", None)
    if function is not None and PASS.search(inspect.getsource(function)):
        found.append(item.name)
    info = getattr(item, "_fixtureinfo", None)
    for name, definitions in (info.name2fixturedefs.items() if info else ()):
        for definition in definitions:
            if name not in SOURCES and PASS.search(inspect.getsource(definition.func)):
                found.append(name)
    return found


def test_no_test_that_looks_at_the_pass_is_left_out_of_the_postgresql_pass(request: pytest.FixtureRequest) -> None:
    items = request.session.items  # this run's tests (a -k or a file given runs fewer: all of those are checked)
    dropped = {item.nodeid: found for item in items if (found := looks_at_the_pass(item))
               and not depends_on_the_database(item)}  # fmt: skip
    assert not dropped, f"these read which database the run is on, yet take no db_path or module_db_path: {dropped}"

