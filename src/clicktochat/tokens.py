"""Signed links: the whole destination lives in the URL, sealed (encrypted and authenticated,
see sealing.py), so a click needs no database read and a link printed years ago still verifies
as long as its key is kept. Tokens made before sealing (v1: readable JSON signed by
itsdangerous) keep verifying with the keys that signed them, forever."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from .channels import CHANNELS
from .errors import Gone, NotFound
from .links import MODES
from .sealing import Sealer, is_sealed

SALT = "clicktochat.signed-link.v1"  # v1 tokens only: verified, no longer made
VERIFIED_CACHE_SIZE = 10_000
MAX_TOKEN_LENGTH = 8192  # a 1000-character message in any script stays well below
# v1: an optional "." (zlib-compressed payload), the base64url payload, ".", 43 characters of SHA-256.
_TOKEN = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class SignedLink:
    channel: str
    address: str
    text: str = ""
    campaign: str | None = None
    source: str | None = None
    mode: str = "auto"
    expires_at: int | None = None  # Unix seconds
    title: str | None = None  # shown on the landing page, e.g. the business name

    def to_payload(self) -> dict[str, Any]:
        """Short keys, defaults left out: every byte saved makes printed QR codes smaller."""
        payload: dict[str, Any] = {"a": self.address}
        optional = {
            "c": None if self.channel == "whatsapp" else self.channel,
            "t": self.text or None,
            "g": self.campaign,
            "s": self.source,
            "m": None if self.mode == "auto" else self.mode,
            "x": self.expires_at,
            "n": self.title,
        }
        payload.update({k: v for k, v in optional.items() if v is not None})
        return payload

    @classmethod
    def from_payload(cls, payload: Any) -> SignedLink:
        if not isinstance(payload, dict) or not isinstance(payload.get("a"), str):
            raise ValueError("not a link payload")
        link = cls(
            channel=payload.get("c", "whatsapp"),
            address=payload["a"],
            text=payload.get("t", ""),
            campaign=payload.get("g"),
            source=payload.get("s"),
            mode=payload.get("m", "auto"),
            expires_at=payload.get("x"),
            title=payload.get("n"),
        )
        if link.channel not in CHANNELS or link.mode not in MODES or not all(
            isinstance(v, str) for v in (link.channel, link.text)
        ) or not (link.expires_at is None or isinstance(link.expires_at, int)):
            raise ValueError("not a link payload")
        return link


class LinkSigner:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self.keys = list(keys)
        # New tokens are sealed with the last key; sealed and v1 tokens open with any: key rotation.
        self._sealer = Sealer(self.keys)
        self._serializer = URLSafeSerializer(
            keys, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )
        # Tokens that opened or verified: a popular ad link is verified once, not per click.
        # Only valid tokens enter, so garbage cannot evict them faster than real clicks refill it.
        self._verified: dict[str, SignedLink] = {}

    def sign(self, link: SignedLink) -> str:
        return self._sealer.seal(link.to_payload())

    def verify(self, token: str, now: float | None = None) -> SignedLink:
        """The link, or NotFound for anything tampered/truncated/unknown, Gone once expired."""
        link = self._verified.get(token)
        if link is None:
            try:
                link = SignedLink.from_payload(self._payload(token))
            except (BadSignature, ValueError, TypeError, UnicodeError, RecursionError):
                detail = "This link is not valid. Check that it was copied completely."
                raise NotFound(detail, says="bad_link") from None
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()  # crude but bounded; refilled by the links people click
            self._verified[token] = link
        if link.expires_at is not None and (time.time() if now is None else now) >= link.expires_at:
            raise Gone("This link has expired.", says="expired")
        return link

    def _payload(self, token: str) -> Any:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("far longer than any token we make")
        if is_sealed(token):
            return self._sealer.open(token)
        if not is_canonical(token):
            raise ValueError("not a token we make")
        return self._serializer.loads(token)


def is_token(ref: str) -> bool:
    """A signed link's token rather than a short link's slug: slugs hold no "." (v1 tokens always
    do) and never start with "_" (sealed tokens always do)."""
    return is_sealed(ref) or "." in ref


def is_canonical(token: str) -> bool:
    """Exactly the form v1's `sign` produced. itsdangerous's base64 decoding skips characters outside
    its alphabet and ignores the spare bits of the last one, so without this one link would have
    endless valid spellings (splitting its clicks, and filling caches with long variants)."""
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        return False
    signature = token.rsplit(".", 1)[1]
    return base64_encode(base64_decode(signature)).decode() == signature


@lru_cache(maxsize=8192)
def token_key(token: str) -> str:
    """A short, stable id for a signed link, to count its clicks without storing the token
    (memoised: a SHA-256 per click was 2 % of a loaded server's samples on the signed path)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]
