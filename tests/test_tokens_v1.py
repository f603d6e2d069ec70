"""Tokens made before sealing (v1: base64 JSON signed by itsdangerous) keep working, forever."""

from __future__ import annotations

import base64

import pytest

from clicktochat.errors import Gone, NotFound
from clicktochat.tokens import LinkSigner, SignedLink, is_token

LINK = SignedLink("whatsapp", "393471234567", "Ciao! 🍰\nA & B", campaign="summer-ad", source="fb", title="Dolce")
# Made by the v1 code (main at ff303e8) with the key "v1-fixture-key": printed links look like these.
V1_LINK = (
    "eyJhIjoiMzkzNDcxMjM0NTY3IiwidCI6IkNpYW8hIPCfjbBcbkEgJiBCIiwiZyI6InN1bW1lci1hZCIsInMiOiJmYiIsIm4iOiJEb2xjZSJ9"
    ".w6PjFztkEQDLx0QwoMsh3hxUzmgMRmNEhbeFdGZrhbw"
)
V1_COMPRESSED = (
    ".eJydzTEKgDAMQNGrxMwiaKuiq3dwD6VKoDUQ46J4d3sG1w-f9yDhjG5yfmw75_thxBqtpIVJKlhFNTLwsYlmulkOhvNKicBEjYASBJYQJJFJA3-m4u3FO6"
    "-co-L7ASgtMKA.KKR7LxL4thea976UdPoFqn6ZC2PiHVSKEIgTpeIwHEE"
)
V1_LONG_TEXT = "Ciao! Vorrei informazioni sulla torta al cioccolato. " * 2
# Made with the keys [v1-old-key, v1-fixture-key]: signed by the newest.
V1_BY_SECOND_KEY = "eyJhIjoiMzkzNDcxMjM0NTY3In0.kxvNMwAwnymGI3peEEBSG3UqKMoFUQuKw-X8w_LzSv4"


def v1(signer: LinkSigner, link: SignedLink) -> str:
    """The v1 code path: what `sign` returned before tokens were sealed."""
    token = signer._serializer.dumps(link.to_payload())
    assert isinstance(token, str)
    return token


def test_fixed_v1_tokens_still_verify_with_the_key_that_signed_them() -> None:
    assert LinkSigner(["v1-fixture-key"]).verify(V1_LINK) == LINK
    compressed = LinkSigner(["v1-fixture-key"]).verify(V1_COMPRESSED)
    assert (compressed.address, compressed.campaign) == ("393471234567", "summer")
    assert compressed.text == V1_LONG_TEXT.strip()
    assert LinkSigner(["v1-fixture-key"]).verify(V1_BY_SECOND_KEY).address == "393471234567"


def test_v1_tokens_verify_after_rotation_and_beside_sealed_ones() -> None:
    rotated = LinkSigner(["v1-fixture-key", "k2", "k3"])
    assert rotated.verify(V1_LINK) == LINK
    sealed = rotated.sign(LINK)
    assert sealed != V1_LINK and rotated.verify(sealed) == LINK
    assert rotated.verify(v1(LinkSigner(["k2"]), LINK)) == LINK
    with pytest.raises(NotFound):
        LinkSigner(["k2"]).verify(V1_LINK)


def test_new_links_are_sealed_not_v1() -> None:
    signer = LinkSigner(["v1-fixture-key"])
    assert signer.sign(LINK) != V1_LINK and signer.sign(LINK).startswith("_")


def test_v1_and_sealed_tokens_cannot_be_mistaken() -> None:
    """A v1 token is ("." if compressed) + base64 of JSON + "." + signature: it holds a "." and starts
    with "." or with "e", the only first character base64 gives a "{" whatever follows it. Sealed
    tokens start with "_" and never hold a "."."""
    assert {base64.urlsafe_b64encode(b"{" + bytes([b]))[:1] for b in range(256)} == {b"e"}
    signer = LinkSigner(["k1"])
    links = [SignedLink("whatsapp", str(n), "x" * n * 7, campaign="c" * (n % 3)) for n in range(1, 40)]
    made = [v1(signer, link) for link in links]
    assert any(t.startswith(".") for t in made) and any(t.startswith("e") for t in made)  # both kinds covered
    assert all(t[0] in ".e" and "." in t[1:] and is_token(t) for t in made)
    assert all(signer.verify(t) == link for t, link in zip(made, links, strict=True))


def test_expiry_of_a_v1_token() -> None:
    signer = LinkSigner(["k1"])
    token = v1(signer, SignedLink("whatsapp", "393471234567", expires_at=1_000))
    assert signer.verify(token, now=999).expires_at == 1_000
    with pytest.raises(Gone):
        signer.verify(token, now=1_000)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1],                      # truncated
    lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),  # signature changed
    lambda t: "x" + t,                     # payload changed
    lambda t: t.split(".")[0],             # signature removed
    lambda t: "_" + t,                     # dressed as sealed
    lambda t: t[:-10] + "!!!!" + t[-10:],  # characters base64 decoding would skip
    lambda t: t + "=",                     # padding
    lambda t: t[:-1] + {"A": "B", "B": "A"}.get(t[-1], "A" if t[-1] != "A" else "B"),  # spare bits of the last char
    lambda t: t.replace(".", ". "),
    lambda t: "A" * 9000 + "." + t.split(".")[-1],  # far longer than any token we made
])  # fmt: skip
def test_tampered_v1_tokens_are_not_found(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = LinkSigner(["v1-fixture-key"])
    with pytest.raises(NotFound):
        signer.verify(mangle(V1_LINK))
    assert signer.verify(V1_LINK) == LINK


def test_fuzz_single_character_changes_of_a_v1_token() -> None:
    signer = LinkSigner(["v1-fixture-key"])
    cases = {V1_LINK[:i] + c + V1_LINK[i + 1:] for i in range(len(V1_LINK)) for c in "A_-z9.="} - {V1_LINK}
    cases |= {V1_LINK[:i] for i in range(len(V1_LINK))}
    for case in cases:
        with pytest.raises(NotFound):
            signer.verify(case)


def test_a_validly_signed_but_wrong_v1_payload_is_not_found() -> None:
    signer = LinkSigner(["k1"])
    for payload in ([1, 2], {"a": 5}, {"a": "1", "c": "pigeon"}, {"a": "1", "m": "teleport"}, {"a": "1", "x": "soon"}):
        with pytest.raises(NotFound):
            signer.verify(signer._serializer.dumps(payload))
