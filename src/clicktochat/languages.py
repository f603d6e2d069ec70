"""Which of our languages a visitor reads: Accept-Language negotiation with q-values (RFC 9110,
section 12.5.4), for the pages a customer sees. Only pages that render HTML ask; a click's
redirect never does (it has no words to choose)."""

from __future__ import annotations

from collections.abc import Collection

MAX_HEADER_LENGTH = 1024  # a browser's list is a few dozen characters
MAX_RANGES = 32


def ranges(header: str) -> list[tuple[str, float]]:
    """("it-it", 1.0), ("it", 0.9), ... from "it-IT,it;q=0.9,*;q=0.1", best first (ties keep their
    order). A range with a q-value that is not a number from 0 to 1 is left out, not guessed."""
    found: list[tuple[str, float]] = []
    for part in header[:MAX_HEADER_LENGTH].split(",")[:MAX_RANGES]:
        tag, *params = (piece.strip() for piece in part.split(";"))
        if not tag:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            found.append((tag.lower().replace("_", "-"), q))
    return sorted(found, key=lambda item: -item[1])


def negotiate(header: str, available: Collection[str], default: str = "en") -> str:
    """The language of `available` the visitor prefers most: a range matches by its primary
    subtag ("pt-BR" is "pt"), `*` is the default unless refused, q=0 refuses; else the default."""
    refused = {tag.split("-")[0] for tag, q in ranges(header) if q == 0.0}
    for tag, q in ranges(header):
        if q == 0.0:
            break  # sorted: only refusals follow
        primary = tag.split("-")[0]
        if primary == "*":
            return next((lang for lang in (default, *available) if lang not in refused), default)
        if primary in available and primary not in refused:
            return primary
    return default


def choose(asked: str, header: str, available: Collection[str], default: str = "en") -> str:
    """`asked` (a page's ?lang=, "it" or "it-IT") when we speak it, else `negotiate`: a
    language we do not speak is no error on a page for people, just not taken."""
    primary = asked.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in available else negotiate(header, available, default)
