from __future__ import annotations

import base64
import time
import zlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from clicktochat.errors import Gone, NotFound
from clicktochat.links import SLUG_PATTERN
from clicktochat.qr import version
from clicktochat.sealing import ASSOCIATED, ZDICT, derive_key
from clicktochat.tokens import LinkSigner, SignedLink, is_token, token_key

LINK = SignedLink("whatsapp", "393471234567", "Ciao! 🍰\nA & B", campaign="summer-ad", source="fb", title="Dolce")
TYPICAL = SignedLink("whatsapp", "393471234567", "Ciao! Vorrei informazioni", campaign="summer")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def sealed_bytes(token: str) -> bytes:
    body = token[1:]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_round_trip_keeps_every_field() -> None:
    signer = LinkSigner(["k1"])
    assert signer.verify(signer.sign(LINK)) == LINK


def test_tokens_are_deterministic_url_safe_and_unpadded() -> None:
    signer = LinkSigner(["k1"])
    token = signer.sign(LINK)
    assert token == signer.sign(LINK) == LinkSigner(["k1"]).sign(LINK)  # one link, one token, one click id
    assert token_key(token) == token_key(LinkSigner(["k1"]).sign(LINK))
    assert token != signer.sign(TYPICAL) and token_key(token) != token_key(signer.sign(TYPICAL))
    assert token.startswith("_") and set(token[1:]) <= set(ALPHABET) and "=" not in token


@pytest.mark.parametrize("link", [LINK, TYPICAL, SignedLink("telegram", "dolcevita", "Ciao", title="393471234567")])
def test_the_number_and_text_cannot_be_read_from_a_token(link: SignedLink) -> None:
    token = LinkSigner(["k1"]).sign(link)
    raw = sealed_bytes(token)
    for secret in (link.address, link.text, link.campaign, link.title, "3471234567", "1234567", "Ciao"):
        if secret:
            assert secret.encode() not in raw and secret not in token
            for shift in range(4):  # nor in base64 read from any offset, as a scraper might try
                tail = token[shift:]
                assert secret.encode() not in base64.urlsafe_b64decode(tail[: len(tail) // 4 * 4])
    for start in (0, 16):  # nor once inflated without the key, from the tag or past it
        try:
            inflated = zlib.decompressobj(-15, zdict=ZDICT).decompress(raw[start:])
        except zlib.error:
            continue
        assert link.address.encode() not in inflated


def test_typical_link_is_shorter_and_its_qr_code_smaller_than_before() -> None:
    new = LinkSigner(["k1"]).sign(TYPICAL)
    old = LinkSigner(["k1"])._serializer.dumps(TYPICAL.to_payload())  # the v1 path every link took before
    assert len(new) <= 92 < 131 == len(old)
    assert len(LinkSigner(["k1"]).sign(SignedLink("whatsapp", "393471234567"))) <= 46  # defaults left out
    base = "https://chat.example.com/c/"
    assert version(base + new) <= 7 < 9 == version(base + old)  # error correction M, as served by default
    assert version(base + new, "H") <= 10 < 13 == version(base + old, "H")  # H: with a logo


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1],                      # truncated
    lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),  # tag or ciphertext changed
    lambda t: "_x" + t[1:],
    lambda t: t[1:],                       # prefix removed
    lambda t: "",
    lambda t: "_",
    lambda t: "not-a-token",
    lambda t: t[:23],                      # a tag and not a byte more
])  # fmt: skip
def test_tampered_tokens_are_not_found(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = LinkSigner(["k1"])
    with pytest.raises(NotFound):
        signer.verify(mangle(signer.sign(LINK)))


def mutations(token: str) -> set[str]:
    """Every single-character change, every truncation and one- or two-character extension."""
    out = {token[:i] + c + token[i + 1:] for i in range(len(token)) for c in "A_-z9.="}
    out |= {token[:i] for i in range(len(token))} | {token[i:] for i in range(1, len(token))}
    out |= {token + c for c in ALPHABET + ".=~"} | {token + "AA", "_" + token, token + "\n", " " + token}
    return out - {token}


def test_fuzz_every_mutation_of_a_valid_token_is_not_found() -> None:
    signer = LinkSigner(["k1", "k2"])
    token = signer.sign(LINK)
    cases = mutations(token)
    assert len(cases) > 700
    for case in cases:
        with pytest.raises(NotFound):
            signer.verify(case)
    assert signer.verify(token) == LINK and len(signer._verified) == 1  # no mutation was memoised


def test_a_token_sealed_with_another_key_is_not_found() -> None:
    foreign = LinkSigner(["k2"]).sign(LINK)
    with pytest.raises(NotFound):
        LinkSigner(["k1"]).verify(foreign)
    with pytest.raises(NotFound):
        LinkSigner(["k1"]).verify(LinkSigner(["k1"])._serializer.dumps(LINK.to_payload()).replace("e", "_", 1))


def test_rotation_newest_seals_all_open() -> None:
    old_token = LinkSigner(["k1"]).sign(LINK)
    rotated = LinkSigner(["k1", "k2"])
    new_token = rotated.sign(LINK)
    assert new_token != old_token and new_token == LinkSigner(["k2"]).sign(LINK)  # sealed by the newest key
    assert rotated.verify(old_token) == LINK
    assert LinkSigner(["k2"]).verify(new_token) == LINK
    assert LinkSigner(["k0", "k1", "k2", "k3"]).verify(old_token) == LINK
    with pytest.raises(NotFound):
        LinkSigner(["k1"]).verify(new_token)


def test_the_key_is_derived_per_signing_key_with_hkdf() -> None:
    assert len(derive_key("k1")) == 64  # AES-256-SIV
    assert derive_key("k1") == derive_key("k1") != derive_key("k2")
    assert b"k1" not in derive_key("k1")


def test_expiry_is_410_after_and_fine_before() -> None:
    signer = LinkSigner(["k1"])
    token = signer.sign(SignedLink("whatsapp", "393471234567", expires_at=1_000))
    assert signer.verify(token, now=999).expires_at == 1_000
    with pytest.raises(Gone):
        signer.verify(token, now=1_000)


def test_a_validly_sealed_but_wrong_payload_is_not_found() -> None:
    signer = LinkSigner(["k1"])
    wrong = ({"b": 1}, {"a": 5}, {"a": "1", "c": "pigeon"}, {"a": "1", "m": "teleport"}, {"a": "1", "x": "soon"})
    for payload in wrong:
        with pytest.raises(NotFound):
            signer.verify(signer._sealer.seal(payload))


def seal_raw(key: str, plaintext: bytes) -> str:
    return "_" + base64.urlsafe_b64encode(AESSIV(derive_key(key)).encrypt(plaintext, ASSOCIATED)).rstrip(b"=").decode()


def deflate(data: bytes) -> bytes:
    compress = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, ZDICT)
    return compress.compress(data) + compress.flush()


