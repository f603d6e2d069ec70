"""What a change was made on: a short fingerprint of a link, business, agent or widget as stored.

The API sends it as the `ETag` of each of them and honours `If-Match` on their PATCH; the
dashboard's edit forms carry it in a hidden field, `seen`. A change made on what someone else has
changed since it was read is refused (412 Precondition Failed; the dashboard shows the form again,
what was typed kept) instead of silently undoing the other change. The fingerprint is of the
stored thing, not of an answer: a click counted does not change it."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import ProblemError

K = TypeVar("K")
Check = Callable[[], Awaitable[None]]  # run inside a write's transaction; raises to write nothing


class PreconditionFailed(ProblemError):
    status = 412
    title = "Precondition failed"


def tag(thing: object) -> str:
    """A strong entity tag (quoted, as in an ETag header) for a stored dataclass: its fields'
    repr, hashed. Two reads of an unchanged thing give the same tag, in any process."""
    return '"' + hashlib.blake2b(repr(thing).encode(), digest_size=9).hexdigest() + '"'


def matches(if_match: str, current: str) -> bool:
    """RFC 9110's If-Match with strong comparison: `*`, or a comma-separated list of entity tags
    one of which is `current`. A weak tag (W/"...") never matches; neither does one written
    without its quotes, so a client that stripped them hears of it rather than overwrite."""
    if if_match.strip() == "*":
        return True
    return any(candidate.strip() == current for candidate in if_match.split(","))


def require(if_match: str | None, thing: object, what: str) -> None:
    """PreconditionFailed unless `thing` is still what `if_match` names (None: no condition)."""
    if if_match is not None and not matches(if_match, tag(thing)):
        raise PreconditionFailed(
            f"{what} was changed since it was read: its ETag is now {tag(thing)}. Read it again and "
            "make the change on what it is now (or send the change without If-Match to overwrite)."
        )


def as_stored(read: Callable[[K], Awaitable[object]], key: K, if_match: str | None, what: str) -> Check | None:
    """A `Check` for the store's write: the thing `read(key)` gives inside the write's transaction
    (the row held: `Store._hold`) is still what `if_match` names. None without a condition."""
    if if_match is None:
        return None

    async def check() -> None:
        require(if_match, await read(key), what)

    return check
