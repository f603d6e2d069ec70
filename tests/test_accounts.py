"""Admins: argon2 hashes, sign-in checks, and the throttle on failed sign-ins."""

from __future__ import annotations

import asyncio

import pytest

from clicktochat.accounts import (
    HASHER,
    LoginThrottle,
    authenticate,
    check_password,
    check_username,
    create_admin,
    set_password,
)
from clicktochat.errors import InvalidInput
from clicktochat.store import Store


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


async def with_store(db: str, work):  # type: ignore[no-untyped-def]
    store = await Store.open(db)
    try:
        return await work(store)
    finally:
        await store.close()


def test_passwords_are_kept_as_argon2id_hashes_and_checked(db_path: str) -> None:
    async def work(store: Store) -> None:
        admin = await create_admin(store, "ana", "correct horse battery")
        found = await store.admin_password("ANA")  # names are case-insensitive
        assert found is not None and found[0].id == admin.id
        assert found[1].startswith("$argon2id$") and "correct horse" not in found[1]
        assert (await authenticate(store, "ana", "correct horse battery")) == found[0]
        assert await authenticate(store, "Ana", "correct horse battery") is not None
        assert await authenticate(store, "ana", "correct horse batter") is None
        assert await authenticate(store, "bob", "correct horse battery") is None
        assert await authenticate(store, "", "") is None
        assert await authenticate(store, "x" * 5000, "y" * 5000) is None

    run(with_store(db_path, work))


def test_a_second_admin_of_the_same_name_is_refused(db_path: str) -> None:
    async def work(store: Store) -> None:
        await create_admin(store, "ana", "correct horse battery")
        with pytest.raises(InvalidInput) as refused:
            await create_admin(store, "ANA", "another long password")
        assert refused.value.errors[0].field == "username" and "already" in refused.value.errors[0].reason
        await create_admin(store, "bob", "another long password")  # several admins
        assert [a.username for a in await store.admins()] == ["ana", "bob"]

    run(with_store(db_path, work))


def test_a_new_password_ends_the_admins_sessions(db_path: str) -> None:
    async def work(store: Store) -> None:
        admin = await create_admin(store, "ana", "correct horse battery")
        await store.add_session("h" * 64, admin.id, 2**40)
        assert await store.session_admin("h" * 64) is not None
        await set_password(store, "ana", "a brand new passphrase")
        assert await store.session_admin("h" * 64) is None
        assert await authenticate(store, "ana", "correct horse battery") is None
        assert await authenticate(store, "ana", "a brand new passphrase") is not None
        with pytest.raises(InvalidInput):
            await set_password(store, "nobody", "a brand new passphrase")

    run(with_store(db_path, work))


def test_an_outdated_hash_is_upgraded_at_the_next_sign_in(db_path: str) -> None:
    from argon2 import PasswordHasher

    async def work(store: Store) -> None:
        weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse battery")
        admin = await store.add_admin("ana", weak)
        assert await authenticate(store, "ana", "correct horse battery") is not None
        found = await store.admin_password("ana")
        assert found is not None and found[0].id == admin.id and found[1] != weak
        assert not HASHER.check_needs_rehash(found[1])

    run(with_store(db_path, work))


@pytest.mark.parametrize("name", ["", "-ana", "ana smith", "a" * 65, "ana<script>", "ana\n"])
def test_bad_usernames_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_username(name)
    assert refused.value.errors[0].field == "username"


def test_passwords_must_be_long_enough_but_not_absurdly_long() -> None:
    assert check_password("0123456789") == "0123456789"
    for bad in ("short", "x" * 1025):
        with pytest.raises(InvalidInput) as refused:
            check_password(bad)
        assert refused.value.errors[0].field == "password"


