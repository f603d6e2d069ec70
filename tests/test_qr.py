"""QR codes: every code we make is decoded with a real decoder (ZXing) and must give back
exactly our link."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from clicktochat.errors import InvalidInput
from clicktochat.qr import QROptions, contrast, parse_options, render, scan_url, version
from clicktochat.qr_access import signed_query
from clicktochat.service import Service
from conftest import call, read_qr

LINK = "https://chat.example.com/s/vetrina"


@pytest.mark.parametrize(
    "options",
    [
        QROptions(),
        QROptions(error="L"), QROptions(error="Q"), QROptions(error="H"),
        QROptions(scale=3), QROptions(size=120), QROptions(size=2000),
        QROptions(border=2),
        QROptions(dark="#1a4d2e", light="#f5f5dc"),
        QROptions(dark="#0b3d91", light="#ffffff", error="H", scale=6),
    ],
)  # fmt: skip
def test_every_png_decodes_to_exactly_the_link(options: QROptions) -> None:
    assert read_qr(render(LINK, options, "png")) == LINK


def test_a_long_signed_link_decodes_too() -> None:
    signed = "https://chat.example.com/c/" + "eyJhIjoiMzkzNDcxMjM0NTY3IiwidCI6IkNpYW8ifQ" * 3 + ".abc"
    assert read_qr(render(signed, QROptions(), "png")) == signed


def test_svg_is_deterministic_and_scalable() -> None:
    svg = render(LINK, QROptions(), "svg").decode()
    assert svg.startswith("<svg") and 'viewBox="0 0 37 37"' in svg and "width=" not in svg  # version 3 + border
    assert render.__wrapped__(LINK, QROptions(), "svg") == svg.encode()  # drawn again, not the memo
    sized = render(LINK, QROptions(size=330), "svg").decode()
    assert 'width="330.0" height="330.0"' in sized


def test_pngs_are_at_most_4096_pixels_wide() -> None:
    long_link = "https://chat.example.com/c/" + "x" * 600  # a version 18 code at H
    with pytest.raises(InvalidInput, match="pixels wide; at most 4096"):
        render(long_link, QROptions(scale=100, border=20, error="H"), "png")
    assert read_qr(render(long_link, QROptions(size=4096, error="H"), "png")) == long_link


def test_short_links_make_small_codes() -> None:
    assert version("https://chat.example.com/s/vetrina") == 3


@pytest.mark.parametrize("error", ["L", "M", "Q", "H"])
@pytest.mark.parametrize(
    "url",
    ["https://chat.example.com/s/vetrina", "https://pasticceriadolcevita.it/s/k7m3pqz", "https://c.it/s/a",
     "https://chat.example.com/c/_" + "A" * 86, "https://chat.example.com/w/shop/3?u=https%3A%2F%2Fshop.it%2F"],
)  # fmt: skip
def test_the_scan_marker_grows_a_code_by_one_version_at_most(url: str, error: str) -> None:
    marked = scan_url(url)
    assert marked == url + ("&qr" if "?" in url else "?qr")
    assert version(url, error) <= version(marked, error) <= version(url, error) + 1
    assert version("https://chat.example.com/c/" + "x" * 80) > version("https://chat.example.com/s/abc2345")


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"size": "10"}, "size", "from 64 to 4096"),
        ({"size": "abc"}, "size", "whole number"),
        ({"scale": "0"}, "scale", "from 1 to 100"),
        ({"size": "200", "scale": "4"}, "scale", "not both"),
        ({"border": "1"}, "border", "from 2 to 20"),
        ({"error": "X"}, "error", "not one of L, M, Q, H"),
        ({"dark": "red"}, "dark", "is not a hex colour"),
        ({"light": "#12345"}, "light", "is not a hex colour"),
        ({"dark": "#777777", "light": "#888888"}, "dark", "contrast of 1.3:1"),
        ({"dark": "#ffffff", "light": "#000000"}, "dark", "lighter than"),
        ({"inverted": "maybe"}, "inverted", "true or false"),
        ({"colour": "red"}, "colour", "is not a QR option"),
    ],
)
def test_bad_options_name_the_parameter(params: dict[str, str], field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_options(params)
    assert caught.value.errors[0].field == field and reason in caught.value.errors[0].reason


def test_light_on_dark_only_when_asked() -> None:
    options = parse_options({"dark": "#ffffff", "light": "#000000", "inverted": "true"})
    assert (options.dark, options.light) == ("#ffffff", "#000000")
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert parse_options({"dark": "1a4d2e", "light": "fff"}).light == "#ffffff"


def test_qr_endpoints(client: TestClient, service: Service) -> None:
    call(client, service.create_link(to="+39 347 123 4567", slug="vetrina"))
    png = client.get("/qr/s/vetrina.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert read_qr(png.content) == "https://chat.example.com/s/vetrina?qr"  # a scan, counted apart from taps
    assert png.headers["cache-control"] == "no-cache"
    again = client.get("/qr/s/VETRINA.png", headers={"if-none-match": png.headers["etag"]})
    assert again.status_code == 304
    listed = client.get("/qr/s/vetrina.png", headers={"if-none-match": f'"other", {png.headers["etag"]}'})
    assert listed.status_code == 304
    assert client.get("/qr/s/vetrina.png", headers={"if-none-match": "*"}).status_code == 304
    assert client.get("/qr/s/vetrina.png", headers={"if-none-match": '"other"'}).status_code == 200
    styled = signed_query(service.signer.keys, "s/vetrina", {"size": "300", "error": "H"})  # the dashboard's
    svg = client.get(f"/qr/s/vetrina.svg?{styled}")
    assert svg.headers["content-type"].startswith("image/svg+xml") and 'width="' in svg.text
    assert svg.headers["etag"] != png.headers["etag"]

    signed = call(client, service.create_link(to="+39 347 123 4567", short=False))
    token = signed.url.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    response = client.get(f"/qr/c/{token}.png?scale=8")
    assert response.status_code == 200 and read_qr(response.content) == signed.url + "?qr"  # type: ignore[attr-defined]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/qr/s/nope.png", 404), ("/qr/s/vetrina.gif", 404), ("/qr/c/garbage.sig.png", 404),
        ("/qr/s/vetrina.png?error=Z", 422), ("/qr/s/vetrina.png?dark=%23eeeeee", 422),
        ("/qr/s/vetrina.png?size=" + "9" * 5000, 422),  # int() itself refuses 4,301 digits
    ],
)  # fmt: skip
def test_qr_endpoint_refusals(
    client: TestClient, service: Service, auth: dict[str, str], path: str, status: int
) -> None:
    call(client, service.create_link(to="+39 347 123 4567", slug="vetrina"))
    response = client.get(path, headers={"accept": "application/json"} | auth)  # the owner: options are checked
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    page = client.get(path, headers={"accept": "text/html"} | auth)  # a maker's mistake, not a customer's:
    assert page.status_code == status and "let them know it does not work" not in page.text  # found by a new user
