"""Who may ask for what in a public QR code. Anyone may choose its size (size, scale) and its
format (.svg, .png): that is what printing needs. Every other option (colours, border,
error level, logo) changes what the code looks like, and a business's link drawn in a rival's
colours is not the business's code (Shlink removed public QR customisation for this reason).
Those options need a signed address, `sig` over the link and the options, which the
dashboard's link page makes for its owner, or an API key in the Authorization header.

Renders are kept here too (`Renders`), so that the budget (budget.py) is spent only on a
code drawn anew, never on one already drawn."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from .errors import Forbidden
from .qr import check_names

PUBLIC_OPTIONS = frozenset({"size", "scale"})
SIG = "sig"
_SALT = b"clicktochat.qr-options\n"


def _signature(key: str, link: str, params: Mapping[str, str]) -> str:
    message = _SALT + link.encode() + b"\n" + urlencode(sorted(params.items())).encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signed_query(keys: Sequence[str], link: str, params: Mapping[str, str]) -> str:
    """The query string of a QR code of `link` ("s/<slug>" or "c/<token>") with `params`,
    signed with the newest key when it has options beyond size and scale."""
    query = dict(params)
    if set(query) - PUBLIC_OPTIONS:
        query[SIG] = _signature(keys[-1], link, query)
    return urlencode(query)


def verified(keys: Sequence[str], link: str, params: Mapping[str, str]) -> bool:
    """`params` (with their `sig`) were signed for `link` by one of `keys` (key rotation)."""
    given = params.get(SIG, "")
    options = {name: value for name, value in params.items() if name != SIG}
    if not given or not given.isascii():  # compare_digest takes ASCII str only: anything else is no signature
        return False
    return any(hmac.compare_digest(_signature(key, link, options), given) for key in keys)


def public_options(keys: Sequence[str], link: str, params: Mapping[str, str], owner: bool = False) -> dict[str, str]:
    """The QR options of a request, without `sig`; a 403 for options beyond size and scale
    from a caller who is neither the owner (`owner`: an API key) nor holding a signed address."""
    options = {name: value for name, value in params.items() if name != SIG}
    check_names(options)  # a parameter that is no option at all is a mistake (422), not a privilege (403)
    extra = sorted(set(options) - PUBLIC_OPTIONS)
    if extra and not owner and not verified(keys, link, params):
        raise Forbidden(
            f"QR option {', '.join(extra)}: anyone may choose size or scale; other options are for the link's "
            "owner, whose dashboard (or an API key) makes a signed address for them."
        )
    return options


class Renders:
    """Drawn QR codes by ETag, most recently used last, bounded in count and in bytes."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, tag: str) -> bytes | None:
        body = self._bodies.get(tag)
        if body is not None:
            self._bodies.move_to_end(tag)
        return body

    def put(self, tag: str, body: bytes) -> None:
        if tag in self._bodies or len(body) > self.max_bytes:
            return
        self._bodies[tag] = body
        self._bytes += len(body)
        while len(self._bodies) > self.max_entries or self._bytes > self.max_bytes:
            self._bytes -= len(self._bodies.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._bodies)
