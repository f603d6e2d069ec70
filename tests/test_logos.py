"""Logos in QR codes: uploads are checked and re-encoded, codes with a logo still decode."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image, ImageColor
from starlette.testclient import TestClient

from clicktochat.channels import CHANNELS
from clicktochat.errors import InvalidInput
from clicktochat.logos import CHANNEL_COLOURS, MAX_UPLOAD_BYTES, channel_icon, check_logo
from clicktochat.qr import QROptions, parse_options, render
from clicktochat.service import Service
from conftest import call, read_qr

LINK = "https://chat.example.com/s/vetrina"


def image_bytes(fmt: str, size: tuple[int, int] = (400, 300), colour: str = "#c0392b") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature and header, naming a size, with no pixels: what a decompression bomb
    shows before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [6000, 30000])
def test_a_logo_too_large_says_so_whatever_its_size(side: int) -> None:
    """Found by a new user: 6,000 pixels square was "larger than 4096 x 4096 pixels", but
    30,000 (past Pillow's own limit) was "not an image"."""
    with pytest.raises(InvalidInput, match="is larger than 4096 x 4096 pixels"):
        check_logo(png_header(side, side))


def test_uploads_are_re_encoded_as_small_pngs() -> None:
    for fmt in ("PNG", "JPEG", "WEBP"):
        png = check_logo(image_bytes(fmt, (1200, 800)))
        with Image.open(io.BytesIO(png)) as logo:
            assert (logo.format, logo.size) == ("PNG", (256, 171))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<svg onload=alert(1)>", "is not an image"),
        (b"", "is not an image"),
        (image_bytes("GIF"), "is a GIF image; send PNG, JPEG or WebP"),
        (b"\x89PNG" + b"0" * MAX_UPLOAD_BYTES, f"at most {MAX_UPLOAD_BYTES}"),
        (image_bytes("PNG")[:60], "is not an image"),
        (image_bytes("PNG")[:33] + b"\x00\x00\x00\x10IDAT" + b"\xff" * 16 + image_bytes("PNG")[33:],
         "is not an image"),
        (image_bytes("JPEG")[:200], "is not an image"),
        (image_bytes("WEBP")[:40], "is not an image"),
    ],
)
def test_bad_uploads_are_refused(data: bytes, reason: str) -> None:
    """Including files that start right and break later, which Pillow reports in several ways."""
    with pytest.raises(InvalidInput, match=reason):
        check_logo(data)


@pytest.mark.parametrize("logo", [channel_icon("whatsapp"), check_logo(image_bytes("PNG", (300, 300)))])
@pytest.mark.parametrize("options", [QROptions(error="H"), QROptions(error="H", scale=4),
                                     QROptions(error="H", size=900)])  # fmt: skip
def test_codes_with_a_logo_still_decode(logo: bytes, options: QROptions) -> None:
    png = render(LINK, options, "png", logo)
    assert png != render(LINK, options, "png") and read_qr(png) == LINK


def test_a_logo_needs_correction_h() -> None:
    assert parse_options({"logo": "channel"}).error == "H"
    with pytest.raises(InvalidInput, match="needs error correction H"):
        parse_options({"logo": "channel", "error": "M"})
    with pytest.raises(InvalidInput, match="'mine' is not one of channel, business"):
        parse_options({"logo": "mine"})


def test_svg_with_a_logo_embeds_it_as_an_image() -> None:
    svg = render(LINK, QROptions(error="H", logo="channel", size=400), "svg", channel_icon("whatsapp")).decode()
    assert svg.startswith('<svg width="400" height="400" ') and '<image x="' in svg
    assert 'href="data:image/png;base64,' in svg


