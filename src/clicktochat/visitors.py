"""Telling visitors apart without knowing them (Plausible's approach): a visitor is a keyed
hash of address, browser and link under a salt that changes every UTC day and is then
forgotten. The address is read on the request, hashed there, and never kept."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
from collections.abc import Iterable, Sequence
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address

DAY = 86_400
MAX_FORWARDED_FOR = 2048
"""Characters of X-Forwarded-For kept, from its right end: that is where trusted proxies write
(the rightmost hops); the left is the client's to fill, with junk if it likes."""


def forwarded_for(lines: Iterable[bytes]) -> str:
    """The X-Forwarded-For lines of a request as one list, in order (a proxy may add a line of
    its own instead of appending to the client's; RFC 9110 makes them one), cut from the left."""
    joined = b", ".join(lines)
    return joined[-MAX_FORWARDED_FOR:].decode("latin-1")


class Proxies:
    """Reverse proxies whose X-Forwarded-For is believed. Anybody else's is ignored: the
    header is trivially forged, and a forged one would let a visitor pose as many."""

    def __init__(self, networks: Sequence[IPv4Network | IPv6Network]) -> None:
        self.networks = tuple(networks)
        # (family, [(network, mask)]) as integers: every new visitor behind a proxy brings a new
        # address to check, which ipaddress.ip_address parses in pure Python (~3 us on the loop).
        self._ranges = tuple(
            (family, tuple((int(n.network_address), int(n.netmask)) for n in networks if n.version == version))
            for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6))
        )
        self.trusts = lru_cache(maxsize=1024)(self._trusts)

    def _trusts(self, address: str) -> bool:
        text = address.strip()
        for family, ranges in self._ranges:
            try:
                value = int.from_bytes(socket.inet_pton(family, text))
            except OSError:
                continue
            return any(value & mask == network for network, mask in ranges)
        try:  # what inet_pton does not read (an IPv6 address with a scope, "fe80::1%eth0"), or nothing valid
            parsed = ip_address(text)
        except ValueError:
            return False
        return any(parsed in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The visitor's address: the peer's, or, when the peer is a trusted proxy, the
        rightmost hop of X-Forwarded-For that is not one (left of it, anyone could write)."""
        if not self.networks or not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


class Salts:
    """Today's salt, and yesterday's during the first `window` seconds of the day, so that a
    visitor clicking twice across midnight is still recognised as one. Older salts are gone,
    so no hash can be tied to a visitor after the fact."""

    def __init__(self, window: int, saved: str | None = None) -> None:
        self.window = window
        self.day, self.current, self.previous = -1, b"", b""
        if saved:
            state = json.loads(saved)
            self.day, self.current = int(state["day"]), bytes.fromhex(state["current"])
            self.previous = bytes.fromhex(state.get("previous", ""))
        self.changed = False  # since the last save(): the click writer persists it

    def hashes(self, at: int, *parts: str) -> tuple[str, str]:
        """The visitor under today's salt, and under yesterday's while that one still counts ("" then not)."""
        self.expire(at)
        key = "\x00".join(parts).encode("utf-8", "surrogateescape")
        before = _hash(self.previous, key) if self.previous else ""
        return _hash(self.current, key), before

    def expire(self, at: int) -> None:
        day = at // DAY
        if day > self.day:
            self.previous = self.current if day == self.day + 1 else b""
            self.day, self.current, self.changed = day, secrets.token_bytes(16), True
        if self.previous and at - day * DAY >= self.window:
            self.previous, self.changed = b"", True

    def save(self) -> str:
        self.changed = False
        return json.dumps({"day": self.day, "current": self.current.hex(), "previous": self.previous.hex()})


def _hash(salt: bytes, key: bytes) -> str:
    return hashlib.blake2b(key, key=salt, digest_size=8).hexdigest()
