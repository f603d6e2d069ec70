"""Sessions and CSRF tokens: signed, checked in constant time, ended for real."""

from __future__ import annotations

import asyncio

from clicktochat.sessions import csrf_ok, csrf_token, end_session, new_csrf_cookie, session_admin, start_session
from clicktochat.store import Store

KEYS = ["k" * 32]


def test_a_session_cookie_signs_in_until_it_is_ended(db_path: str) -> None:
    async def work() -> None:
        store = await Store.open(db_path)
        try:
            admin = await store.add_admin("ana", "hash")
            cookie = await start_session(store, KEYS, admin)
            assert (await session_admin(store, KEYS, cookie)) == await session_admin(store, KEYS, cookie)
            assert (await session_admin(store, KEYS, cookie)).username == "ana"  # type: ignore[union-attr]
            token = cookie.split(".")[0]
            assert token not in str(await store._all("SELECT * FROM admin_sessions"))  # only its hash is kept
            # Rotated keys: the old key still verifies, a foreign key does not.
            assert await session_admin(store, [*KEYS, "n" * 32], cookie) is not None
            assert await session_admin(store, ["z" * 32], cookie) is None
            head, signature = cookie.rsplit(".", 1)
            other = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]  # not the last character:
            for forged in ("", other, token, "x" * 500, cookie + "."):  # base64 may ignore its low bits
                assert await session_admin(store, KEYS, forged) is None
            await end_session(store, KEYS, cookie)
            assert await session_admin(store, KEYS, cookie) is None
            again = await start_session(store, KEYS, admin)
            await store.delete_admin("ana")  # removing an admin ends their sessions
            assert await session_admin(store, KEYS, again) is None
            assert await store._all("SELECT * FROM admin_sessions") == []  # deleted, not just unjoined
        finally:
            await store.close()

    asyncio.run(work())


def test_csrf_tokens_belong_to_their_cookie_and_their_keys() -> None:
    cookie, other = new_csrf_cookie(), new_csrf_cookie()
    token = csrf_token(KEYS, cookie)
    assert csrf_ok(KEYS, cookie, token)
    assert not csrf_ok(KEYS, other, token)
    assert not csrf_ok(["z" * 32], cookie, token)
    assert not csrf_ok(KEYS, cookie, token[:-1])
    assert not csrf_ok(KEYS, "", token) and not csrf_ok(KEYS, cookie, "") and not csrf_ok(KEYS, cookie, "x" * 500)
    assert csrf_ok([*KEYS, "n" * 32], cookie, token)  # still good right after a rotation
    signed_in = csrf_token(KEYS, cookie, "session-a")
    assert csrf_ok(KEYS, cookie, signed_in, "session-a")
    assert not csrf_ok(KEYS, cookie, signed_in, "session-b") and not csrf_ok(KEYS, cookie, token, "session-a")
