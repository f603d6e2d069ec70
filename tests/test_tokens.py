from __future__ import annotations

import time

import pytest

from clicktochat.errors import Gone, NotFound
from clicktochat.tokens import LinkSigner, SignedLink, token_key

LINK = SignedLink("whatsapp", "393471234567", "Ciao! 🍰\nA & B", campaign="summer-ad", source="fb", title="Dolce")


def test_round_trip_keeps_every_field() -> None:
    signer = LinkSigner(["k1"])
    assert signer.verify(signer.sign(LINK)) == LINK


def test_tokens_are_deterministic_and_url_safe() -> None:
    signer = LinkSigner(["k1"])
    token = signer.sign(LINK)
    assert token == signer.sign(LINK)
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1],                      # truncated
    lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),  # signature changed
    lambda t: "x" + t,                     # payload changed
    lambda t: "",                          # empty
    lambda t: "not-a-token",
    lambda t: t.split(".")[0],             # signature removed
])  # fmt: skip
def test_tampered_tokens_are_not_found(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = LinkSigner(["k1"])
    with pytest.raises(NotFound):
        signer.verify(mangle(signer.sign(LINK)))


def test_a_token_signed_with_another_key_is_not_found() -> None:
    with pytest.raises(NotFound):
        LinkSigner(["k2"]).verify(LinkSigner(["k1"]).sign(LINK))


def test_rotation_newest_signs_all_verify() -> None:
    old_token = LinkSigner(["k1"]).sign(LINK)
    rotated = LinkSigner(["k1", "k2"])
    new_token = rotated.sign(LINK)
    assert new_token != old_token
    assert rotated.verify(old_token) == LINK
    assert LinkSigner(["k2"]).verify(new_token) == LINK  # signed by the newest key
    with pytest.raises(NotFound):
        LinkSigner(["k1"]).verify(new_token)


def test_expiry_is_410_after_and_fine_before() -> None:
    signer = LinkSigner(["k1"])
    token = signer.sign(SignedLink("whatsapp", "393471234567", expires_at=1_000))
    assert signer.verify(token, now=999).expires_at == 1_000
    with pytest.raises(Gone):
        signer.verify(token, now=1_000)


def test_a_validly_signed_but_wrong_payload_is_not_found() -> None:
    signer = LinkSigner(["k1"])
    for payload in ([1, 2], {"a": 5}, {"a": "1", "c": "pigeon"}, {"a": "1", "m": "teleport"}, {"a": "1", "x": "soon"}):
        with pytest.raises(NotFound):
            signer.verify(signer._serializer.dumps(payload))


def test_defaults_are_left_out_of_the_token() -> None:
    signer = LinkSigner(["k1"])
    short = signer.sign(SignedLink("whatsapp", "393471234567"))
    assert len(short) <= 71  # 28 of payload, a dot, 43 of SHA-256 signature
    assert SignedLink("whatsapp", "393471234567").to_payload() == {"a": "393471234567"}


def test_token_key_is_stable_and_short() -> None:
    assert token_key("abc") == token_key("abc") != token_key("abd")
    assert len(token_key("abc")) == 16


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
    lambda t: t + "=",                          # padding
    lambda t: t[:-1] + {"A": "B", "B": "A"}.get(t[-1], "A" if t[-1] != "A" else "B"),  # spare bits of the last char
    lambda t: t.replace(".", ". "),
    lambda t: t + "\\n",
    lambda t: "A" * 9000 + "." + t.split(".")[-1],  # far longer than any token we make
])  # fmt: skip
def test_other_spellings_of_a_valid_token_are_not_found(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = LinkSigner(["k1"])
    token = signer.sign(LINK)
    with pytest.raises(NotFound):
        signer.verify(mangle(token))
    assert signer.verify(token) == LINK
