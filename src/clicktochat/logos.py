"""Logos in the middle of QR codes: the channel's icon or a business's own image. A logo hides
the modules under it, so codes with a logo use error correction H (30 % of the code can be
rebuilt) and the logo, with its light margin, covers at most a fifth of the code's width (4 %
of its area)."""

from __future__ import annotations

import base64
import io
import struct
from functools import lru_cache

from PIL import Image, ImageDraw, UnidentifiedImageError

from .errors import InvalidInput

LOGO_FRACTION = 0.2  # of the code's width, margin included
MAX_UPLOAD_BYTES = 512 * 1024
STORED_SIZE = 256  # pixels: logos are re-encoded as PNG at most this wide
CHANNEL_COLOURS = {"whatsapp": "#25d366"}


def check_logo(data: bytes, field: str = "logo") -> bytes:
    """An uploaded PNG, JPEG or WebP, re-encoded as a small PNG (never stored as sent)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(field, f"is {len(data)} bytes; at most {MAX_UPLOAD_BYTES}")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
        if kind not in ("PNG", "JPEG", "WEBP"):
            raise InvalidInput(field, f"is a {kind} image; send PNG, JPEG or WebP")
        with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as image:
            if image.width * image.height > 4096 * 4096:
                raise InvalidInput(field, "is larger than 4096 x 4096 pixels")
            image.load()
            logo = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error,
            Image.DecompressionBombError):  # what Pillow raises for broken files  # fmt: skip
        raise InvalidInput(field, "is not an image; send PNG, JPEG or WebP") from None
    logo.thumbnail((STORED_SIZE, STORED_SIZE))
    out = io.BytesIO()
    logo.save(out, format="PNG", optimize=True)
    return out.getvalue()


@lru_cache(maxsize=8)
def channel_icon(channel: str) -> bytes:
    """A round icon in the channel's colour with a white chat bubble (our own drawing)."""
    size = 256
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((0, 0, size - 1, size - 1), fill=CHANNEL_COLOURS.get(channel, "#1f6feb"))
    draw.ellipse((56, 60, 200, 180), fill="white")
    draw.polygon([(78, 160), (62, 206), (118, 172)], fill="white")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _box(width: float) -> tuple[float, float]:
    """Side and offset of the logo's square, centred, in the same units as `width`."""
    side = width * LOGO_FRACTION
    return side, (width - side) / 2


def add_to_png(png: bytes, logo: bytes, light: str, border_px: int) -> bytes:
    with Image.open(io.BytesIO(png)) as code_image:
        code = code_image.convert("RGB")
    inner = code.width - 2 * border_px
    side, offset = _box(inner)
    box = (round(border_px + offset), round(border_px + offset))
    ImageDraw.Draw(code).rectangle((*box, box[0] + round(side) - 1, box[1] + round(side) - 1), fill=light)
    margin = max(1, round(side * 0.1))
    with Image.open(io.BytesIO(logo)) as logo_image:
        mark = logo_image.convert("RGBA")
    mark.thumbnail((round(side) - 2 * margin, round(side) - 2 * margin))
    at = (box[0] + (round(side) - mark.width) // 2, box[1] + (round(side) - mark.height) // 2)
    code.paste(mark, at, mark)
    out = io.BytesIO()
    code.save(out, format="PNG", optimize=True)
    return out.getvalue()


def add_to_svg(svg: str, modules: int, border: int, logo: bytes, light: str) -> str:
    """`svg` drawn in module units (viewBox 0 0 modules modules)."""
    inner = modules - 2 * border
    side, offset = _box(inner)
    x = border + offset
    margin = side * 0.1
    href = "data:image/png;base64," + base64.b64encode(logo).decode()
    mark = (
        f'<rect x="{x:.3f}" y="{x:.3f}" width="{side:.3f}" height="{side:.3f}" fill="{light}"/>'
        f'<image x="{x + margin:.3f}" y="{x + margin:.3f}" width="{side - 2 * margin:.3f}" '
        f'height="{side - 2 * margin:.3f}" href="{href}" preserveAspectRatio="xMidYMid meet"/>'
    )
    return svg.replace("</svg>", mark + "</svg>")
