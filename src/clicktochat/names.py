"""Names people give things (businesses, agents, API keys): text that someone can read, shown
in the dashboard, on posters and in the CLI's tables."""

from __future__ import annotations

import unicodedata

from .errors import InvalidInput

# Embeddings, overrides and isolates: they reorder what follows them on screen (a name that
# reads differently from what it is); right-to-left scripts need none of them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern, Khmer's
# inherent vowels, the Mongolian vowel separator): a name of only these looks empty.
BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5\u180e")


def check_name(name: str, limit: int, field: str = "name") -> str:
    """The name without surrounding spaces; a 422 naming `field` when it is empty or longer than
    `limit`, holds a control character (NUL, a new line...) or a bidi control, or has nothing
    that shows (only spaces, zero-width and combining characters)."""
    name = name.strip()
    if not name:
        raise InvalidInput(field, "is required")
    if len(name) > limit:
        raise InvalidInput(field, f"is {len(name)} characters long; at most {limit}")
    if any(unicodedata.category(c) == "Cc" or c in BIDI_CONTROLS for c in name):
        raise InvalidInput(field, "must not hold control characters (NUL, new lines, tabs, text direction marks)")
    if all(unicodedata.category(c)[0] in "CZM" or c in BLANKS for c in name):
        raise InvalidInput(field, "must have at least one letter, digit or symbol that shows")
    return name
