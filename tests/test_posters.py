"""Posters: the page, the CLI's PDF, and a real Chromium printing the served page to PDF
whose QR code is then decoded from the rasterised page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
from playwright.sync_api import sync_playwright
from starlette.testclient import TestClient

from clicktochat.service import Service
from conftest import call, read_qr
from test_e2e import cli, free_port, server

CHROMIUM = "/usr/bin/chromium"
MM_PER_POINT = 25.4 / 72


def decode_pdf(pdf: Path | bytes) -> tuple[str, tuple[int, int], int]:
    """The QR code's text, the first page's size in millimetres, and the number of pages."""
    document = pypdfium2.PdfDocument(pdf)
    width, height = document[0].get_size()
    image = np.ascontiguousarray(document[0].render(scale=3, grayscale=True).to_numpy().squeeze())
    return read_qr(image), (round(width * MM_PER_POINT), round(height * MM_PER_POINT)), len(document)


@pytest.fixture
def shop_link(client: TestClient, service: Service) -> str:
    shop = call(client, service.add_business("Pasticceria <b>Dolce</b> & Co", "Europe/Rome"))
    call(client, service.add_agent(shop.id, "Giulia", "+39 347 123 4567"))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="vetrina"))  # type: ignore[attr-defined]
    return "vetrina"


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "Scan with your phone camera to chat with us on WhatsApp"), ("it", "Scrivici su WhatsApp"),
     ("es", "Escríbenos por WhatsApp"), ("pt", "Fale conosco no WhatsApp"),
     ("de", "Schreiben Sie uns auf WhatsApp"), ("fr", "Écrivez-nous sur WhatsApp")],
)  # fmt: skip
def test_poster_page_in_each_language(client: TestClient, shop_link: str, lang: str, words: str) -> None:
    page = client.get(f"/poster/s/{shop_link}?format=a5&lang={lang}")
    assert page.status_code == 200
    assert words in page.text and f'<html lang="{lang}">' in page.text and '<body class="a5">' in page.text
    assert "Pasticceria &lt;b&gt;Dolce&lt;/b&gt; &amp; Co" in page.text  # the name is text, never HTML
    assert "chat.example.com/s/vetrina" in page.text and "<svg" in page.text


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [("/poster/s/nope", 404, "no poster either"), ("/poster/s/vetrina?format=a3", 422, "'a3' is not one of a4, a5, a6"),
     ("/poster/s/vetrina?lang=xx", 422, "'xx' is not one of en, it, es, pt, de, fr")],
)  # fmt: skip
def test_poster_refusals(client: TestClient, shop_link: str, path: str, status: int, words: str) -> None:
    response = client.get(path, headers={"accept": "application/json"})
    assert response.status_code == status and words in response.json()["detail"]


def test_chromium_prints_the_served_poster_and_its_code_scans(tmp_path: Path) -> None:
    db, port = tmp_path / "poster.db", free_port()
    base = f"http://127.0.0.1:{port}"
    cli(db, "link", "create", "--to", "+39 347 123 4567", "--slug", "vetrina", "--base-url", base)
    with server(db, port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            for page_format, size in (("a4", (210, 297)), ("a6", (105, 148))):
                page = browser.new_page()
                page.goto(f"{base}/poster/s/vetrina?format={page_format}&lang=it")
                pdf = page.pdf(prefer_css_page_size=True, print_background=True)
                assert decode_pdf(pdf) == (f"{base}/s/vetrina", size, 1)
        finally:
            browser.close()


def test_the_cli_prints_a_poster_to_pdf(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    cli(db, "link", "create", "--to", "+39 347 123 4567", "--slug", "tavolo", "--base-url", "https://chat.example.com")
    output = tmp_path / "poster.pdf"
    done = subprocess.run(
        [sys.executable, "-m", "clicktochat", "poster", "tavolo", "-o", str(output), "--format", "a5", "--lang", "fr",
         "--db", str(db), "--base-url", "https://chat.example.com"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Wrote {output}: A5 poster for https://chat.example.com/s/tavolo\n"
    assert decode_pdf(output) == ("https://chat.example.com/s/tavolo", (148, 210), 1)


def test_the_cli_says_how_to_get_chromium_when_it_is_missing(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    cli(db, "link", "create", "--to", "+39 347 123 4567", "--slug", "tavolo")
    done = subprocess.run(
        [sys.executable, "-m", "clicktochat", "poster", "tavolo", "-o", str(tmp_path / "p.pdf"), "--db", str(db)],
        capture_output=True, text=True, timeout=60, env={"PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert done.returncode == 1
    assert "printing a poster needs Chromium: install it (Debian/Ubuntu: apt-get install chromium)" in done.stderr


def test_chromium_reads_an_svg_code_with_a_logo(tmp_path: Path) -> None:
    """SVG cannot be decoded without drawing it: Chromium draws it, ZXing reads the screenshot."""
    db, port = tmp_path / "svg.db", free_port()
    base = f"http://127.0.0.1:{port}"
    cli(db, "link", "create", "--to", "+39 347 123 4567", "--slug", "vetrina", "--base-url", base)
    key = cli(db, "apikey", "create", "poster-test").strip()
    key = cli(db, "apikey", "create", "poster-test").strip()
    with server(db, port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 600, "height": 600})
            page.set_extra_http_headers({"authorization": f"Bearer {key}"})  # the owner may style the code
            for query in ("", "?logo=channel&size=500", "?dark=0b3d91&light=f5f5dc&error=Q"):
                page.goto(f"{base}/qr/s/vetrina.svg{query}")
                assert read_qr(page.screenshot()) == f"{base}/s/vetrina", query
        finally:
            browser.close()


def test_the_poster_speaks_the_printers_language_by_default(client: TestClient, shop_link: str) -> None:
    from clicktochat.posters import preferred_language

    assert preferred_language("fr-CH, fr;q=0.9, en;q=0.8") == "fr"
    assert preferred_language("ja,de;q=0.5") == "de" and preferred_language("it_IT.UTF-8") == "it"
    assert preferred_language("") == "en" and preferred_language("ja") == "en"
    page = client.get(f"/poster/s/{shop_link}", headers={"accept-language": "es-ES,es;q=0.9"})
    assert "Escríbenos por WhatsApp" in page.text
    english = client.get(f"/poster/s/{shop_link}?lang=en", headers={"accept-language": "es"})
    assert "Chat with us on WhatsApp" in english.text


def test_a_long_business_name_stays_on_one_printed_page(tmp_path: Path) -> None:
    db = tmp_path / "long.db"
    name = "Pasticceria, Gelateria e Caffetteria Artigianale " * 4 + "Donaudampfschifffahrtsgesellschaftskapitän"
    shop = cli(db, "business", "add", name[:200])
    cli(db, "agent", "add", "--business", shop, "--name", "Giulia", "--to", "+39 347 123 4567")
    cli(db, "link", "create", "--business", shop, "--slug", "lunga", "--base-url", "https://chat.example.com")
    for page_format, size in (("a4", (210, 297)), ("a6", (105, 148))):
        output = tmp_path / f"{page_format}.pdf"
        done = subprocess.run(
            [sys.executable, "-m", "clicktochat", "poster", "lunga", "-o", str(output), "--format", page_format,
             "--lang", "de", "--db", str(db), "--base-url", "https://chat.example.com"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert decode_pdf(output) == ("https://chat.example.com/s/lunga", size, 1)
        text = pypdfium2.PdfDocument(output)[0].get_textpage().get_text_range()
        assert "zu schreiben" in text and "chat.example.com/s/lunga" in text  # the bottom lines are all there


def test_a_failed_print_is_an_error_even_over_an_old_file(tmp_path: Path) -> None:
    from starlette.templating import Jinja2Templates

    from clicktochat.app import asset_dir
    from clicktochat.posters import Poster, print_pdf

    templates = asset_dir("templates")
    env = Jinja2Templates(directory=str(templates)).env
    css = (templates / "static" / "poster.css").read_text()
    poster = Poster("https://chat.example.com/s/x", "Shop", "a5", "en")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "old.pdf").write_bytes(b"%PDF-1.4 old")
    with pytest.raises(RuntimeError, match="Chromium could not print the poster"):
        print_pdf(env, poster, css, folder / "old.pdf", "/bin/true")  # a "browser" that prints nothing
    print_pdf(env, poster, css, folder / "new.pdf", CHROMIUM)
    assert (folder / "new.pdf").read_bytes().startswith(b"%PDF")