def test_logo_endpoints(client: TestClient, service: Service, auth: dict[str, str]) -> None:
    shop = call(client, service.add_business("Shop", "UTC"))
    call(client, service.add_agent(shop.id, "Giulia", "+39 347 123 4567"))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="shop"))  # type: ignore[attr-defined]
    url = f"/api/v1/businesses/{shop.id}/logo"  # type: ignore[attr-defined]
    assert client.get("/qr/s/shop.png?logo=business", headers=auth).status_code == 422  # none uploaded yet
    channel = client.get("/qr/s/shop.png?logo=channel", headers=auth)
    assert channel.status_code == 200 and read_qr(channel.content) == "https://chat.example.com/s/shop?qr"

    headers = auth | {"content-type": "image/jpeg"}
    assert client.put(url, content=image_bytes("JPEG"), headers=headers).status_code == 204
    mine = client.get("/qr/s/shop.png?logo=business", headers=auth)
    assert mine.status_code == 200 and read_qr(mine.content) == "https://chat.example.com/s/shop?qr"
    assert mine.headers["etag"] != channel.headers["etag"]
    assert 'src="data:image/png;base64,' in client.get("/poster/s/shop").text  # the poster shows it

    assert client.put(url, content=b"GIF89a", headers=auth | {"content-type": "image/gif"}).status_code == 415
    assert client.put(url, content=b"junk", headers=headers).json()["errors"] == [
        {"field": "logo", "reason": "is not an image; send PNG, JPEG or WebP"}
    ]
    too_big = client.put(url, content=b"0" * (MAX_UPLOAD_BYTES + 1), headers=headers)
    assert too_big.status_code == 413
    png_headers = auth | {"content-type": "image/png"}
    assert client.put("/api/v1/businesses/999/logo", content=image_bytes("PNG"), headers=png_headers).status_code == 404
    assert client.put(url, content=image_bytes("PNG")).status_code == 401
    assert client.delete(url, headers=auth).status_code == 204
    assert client.get("/qr/s/shop.png?logo=business", headers=auth).status_code == 422

    signed = call(client, service.create_link(to="+39 347 123 4567", short=False))
    token = signed.url.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    assert client.get(f"/qr/c/{token}.png?logo=business", headers=auth).status_code == 422
    assert read_qr(client.get(f"/qr/c/{token}.png?logo=channel", headers=auth).content) == signed.url + "?qr"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(CHANNELS))
def test_every_channel_has_its_own_mark_and_codes_with_it_decode(name: str) -> None:
    icon = channel_icon(name)
    with Image.open(io.BytesIO(icon)) as image:
        assert image.size == (256, 256)
        pixels = image.convert("RGB")
        assert pixels.getpixel((128, 4)) == ImageColor.getrgb(CHANNEL_COLOURS[name])  # its colour at the top
    assert len({channel_icon(other) for other in CHANNELS}) == len(CHANNELS)  # ten different drawings
    png = render(LINK, QROptions(error="H", size=600), "png", icon)
    assert read_qr(png) == LINK


def test_the_served_code_carries_the_links_channel_mark(
    client: TestClient, service: Service, auth: dict[str, str]
) -> None:
    shop = call(client, service.add_business("Shop", "UTC"))
    call(client, service.add_agent(shop.id, "Giulia", "@dolcevita", "telegram"))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="tg"))  # type: ignore[attr-defined]
    svg = client.get("/qr/s/tg.svg?logo=channel", headers=auth).text
    assert base64.b64encode(channel_icon("telegram")).decode() in svg and "dolcevita" not in svg
    call(client, service.add_agent(shop.id, "Marco", "shop@example.com", "email"))  # type: ignore[attr-defined]
    mixed = client.get("/qr/s/tg.svg?logo=channel", headers=auth).text  # two channels: a plain chat mark
    assert base64.b64encode(channel_icon("")).decode() in mixed
    signed = call(client, service.create_link(to="+39 06 1234 5678", channel="call", short=False))
    token = signed.url.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    call_svg = client.get(f"/qr/c/{token}.svg?logo=channel", headers=auth).text
    assert base64.b64encode(channel_icon("call")).decode() in call_svg and "12345678" not in call_svg
