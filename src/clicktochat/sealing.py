"""Sealed (v2) signed-link tokens: the payload is encrypted and authenticated with AES-SIV, so
nobody who sees an ad or scans a QR code can read the number or the text without clicking.

A token is "_" then base64url (no padding) of AES-SIV's 16-byte tag and the ciphertext of the
payload's compact JSON, raw-deflated against a fixed dictionary of its keys. AES-SIV is
deterministic: one link is one token. Its key is derived from a signing key with HKDF, so the
keys that signed the v1 tokens (itsdangerous, readable JSON) seal these too: nothing new to keep.

"_" tells the formats apart: a v1 token starts with "e" (base64 of "{") or "." (compressed) and
always holds a "."; a sealed token never holds a "."; and no slug starts with "_"."""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "_"
HKDF_INFO = b"clicktochat.signed-link.v2 aes-256-siv"
ASSOCIATED = [b"clicktochat.signed-link.v2"]  # binds the ciphertext to this format and purpose
# Part of the format, never to be changed: the JSON keys' spellings that deflate can refer back
# to instead of spelling them out (about 12 bytes saved on a typical link). Commonest last.
ZDICT = b'"}","m":"redirect","c":"telegram","x":1,"n":"","s":"","g":"","t":"{"a":"'
MAX_PAYLOAD = 16_384  # bytes of JSON once inflated; what we seal stays far below
_SEALED = re.compile(r"_[A-Za-z0-9_-]{22,}")  # at least the tag and one byte


def derive_key(signing_key: str) -> bytes:
    """AES-256-SIV's 64-byte key from a signing key: HKDF-SHA256 with a fixed info string."""
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=HKDF_INFO).derive(signing_key.encode())


def is_sealed(token: str) -> bool:
    return token.startswith(PREFIX)


class Sealer:
    """Seals with the newest key, opens with any of them (newest first): key rotation."""

    def __init__(self, keys: list[str]) -> None:
        self._ciphers = [AESSIV(derive_key(key)) for key in reversed(keys)]

    def seal(self, payload: dict[str, Any]) -> str:
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, ZDICT)
        sealed = self._ciphers[0].encrypt(deflate.compress(data) + deflate.flush(), ASSOCIATED)
        return PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def open(self, token: str) -> Any:
        """The payload; ValueError for anything not sealed by one of the keys, in any spelling."""
        if not _SEALED.fullmatch(token):
            raise ValueError("not a sealed token")
        body = token[1:]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except binascii.Error:
            raise ValueError("not base64") from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != body:
            raise ValueError("not the canonical spelling")  # spare bits of the last character set
        for cipher in self._ciphers:
            try:
                compressed = cipher.decrypt(raw, ASSOCIATED)
            except InvalidTag:
                continue
            inflate = zlib.decompressobj(-15, zdict=ZDICT)
            try:
                data = inflate.decompress(compressed, MAX_PAYLOAD)
            except zlib.error:
                raise ValueError("not deflated") from None
            if not inflate.eof or inflate.unconsumed_tail or inflate.unused_data:
                raise ValueError("not a whole payload")
            return json.loads(data)
        raise ValueError("not sealed by any of the keys")
