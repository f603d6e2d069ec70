"""Who may sign in to the dashboard: admins with argon2-hashed passwords, and a throttle
that makes guessing them slow. Sessions and CSRF tokens are in `sessions.py`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import secrets
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION
from starlette.concurrency import run_in_threadpool

from .budget import network
from .errors import InvalidInput
from .sharedstore import SharedStore, Unreachable
from .store import Admin, Store

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing a megabyte-long "password" is a cheap way to burn our CPU
HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


def _unmatchable_hash() -> str:
    """An argon2 hash in HASHER's parameters (so verifying it costs what verifying a stored one does) whose salt and
    digest are random bytes: no password matches it. Made, not hashed: hashing took 0.1 s of each import, so of
    every command's and server's start-up."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")  # argon2's encoding: no padding

    salt, digest = b64(os.urandom(HASHER.salt_len)), b64(os.urandom(HASHER.hash_len))
    return (f"$argon2{HASHER.type.name.lower()}$v={ARGON2_VERSION}$m={HASHER.memory_cost},t={HASHER.time_cost},"
            f"p={HASHER.parallelism}${salt}${digest}")  # fmt: skip


# Verified when the username is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _unmatchable_hash()


ROLES = ("owner", "agent")


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            "username", "use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"is {len(password)} characters long; use at least {MIN_PASSWORD_LENGTH}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput("password", f"is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


async def check_role(store: Store, role: str, business_id: int | None) -> None:
    """An owner may do everything, so only an agent has a business to keep to (which must exist)."""
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    if business_id is not None and role != "agent":
        raise InvalidInput("business", "only an agent keeps to one business: an owner sees them all")
    if business_id is not None and await store.business(business_id) is None:
        raise InvalidInput("business", f"there is no business {business_id}")


async def create_admin(store: Store, username: str, password: str, role: str = "owner",
                       business_id: int | None = None) -> Admin:  # fmt: skip
    check_username(username)
    await check_role(store, role, business_id)
    hashed = await run_in_threadpool(HASHER.hash, check_password(password))
    try:
        return await store.add_admin(username, hashed, role, business_id)
    except sqlite3.IntegrityError:
        raise InvalidInput("username", f"{username!r} is already an admin") from None


async def set_role(store: Store, username: str, role: str, business_id: int | None) -> Admin:
    """Make someone an owner or an agent; it holds from their next page, no new sign-in needed."""
    await check_role(store, role, business_id)
    found = await store.set_admin_role(username, role, business_id)
    if found is None:
        raise InvalidInput("username", f"there is no admin {username!r}")
    return found


async def set_password(store: Store, username: str, password: str) -> None:
    """A new password ends every session of that admin."""
    found = await store.admin_password(username)
    if found is None:
        raise InvalidInput("username", f"there is no admin {username!r}")
    hashed = await run_in_threadpool(HASHER.hash, check_password(password))
    await store.set_admin_password(found[0].id, hashed, end_sessions=True)


async def authenticate(store: Store, username: str, password: str) -> Admin | None:
    """The admin with this name and password, or None; argon2 runs off the event loop, and
    at most `CHECKS_AT_ONCE` at a time (each takes 64 MiB): a burst of sign-ins waits its turn
    rather than exhausting memory."""
    found = await store.admin_password(username) if USERNAME_PATTERN.fullmatch(username) else None
    stored = found[1] if found and len(password) <= MAX_PASSWORD_LENGTH else _DUMMY_HASH
    async with _checks():
        ok = await run_in_threadpool(_verify, stored, password[:MAX_PASSWORD_LENGTH])
    if not (ok and found and stored is not _DUMMY_HASH):
        return None
    if HASHER.check_needs_rehash(stored):  # parameters were raised since this hash was made
        await store.set_admin_password(found[0].id, await run_in_threadpool(HASHER.hash, password))
    return found[0]


CHECKS_AT_ONCE = 4
_semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _checks() -> asyncio.Semaphore:
    """One semaphore per event loop (tests run several apps, each on its own loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _semaphores:
        _semaphores.clear()  # the loops before this one are done
        _semaphores[loop] = asyncio.Semaphore(CHECKS_AT_ONCE)
    return _semaphores[loop]


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


UNLIMITED = 2**31 - 1


@dataclass
class LoginThrottle:
    """Failed sign-ins counted per `window` seconds three ways: for a username from one address
    (`attempts`), for an address (`address_attempts`: an office behind one address has several
    people) and for a username from anywhere (`user_attempts`). Past the last, the name is not
    locked (strangers would lock the real admin out) but paced: one try every `pace` seconds,
    from anywhere, which bounds guessing from any number of addresses and keeps the admin's
    wait to seconds. An IPv6 address counts as its /64 (budget.network). An attempt counts as failed from the
    moment it starts, so that a burst sent at once is throttled like one sent in turn; a
    success takes it back. In memory with one process; with several instances on one database
    (`shared`, PostgreSQL) the tries are counted in the database (`check`, `passed`), so that
    every instance's count the same ones. Addresses are hashed."""

    attempts: int = 5
    address_attempts: int = 20
    user_attempts: int = 100
    window: float = 15 * 60
    pace: float = 10.0
    max_keys: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _paced: dict[str, float] = field(default_factory=dict)  # a name past its count: when it may be tried next
    shared: SharedStore | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))  # the instances' common one when shared

    async def check(self, username: str, address: str, now: float | None = None) -> int:
        """attempt(), counted where every instance counts: in the database when shared (the
        instance's own count while it is away: a sign-in is never refused for want of it)."""
        if self.shared is not None:
            now = time.time() if now is None else now
            keys = self.keys(username, address)
            try:
                if await self.shared.failures(keys[2:], now - self.window) >= self.user_attempts and not (
                    await self.shared.due(f"sign-in:{keys[2]}", now, self.pace)
                ):  # the name's turn, taken by every instance in turn
                    return int(self.pace)
                wait = await self.shared.attempt(keys, self.limits(), self.window, now)
                return int(wait) + 1 if wait > 0 else 0
            except Unreachable:
                pass
        return self.attempt(username, address, now)

    async def passed(self, username: str, address: str) -> None:
        """succeeded(), where check() counted."""
        if self.shared is not None:
            pair, addr, user = self.keys(username, address)
            try:
                await self.shared.succeeded(pair, (addr, user))
                return
            except Unreachable:
                pass
        self.succeeded(username, address)

    def keys(self, username: str, address: str) -> tuple[str, str, str]:
        """Addresses under a keyed hash (`secret`): a plain one of an IPv4 address, kept in the
        database with several instances, is undone by hashing all four billion (a privacy review)."""
        where = hashlib.blake2b(network(address).encode(), key=self.secret, digest_size=16).hexdigest()
        name = username.strip().lower()
        return f"pair:{where}:{name}", f"addr:{where}", f"user:{name}"

    def limits(self) -> tuple[int, int, int]:
        """The tries allowed under each of keys() before a pause; the name's own count paces
        instead (`pace`), so it locks nobody out."""
        return self.attempts, self.address_attempts, UNLIMITED

    def retry_after(self, username: str, address: str, now: float | None = None) -> int:
        """Seconds until another try is allowed; 0 when it is allowed now."""
        now = time.time() if now is None else now
        wait = 0.0
        keys = self.keys(username, address)
        for key, limit in zip(keys, self.limits(), strict=True):
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = max(wait, times[-limit] + self.window - now)
        if len(self._recent(keys[2], now)) >= self.user_attempts:
            wait = max(wait, self._paced.get(keys[2], 0.0) - now)
        return int(wait) + 1 if wait > 0 else 0

    def attempt(self, username: str, address: str, now: float | None = None) -> int:
        """Count a try before it is checked; returns retry_after() as it was before it."""
        now = time.time() if now is None else now
        wait = self.retry_after(username, address, now)
        if wait:
            return wait
        if len(self._failures) >= self.max_keys:
            # Forget the keys with the fewest recent failures first: spraying new names or
            # addresses must not wipe out the count of the account actually under attack.
            def weight(key: str) -> tuple[int, float]:
                times = self._recent(key, now)
                return len(times), times[-1] if times else 0.0

            ranked = sorted(self._failures, key=weight)
            for key in ranked[: self.max_keys // 10]:
                del self._failures[key]
        keys = self.keys(username, address)
        if len(self._recent(keys[2], now)) >= self.user_attempts:  # past the name's count: its next turn
            if len(self._paced) >= self.max_keys:
                self._paced = {k: t for k, t in self._paced.items() if t > now}
            self._paced[keys[2]] = now + self.pace
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        return 0

    def succeeded(self, username: str, address: str) -> None:
        """The attempt was right: it does not count, and neither do this pair's earlier ones."""
        pair, addr, user = self.keys(username, address)
        self._failures.pop(pair, None)
        for key in (addr, user):
            if self._failures.get(key):
                self._failures[key].pop()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times