def test_the_throttle_counts_tries_per_name_and_address_per_address_and_per_name() -> None:
    throttle = LoginThrottle(attempts=3, address_attempts=5, user_attempts=8, window=60)
    for _ in range(3):
        assert throttle.attempt("ana", "10.0.0.1", now=1000) == 0
    assert throttle.attempt("ana", "10.0.0.1", now=1000) == 61  # this name from this address
    assert throttle.retry_after(" ANA ", "10.0.0.1", now=1030) == 31  # case and spaces change nothing
    assert throttle.attempt("ana", "10.9.9.9", now=1030) == 0  # the real admin, elsewhere, still gets in
    throttle.succeeded("ana", "10.9.9.9")
    assert throttle.attempt("bob", "10.0.0.1", now=1030) == 0
    assert throttle.attempt("eve", "10.0.0.1", now=1030) == 0
    assert throttle.attempt("zed", "10.0.0.1", now=1030) == 31  # five from this address: any name
    assert throttle.attempt("zed", "10.9.9.9", now=1030) == 0
    for n in range(5):  # one name from many places
        assert throttle.attempt("ana", f"10.1.0.{n}", now=1040) == 0
    assert throttle.attempt("ana", "10.2.0.1", now=1040) == 0  # 3 + 5 tries on ana: her own count is reached,
    assert throttle.attempt("ana", "10.3.0.1", now=1040) == 11  # and she is paced, from anywhere (pace: 10 s)
    assert throttle.attempt("ana", "10.3.0.1", now=1050) == 0
    assert throttle.attempt("ana", "10.0.0.1", now=1061) == 0  # the window has passed


def test_a_burst_of_tries_counts_as_it_arrives_and_a_success_takes_its_try_back() -> None:
    throttle = LoginThrottle(attempts=5, window=60)
    answers = [throttle.attempt("ana", "10.0.0.1", now=1000) for _ in range(60)]  # sent at once
    assert answers.count(0) == 5
    throttle = LoginThrottle(attempts=5, window=60)
    for _ in range(4):
        throttle.attempt("ana", "10.0.0.1", now=1000)
    throttle.attempt("ana", "10.0.0.1", now=1000)
    throttle.succeeded("ana", "10.0.0.1")  # the fifth was right: the pair starts again
    assert throttle.attempt("ana", "10.0.0.1", now=1000) == 0


def test_the_throttle_keeps_no_address_and_a_spray_does_not_erase_the_attacked_account() -> None:
    throttle = LoginThrottle(attempts=3, address_attempts=1000, window=600, max_keys=100)
    for _ in range(3):
        throttle.attempt("ana", "192.0.2.1", now=1000)
    for n in range(1000):  # new names from new addresses, to push ana's count out
        throttle.attempt(f"user{n}", f"2001:db8::{n}", now=1001 + n / 10)
    assert len(throttle._failures) <= 100
    assert not any("192.0.2." in key or "2001:db8" in key for key in throttle._failures)
    assert throttle.retry_after("ana", "192.0.2.1", now=1200) > 0


def test_a_stranger_cannot_lock_the_admin_out_and_an_ipv6_network_counts_once() -> None:
    """Found by an attacker: five wrong passwords from each of twenty addresses locked the name
    for everyone, the real admin at her own address included, for as long as they went on; and
    each address of one IPv6 /64 (2^64 of them, one customer's) had a budget of its own."""
    throttle = LoginThrottle(attempts=5, address_attempts=20, user_attempts=100, window=900, pace=10)
    for n in range(20):
        for _ in range(5):
            assert throttle.attempt("ana", f"198.51.{n}.1", now=1000) == 0
    assert throttle.attempt("ana", "198.51.0.1", now=1001) > 0  # an address that guessed five times: waits
    assert throttle.attempt("ana", "198.51.100.7", now=1001) == 0  # her own address: let in to try
    throttle.succeeded("ana", "198.51.100.7")
    # Past the name's count it is paced, not locked (the attacker's second look: a fresh address or
    # /64 for every guess had no bound): one try in ten seconds from anywhere, a mistyped one too.
    assert throttle.attempt("ana", "203.0.113.1", now=1011) == 0  # her try took the turn of 1001
    assert [throttle.attempt("ana", f"203.0.113.{n}", now=1012) for n in range(2, 6)] == [10] * 4
    assert throttle.attempt("ana", "203.0.113.1", now=1021) == 0  # it guessed once: still its turn
    attacker = LoginThrottle(attempts=5, address_attempts=20, window=900)
    answers = [attacker.attempt(f"user{n}", f"2001:db8:dead:beef::{n:x}", now=1000) for n in range(25)]
    assert answers.count(0) == 20  # one /64: one address's allowance
