"""QR codes of our own links, as inline SVG for the landing and welcome pages."""

from __future__ import annotations

from functools import lru_cache

import qrcode
import qrcode.constants
from qrcode.exceptions import DataOverflowError
from qrcode.image.svg import SvgPathImage


@lru_cache(maxsize=1024)
def qr_svg(data: str) -> str | None:
    """An SVG QR code; error correction M and a 4-module quiet zone scan well from a screen.
    None when `data` is too long for any QR code (a signed link with a very long message)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=10)
    code.add_data(data)
    try:
        code.make(fit=True)
    except (DataOverflowError, ValueError):
        return None
    svg: str = code.make_image(image_factory=SvgPathImage).to_string(encoding="unicode")
    return svg.split("?>", 1)[-1].strip()  # inline in HTML: no XML declaration