@pytest.mark.parametrize("plaintext", [
    b"", b"{", b'{"a":"1"}',                      # not deflated
    deflate(b'{"a":"1"}')[:-1],                   # cut short
    deflate(b'{"a":"1"}') + b"extra",             # trailing bytes
    deflate(b"\xff\xfe"),                         # not UTF-8
    deflate(b"[" * 10_000 + b"]" * 10_000),       # nested past the recursion limit
    deflate(b'{"a":"' + b"1" * 100_000 + b'"}'),  # inflates far past any payload we make
])  # fmt: skip
def test_sealed_garbage_is_not_found_never_an_error(plaintext: bytes) -> None:
    """What only a leaked key could make: still a 404, never a 500."""
    with pytest.raises(NotFound):
        LinkSigner(["k1"]).verify(seal_raw("k1", plaintext))
    assert LinkSigner(["k1"]).verify(seal_raw("k1", deflate(b'{"a":"1"}'))).address == "1"


def test_tokens_and_slugs_cannot_be_mistaken() -> None:
    signer = LinkSigner(["k1"])
    sealed = [signer.sign(SignedLink("whatsapp", str(n), "x" * n)) for n in range(1, 60)]
    assert all(t.startswith("_") and "." not in t and is_token(t) for t in sealed)
    assert all(not SLUG_PATTERN.fullmatch(t.lower()) for t in sealed)
    assert not any(is_token(slug) for slug in ("vetrina", "a", "summer-2025", "x_y", "9" * 64))


def test_no_keys_is_refused() -> None:
    with pytest.raises(ValueError):
        LinkSigner([])


def test_unexpired_link_verifies_with_real_clock() -> None:
    signer = LinkSigner(["k1"])
    token = signer.sign(SignedLink("whatsapp", "1", expires_at=int(time.time()) + 60))
    assert signer.verify(token).address == "1"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-10] + "!!!!" + t[-10:],      # characters base64 decoding would skip
    lambda t: t[:-10] + "****" + t[-10:],
    lambda t: t[:-10] + "+/" + t[-8:],         # the standard alphabet's spelling of - and _
    lambda t: t + "=" * (-(len(t) - 1) % 4 or 4),  # padding
    lambda t: t[:-1] + ALPHABET[ALPHABET.index(t[-1]) ^ 1],  # spare bits of the last char
    lambda t: t + "\\n",
    lambda t: "_" + "A" * 9000,                # far longer than any token we make
])  # fmt: skip
def test_other_spellings_of_a_valid_token_are_not_found(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = LinkSigner(["k1"])
    token = signer.sign(LINK)
    with pytest.raises(NotFound):
        signer.verify(mangle(token))
    assert signer.verify(token) == LINK
