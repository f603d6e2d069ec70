"""The secrets the service keeps: keys that sign links (generated once, kept in the
database, rotated by adding a newer one) and API keys (shown once, stored as hashes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from .names import check_name
from .store import Store

API_KEY_PREFIX = "ctc_"
LAST_USED_PRECISION = 60  # seconds
MAX_KEY_NAME_LENGTH = 100


async def signing_keys(store: Store, configured: list[str]) -> list[str]:
    """Configured keys win; otherwise the database's, generating the first one on first start."""
    if configured:
        return configured
    await store.add_signing_key(secrets.token_urlsafe(32), only_if_none=True)
    return await store.signing_keys()


async def rotate_signing_key(store: Store) -> list[str]:
    """Add a newer key: new links are signed with it, older links keep verifying."""
    await store.add_signing_key(secrets.token_urlsafe(32))
    return await store.signing_keys()


@dataclass(frozen=True)
class NewApiKey:
    id: int
    key: str  # shown once, never stored


def hash_api_key(key: str) -> str:
    # API keys are 256 random bits: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(store: Store, name: str) -> NewApiKey:
    name = check_name(name, MAX_KEY_NAME_LENGTH)
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = await store.add_api_key(name, key[:10], hash_api_key(key))
    return NewApiKey(key_id, key)


async def check_api_key(store: Store, key: str) -> int | None:
    """The id of the active key, or None."""
    if not key.startswith(API_KEY_PREFIX) or len(key) > 100:
        return None
    expected = hash_api_key(key)
    found = await store.api_key_hash(expected)
    if found is None or not hmac.compare_digest(found[1], expected):
        return None
    key_id, _, last_used_at = found
    if last_used_at is None or time.time() - last_used_at > LAST_USED_PRECISION:
        await store.touch_api_key(key_id)  # to the minute: one write a minute at most, not one a call
    return key_id
