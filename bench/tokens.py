"""Signed-link tokens before (v1: base64 JSON signed by itsdangerous) and after (sealed with
AES-SIV), in the same run: the length of a typical link's token and the QR version of its URL,
then what verifying costs per click, cold (a token not seen before) and memoised (every later
click of it), each as a ratio against v1, the baseline.

    .venv/bin/python bench/tokens.py
    .venv/bin/python bench/tokens.py --tokens 20000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from clicktochat.qr import version
from clicktochat.tokens import LinkSigner, SignedLink

BASE = "https://chat.example.com/c/"
TYPICAL = SignedLink("whatsapp", "393471234567", "Ciao! Vorrei informazioni", campaign="summer")
KEYS = ["bench-key-one-0123456789abcdefghijklmnop", "bench-key-two-0123456789abcdefghijklmnop"]


def v1_sign(signer: LinkSigner, link: SignedLink) -> str:
    token = signer._serializer.dumps(link.to_payload())  # the path every link took before sealing
    assert isinstance(token, str)
    return token


def sizes() -> dict[str, dict[str, int]]:
    signer = LinkSigner(KEYS[:1])
    out = {}
    for label, token in (("v1", v1_sign(signer, TYPICAL)), ("sealed", signer.sign(TYPICAL))):
        out[label] = {"token": len(token), "url": len(BASE + token)} | {
            f"qr_{level}": version(BASE + token, level) for level in "LMH"
        }
    return out


def per_call_us(run: Callable[[], None], calls: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / calls * 1e6


def costs(n: int, repeats: int) -> dict[str, float]:
    """µs per verify. Cold: n distinct tokens, each verified once by a signer that has not seen it."""
    links = [SignedLink("whatsapp", "393471234567", f"Ciao! Vorrei informazioni {i}", campaign="summer")
             for i in range(n)]  # fmt: skip
    newest = LinkSigner(KEYS)
    made = {
        "v1": [v1_sign(newest, link) for link in links],
        "sealed": [newest.sign(link) for link in links],
        "sealed, by the older of 2 keys": [LinkSigner(KEYS[:1]).sign(link) for link in links],
    }
    out: dict[str, float] = {}
    for label, tokens in made.items():

        def cold(tokens: list[str] = tokens) -> None:
            signer = LinkSigner(KEYS)
            for token in tokens:
                signer.verify(token)

        out[f"cold {label}"] = per_call_us(cold, n, repeats)
    for label in ("v1", "sealed"):
        token, signer = made[label][0], LinkSigner(KEYS)
        signer.verify(token)

        def warm(token: str = token, signer: LinkSigner = signer) -> None:
            for _ in range(n):
                signer.verify(token)

        out[f"memoised {label}"] = per_call_us(warm, n, repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=10_000, help="Distinct tokens per cold run (default 10000).")
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each; the median is shown.")
    parser.add_argument("--json", help="Also write the figures to this file.")
    args = parser.parse_args()

    found = sizes()
    print(f"typical link: {TYPICAL.address}, text {TYPICAL.text!r}, campaign {TYPICAL.campaign!r}")
    for label, row in found.items():
        print(f"  {label:<7} token {row['token']:>3} chars, URL {row['url']:>3} ({BASE}...), "
              f"QR version L {row['qr_L']}, M {row['qr_M']}, H {row['qr_H']}")  # fmt: skip

    spent = costs(args.tokens, args.repeats)
    print(f"\nverify, µs per click (median of {args.repeats} runs; ratio against v1 in this run):")
    for label, us in spent.items():
        baseline = spent["memoised v1" if label.startswith("memoised") else "cold v1"]
        print(f"  {label:<38} {us:7.2f} µs   x{us / baseline:.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"sizes": found, "verify_us": spent}, out, indent=2)


if __name__ == "__main__":
    main()
