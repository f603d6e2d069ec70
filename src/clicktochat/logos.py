"""Logos in the middle of QR codes: the channel's icon or a business's own image. A logo hides
the modules under it, so codes with a logo use error correction H (30 % of the code can be
rebuilt) and the logo, with its light margin, covers at most a fifth of the code's width (4 %
of its area)."""

from __future__ import annotations

import base64
import io
import struct
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from .errors import InvalidInput

LOGO_FRACTION = 0.2  # of the code's width, margin included
MAX_UPLOAD_BYTES = 512 * 1024
STORED_SIZE = 256  # pixels: logos are re-encoded as PNG at most this wide
CHANNEL_COLOURS = {
    "whatsapp": "#25d366", "telegram": "#229ed9", "messenger": "#0866ff", "instagram": "#d62976",
    "signal": "#3a76f0", "viber": "#7360f2", "line": "#06c755", "sms": "#34c759", "call": "#0b8043",
    "email": "#1a73e8",
}  # fmt: skip
"""Each messenger's own colour (a colour is no trademark); SMS, call and e-mail get plain ones."""


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
    except Image.DecompressionBombError:  # past twice Pillow's pixel limit: refused when opened
        raise InvalidInput(field, "is larger than 4096 x 4096 pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error):  # broken files
        raise InvalidInput(field, "is not an image; send PNG, JPEG or WebP") from None
    logo.thumbnail((STORED_SIZE, STORED_SIZE))
    out = io.BytesIO()
    logo.save(out, format="PNG", optimize=True)
    return out.getvalue()


@lru_cache(maxsize=16)
def channel_icon(channel: str) -> bytes:
    """The channel's mark, our own simple drawing (no one's artwork): WhatsApp a round icon with
    a chat bubble, the others a rounded square in their colour with a white glyph."""
    size = 256
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    colour = CHANNEL_COLOURS.get(channel, "#1f6feb")
    if channel == "whatsapp" or channel not in GLYPHS:
        draw.ellipse((0, 0, size - 1, size - 1), fill=colour)
        _bubble(draw)
    else:
        draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=56, fill=colour)
        GLYPHS[channel](draw, colour)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _bubble(draw: ImageDraw.ImageDraw, colour: str = "") -> None:
    draw.ellipse((56, 60, 200, 180), fill="white")
    draw.polygon([(78, 160), (62, 206), (118, 172)], fill="white")


def _plane(draw: ImageDraw.ImageDraw, colour: str) -> None:  # Telegram
    draw.polygon([(46, 124), (210, 58), (178, 200)], fill="white")
    draw.polygon([(112, 148), (178, 92), (126, 166), (118, 196)], fill=colour)


def _bolt(draw: ImageDraw.ImageDraw, colour: str) -> None:  # Messenger
    _bubble(draw)
    draw.line([(84, 142), (116, 104), (140, 128), (172, 96)], fill=colour, width=16, joint="curve")


def _camera(draw: ImageDraw.ImageDraw, colour: str) -> None:  # Instagram
    draw.rounded_rectangle((52, 52, 204, 204), radius=44, outline="white", width=16)
    draw.ellipse((94, 94, 162, 162), outline="white", width=16)
    draw.ellipse((166, 74, 186, 94), fill="white")


def _ring(draw: ImageDraw.ImageDraw, colour: str) -> None:  # Signal
    draw.ellipse((48, 48, 208, 208), outline="white", width=14)
    draw.ellipse((80, 80, 176, 176), fill="white")


def _handset(draw: ImageDraw.ImageDraw, colour: str) -> None:  # a phone call
    draw.arc((58, 52, 206, 204), start=105, end=255, fill="white", width=36)
    draw.rounded_rectangle((92, 42, 170, 92), radius=20, fill="white")  # the earpiece, the mouthpiece
    draw.rounded_rectangle((92, 164, 170, 214), radius=20, fill="white")


def _viber(draw: ImageDraw.ImageDraw, colour: str) -> None:
    draw.rounded_rectangle((44, 44, 212, 188), radius=56, outline="white", width=14)
    draw.polygon([(82, 180), (70, 220), (118, 186)], fill="white")
    draw.arc((96, 78, 164, 146), start=200, end=340, fill="white", width=10)
    draw.arc((108, 98, 152, 142), start=200, end=340, fill="white", width=10)


def _line(draw: ImageDraw.ImageDraw, colour: str) -> None:  # LINE
    draw.rounded_rectangle((36, 56, 220, 184), radius=60, fill="white")
    draw.polygon([(150, 178), (168, 214), (190, 170)], fill="white")
    font = ImageFont.load_default(size=54)
    draw.text((128, 120), "LINE", fill=colour, font=font, anchor="mm")


def _dots(draw: ImageDraw.ImageDraw, colour: str) -> None:  # SMS
    _bubble(draw)
    for x in (96, 128, 160):
        draw.ellipse((x - 11, 109, x + 11, 131), fill=colour)


def _envelope(draw: ImageDraw.ImageDraw, colour: str) -> None:  # e-mail
    draw.rounded_rectangle((44, 70, 212, 186), radius=14, fill="white")
    draw.line([(52, 80), (128, 138), (204, 80)], fill=colour, width=14, joint="curve")


GLYPHS = {
    "telegram": _plane, "messenger": _bolt, "instagram": _camera, "signal": _ring, "viber": _viber,
    "line": _line, "sms": _dots, "call": _handset, "email": _envelope,
}  # fmt: skip


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
