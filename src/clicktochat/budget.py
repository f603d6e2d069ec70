"""A budget per client address for the work an anonymous caller can make expensive: QR codes
rendered with options nobody asked for before, posters, 404 pages, widget configurations not
in the cache. A token bucket per address: `burst` requests at once, then `rate` a second. Past
it, a 429 with Retry-After. Clicks never spend from it (CGNAT puts whole towns behind one
address, and a click is cheap).

Addresses are kept only as keyed hashes (a key made at start and never stored), in a bounded
table: when it is full, the address unseen the longest is forgotten, which can only make a
caller's bucket fuller, never someone else's emptier."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import Scope

from .errors import TooManyRequests
from .visitors import Proxies, forwarded_for

BURST = 30  # renders at once: a dashboard user downloading every size, a shop printing posters
RATE = 0.5  # a second after that: a 4096-pixel PNG takes ~0.1 s of a core, so ~5 % per address
MAX_ADDRESSES = 50_000  # x ~150 bytes: under 10 MB, whatever the number of callers


def network(address: str) -> str:
    """What counts as one caller: an IPv4 address, or an IPv6 address's /64 (one customer's
    network, 2^64 addresses: counted apart, each would have a budget of its own)."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:  # ::ffff:198.51.100.7, as dual-stack proxies may write it: an IPv4 address
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class Budget:
    def __init__(
        self, burst: float = BURST, rate: float = RATE, max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.burst, self.rate, self.max_addresses, self.clock = burst, rate, max_addresses, clock
        self._key = secrets.token_bytes(16)
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # hash -> (tokens, when)

    def _hash(self, address: str) -> bytes:
        return hashlib.blake2b(network(address).encode("utf-8", "surrogateescape"), key=self._key,
                               digest_size=12).digest()  # fmt: skip

    def retry_after(self, address: str, cost: float = 1.0) -> int:
        """Spend `cost` from the address's bucket: 0 when it had enough, else the whole seconds
        until it will (and nothing is spent)."""
        now = self.clock()
        key = self._hash(address)
        tokens, when = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - when) * self.rate)
        wait = 0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = max(1, math.ceil((cost - tokens) / self.rate))
        self._buckets[key] = (tokens, now)  # most recently seen last
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return wait

    def refund(self, address: str, cost: float = 1.0) -> None:
        """Give back what `retry_after` took, for what turned out to cost nothing."""
        key = self._hash(address)
        if key in self._buckets:
            tokens, when = self._buckets[key]
            self._buckets[key] = (min(self.burst, tokens + cost), when)

    def spend(self, address: str, cost: float = 1.0) -> None:
        """Raise a 429 with Retry-After when the address has spent its budget."""
        wait = self.retry_after(address, cost)
        if wait:
            raise TooManyRequests(
                f"Too many images, posters or unknown pages from your address; try again in {wait} s.", wait
            )

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(scope: Scope, proxies: Proxies) -> str:
    """The caller's address: the peer's, or what a trusted proxy says (visitors.Proxies)."""
    peer = scope["client"][0] if scope.get("client") else ""
    return proxies.client(peer, forwarded_for(value for name, value in scope["headers"] if name == b"x-forwarded-for"))
