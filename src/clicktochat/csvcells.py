"""CSV cells a spreadsheet will not run as formulas.

Referrers, UTM values and a customer's own words (a STOP sent in a chat is kept as the words of
an opt-out) come from strangers. A spreadsheet runs a cell that starts with = + - @ (or a tab or
carriage return before one) as a formula, so such a cell gets a leading apostrophe, as OWASP
advises. In Italy, Germany, France, Spain and Portugal Excel splits a `.csv` on semicolons, which
our comma-separated writer does not quote: every part after a semicolon starts a cell there, and
is defused the same way. So does every line: there a quote in the middle of a cell opens nothing,
and a line break inside our quoted cell starts a new row (found by a review: a STOP message with
a line break before `=1+1` went out as it came). Quotes before the sign are passed over: there
`""=1+1` opens and closes a quote, and what follows is the cell."""

from __future__ import annotations

import re
from typing import Any

_STARTS = re.compile(r"(^|[;\n\r])([ \"]*)(?=[=+\-@\t\r])")


def cell(value: Any) -> str:
    """`value` as text, with an apostrophe before what a spreadsheet would take for a formula."""
    text = "" if value is None else str(value)
    return _STARTS.sub(r"\1\2'", text)
