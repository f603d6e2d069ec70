"""Migrations, once on main, are never edited: a database they made is only ever moved on by new
ones. A review that upgraded databases made by commits of a session's middle found migrations
changed after them (a column added to 005, a table to 001): such a database said schema 19 yet
lacked what today's code reads, and the dashboard gave 500s. Each migration's statements are
pinned here (comments and spacing aside): an edit fails this test; write migration N+1 instead."""

from __future__ import annotations

import hashlib
import re

import pytest

from clicktochat.storedb import migrations

PINNED = {
    "migrations": {
        1: "4c1fad8d92bacd87", 2: "68981e9badb12ebd", 3: "89eb6077d9c8a040", 4: "9dd2669c4d61759d",
        5: "e4ea13c5d180b3e7", 6: "c4b654cda1dff17c", 7: "831b7331464ba61f", 8: "6de2c36a6418bfb7",
        9: "eb90facec93e3f6d", 10: "9de755fec925ce1e", 11: "844e10996fdd73aa", 12: "27f8b3d76e546510",
        13: "e3b0c44298fc1c14", 14: "a246d3b6966c97dd", 15: "4724ccdef69828f2", 16: "37ff111d4a0e8048",
        17: "7522574b987b6a68", 18: "8b9eecffc6f882eb", 19: "f2b1f0a70bd726db", 20: "e9aa6162a3800288",
        21: "6e5ceddea4fcf4cc", 22: "fa5af9b499d37c89",
        23: "aced7fb549066a92",
    },
    "migrations_pg": {
        11: "4ee78d50db1f8e32", 12: "6e8c6180dc72d7b8", 13: "17db4fd369edb924", 14: "a246d3b6966c97dd",
        15: "4724ccdef69828f2", 16: "37ff111d4a0e8048", 17: "103597748dcb8fb8", 18: "8b9eecffc6f882eb",
        19: "f2b1f0a70bd726db", 20: "e9aa6162a3800288", 21: "b5ccfa26aa721bd6", 22: "723e03f46b41a814",
        23: "ae6e064d776ddfcd",
    },
}  # fmt: skip


def digest(script: str) -> str:
    """The migration's statements: comments dropped and spacing collapsed, so that a comment may be mended."""
    code = re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", script)).strip()
    return hashlib.sha256(code.encode()).hexdigest()[:16]


@pytest.mark.parametrize("folder", sorted(PINNED))
def test_no_migration_is_edited_once_made(folder: str) -> None:
    found = {number: digest(script) for number, script in migrations(folder)}
    edited = sorted(n for n in PINNED[folder] if n in found and found[n] != PINNED[folder][n])
    assert not edited, f"{folder} {edited} changed: put the change in a new migration (and its twin in the other)"
    assert not set(PINNED[folder]) - set(found), "a migration was removed: databases it made would not be understood"
    new = {n: found[n] for n in sorted(set(found) - set(PINNED[folder]))}
    assert not new, f"pin the new {folder} in PINNED once it is final: {new}"


def test_a_comment_may_be_mended_but_not_a_statement() -> None:
    script = "CREATE TABLE t (\n    a INTEGER  -- the first\n);"
    assert digest(script) == digest("CREATE TABLE t (\n  a INTEGER -- a better word\n);")
    assert digest(script) != digest("CREATE TABLE t (a INTEGER, b TEXT);")
