"""QR codes of our own links (so scans are counted and short links stay editable), as SVG or
PNG, with options checked so that what gets printed scans. Rendered with segno, which
bench/qr.py measured faster than qrcode for SVG; renders are memoised."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import segno
from segno import DataOverflowError

from . import logos
from .errors import InvalidInput

ERROR_LEVELS = ("L", "M", "Q", "H")
KINDS = {"svg": "image/svg+xml", "png": "image/png"}
MAX_PIXELS = 4096  # the widest PNG we draw, whatever the scale and the link's length
RENDER_VERSION = "1"  # part of every ETag: bump it when the drawing changes
MIN_CONTRAST = 4.5  # WCAG AA for text: phone cameras in dim shops need at least as much
_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


SCAN_MARKER = "qr"  # clicks.SCAN_MARKERS: what tells a scan from a tap


def scan_url(url: str) -> str:
    """What a code we draw encodes: our link with the scan marker, so stats tell scans of a
    printed code from taps on the link (as Dub's `?qr=1`, two characters shorter: a short link's
    code grows by one QR version at most, see docs/performance.md)."""
    return f"{url}{'&' if '?' in url else '?'}{SCAN_MARKER}"


@dataclass(frozen=True)
class QROptions:
    """Defaults that scan well printed small: correction M, a 4-module quiet zone, black on white."""

    scale: int | None = None  # pixels per module (PNG; the SVG is scalable)
    size: int | None = None  # or the whole image's width in pixels (PNG: at most, in whole modules)
    border: int = 4
    error: str = "M"
    dark: str = "#000000"
    light: str = "#ffffff"
    logo: str | None = None  # "channel" (its icon) or "business" (its uploaded logo); forces H


QR_OPTIONS = frozenset({"size", "scale", "border", "error", "dark", "light", "inverted", "logo"})


def check_names(params: Iterable[str]) -> None:
    """A 422 naming the first parameter that is no QR option."""
    for name in params:
        if name not in QR_OPTIONS:
            raise InvalidInput(name, f"is not a QR option; use {', '.join(sorted(QR_OPTIONS))}")


def parse_options(params: Mapping[str, str]) -> QROptions:
    """Options from query parameters; each bad value is a 422 naming its parameter."""
    check_names(params)
    size = _number(params, "size", 64, 4096)
    scale = _number(params, "scale", 1, 100)
    if size is not None and scale is not None:
        raise InvalidInput("scale", "give size or scale, not both")
    border = _number(params, "border", 2, 20)
    logo = params.get("logo")
    if logo is not None and logo not in ("channel", "business"):
        raise InvalidInput("logo", f"{logo!r} is not one of channel, business")
    error = params.get("error", "H" if logo else "M").upper()
    if error not in ERROR_LEVELS:
        raise InvalidInput("error", f"{params['error']!r} is not one of L, M, Q, H")
    if logo and error != "H":
        raise InvalidInput("error", "a code with a logo needs error correction H, to rebuild what the logo hides")
    dark, light = _colour(params, "dark", "#000000"), _colour(params, "light", "#ffffff")
    inverted = params.get("inverted", "false").lower()
    if inverted not in ("true", "false"):
        raise InvalidInput("inverted", "must be true or false")
    check_colours(dark, light, allow_inverted=inverted == "true")
    return QROptions(scale, size, 4 if border is None else border, error, dark, light, logo)


def _number(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    # The length first: int() of thousands of digits is a ValueError (and slow)
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not low <= int(raw) <= high:
        raise InvalidInput(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def _colour(params: Mapping[str, str], name: str, default: str) -> str:
    raw = params.get(name, default)
    match = _HEX.fullmatch(raw)
    if not match:
        raise InvalidInput(name, f"{raw!r} is not a hex colour like #1a7f37 or 1a7f37")
    digits = match[1] if len(match[1]) == 6 else "".join(c * 2 for c in match[1])
    return "#" + digits.lower()


def luminance(colour: str) -> float:
    """WCAG relative luminance of #rrggbb."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def check_colours(dark: str, light: str, allow_inverted: bool = False) -> None:
    ratio = contrast(dark, light)
    if ratio < MIN_CONTRAST:
        raise InvalidInput("dark", f"{dark} on {light} has a contrast of {ratio:.1f}:1; phones need {MIN_CONTRAST}:1")
    if luminance(dark) > luminance(light) and not allow_inverted:
        raise InvalidInput(
            "dark", f"{dark} is lighter than {light}: many scanners cannot read light-on-dark codes "
            "(add inverted=true if yours can)",
        )  # fmt: skip


@lru_cache(maxsize=128)  # at most 128 x a 4096-pixel PNG: a bounded amount of memory
def render(data: str, options: QROptions, kind: str, logo: bytes | None = None) -> bytes:
    """The image bytes, with `logo` (PNG) in the middle if given; DataOverflowError when `data`
    does not fit in any QR code."""
    code = segno.make(data, error=options.error.lower(), boost_error=False, micro=False)
    modules = int(code.symbol_size(border=options.border)[0])
    scale: float = options.scale or (1 if kind == "svg" else 10)  # an SVG scales itself
    if options.size is not None:
        # An SVG is exactly `size` wide; a PNG as wide as whole pixels per module allow, for crisp edges.
        scale = options.size / modules if kind == "svg" else max(1, options.size // modules)
    if kind == "png" and modules * scale > MAX_PIXELS:
        raise InvalidInput("scale", f"the image would be {modules * scale:g} pixels wide; at most {MAX_PIXELS}")
    out = io.BytesIO()
    colours = {"dark": options.dark, "light": options.light, "border": options.border}
    if kind == "png":
        code.save(out, kind="png", scale=scale, **colours)
        png = out.getvalue()
        return logos.add_to_png(png, logo, options.light, int(options.border * scale)) if logo else png
    sized = options.size is not None or options.scale is not None
    if logo is None:
        code.save(out, kind="svg", scale=scale, xmldecl=False, svgclass=None, lineclass=None, omitsize=not sized,
                  **colours)  # fmt: skip
        return out.getvalue()
    # In module units, so the logo can be placed by modules; then sized like the others.
    code.save(out, kind="svg", xmldecl=False, svgclass=None, lineclass=None, omitsize=True, **colours)
    svg = logos.add_to_svg(out.getvalue().decode(), modules, options.border, logo, options.light)
    if sized:
        width = f"{modules * scale:g}"
        svg = svg.replace("<svg ", f'<svg width="{width}" height="{width}" ', 1)
    return svg.encode()


def etag(data: str, options: QROptions, kind: str, logo: bytes | None = None) -> str:
    """Strong: the same link, options and logo always give the same bytes."""
    logo_hash = hashlib.sha256(logo).hexdigest() if logo else ""
    key = f"{RENDER_VERSION}|{segno.__version__}|{data}|{options}|{kind}|{logo_hash}"
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def version(data: str, error: str = "M") -> int:
    """The QR version (size class 1-40) a link needs; short links make small codes."""
    return int(segno.make(data, error=error.lower(), boost_error=False, micro=False).version)


def qr_svg(data: str) -> str | None:
    """An inline SVG for our pages, or None when `data` is too long for any QR code."""
    try:
        return render(data, QROptions(), "svg").decode()
    except DataOverflowError:
        return None
