"""Dashboard sessions and CSRF tokens.

A session is a random token, signed (itsdangerous, SHA-256, its own salt) into an
`HttpOnly`, `SameSite=Lax` cookie; the database keeps only its hash, so signing out or
removing an admin ends it at once. A CSRF token is the HMAC of a random per-browser cookie and
the session: a page of ours can put it in its forms, another site can neither read the
cookies nor compute the HMAC. Both use the signing keys, so rotating them rotates these too."""

from __future__ import annotations

import hashlib
import secrets
import time
from functools import lru_cache

from itsdangerous import BadSignature, Signer, TimestampSigner

from .store import Admin, Store

SESSION_COOKIE = "ctc_session"
CSRF_COOKIE = "ctc_csrf"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 7 * 24 * 3600
MAX_COOKIE_LENGTH = 200


@lru_cache(maxsize=8)
def _session_signer(keys: tuple[str, ...]) -> TimestampSigner:
    return TimestampSigner(list(keys), salt="clicktochat.admin-session", digest_method=hashlib.sha256)


@lru_cache(maxsize=8)
def _csrf_signer(keys: tuple[str, ...]) -> Signer:
    return Signer(list(keys), salt="clicktochat.csrf", digest_method=hashlib.sha256)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(store: Store, keys: list[str], admin: Admin) -> str:
    """The cookie value of a new session."""
    token = secrets.token_urlsafe(32)
    await store.add_session(_hash(token), admin.id, int(time.time()) + SESSION_SECONDS)
    return _session_signer(tuple(keys)).sign(token).decode()


def _token(keys: list[str], cookie: str) -> str | None:
    if not cookie or len(cookie) > MAX_COOKIE_LENGTH:
        return None
    try:
        return _session_signer(tuple(keys)).unsign(cookie, max_age=SESSION_SECONDS).decode()
    except (BadSignature, UnicodeDecodeError):  # tampered, expired or signed by a retired key
        return None


async def session_admin(store: Store, keys: list[str], cookie: str) -> Admin | None:
    """Who this cookie signs in; checking the signature first spares the database forgeries."""
    token = _token(keys, cookie)
    return await store.session_admin(_hash(token)) if token else None


async def end_session(store: Store, keys: list[str], cookie: str) -> None:
    token = _token(keys, cookie)
    if token:
        await store.delete_session(_hash(token))


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(keys: list[str], cookie: str, session: str = "") -> str:
    """Bound to the browser's CSRF cookie and, once signed in, to the session: a token
    obtained by a stranger (from the sign-in page) is worthless in someone else's session."""
    return _csrf_signer(tuple(keys)).get_signature(f"{cookie}\n{session}").decode()


def csrf_ok(keys: list[str], cookie: str, token: str, session: str = "") -> bool:
    """Constant-time, like every signature check of itsdangerous."""
    if not cookie or not token or len(cookie) > MAX_COOKIE_LENGTH or len(token) > MAX_COOKIE_LENGTH:
        return False
    return _csrf_signer(tuple(keys)).verify_signature(f"{cookie}\n{session}".encode(), token.encode())
