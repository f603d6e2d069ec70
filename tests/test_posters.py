"""Posters: the page, the CLI's PDF, and a real Chromium printing the served page to PDF
whose QR code is then decoded from the rasterised page."""

from __future__ import annotations

import io
import subprocess
import sys
from html import unescape
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
    """The QR code's text (on the front face of a table tent), the first page's size in
    millimetres, and the number of pages."""
    with pypdfium2.PdfDocument(pdf) as document:
        width, height = document[0].get_size()
        bitmap = document[0].render(scale=3, grayscale=True)
        image = np.array(bitmap.to_numpy().squeeze())  # a copy: the bitmap's memory goes with it
        pages = len(document)
    if height > width * 2:  # the A6 table tent: its back face is the same code upside down
        image = image[image.shape[0] // 2 :]
    return read_qr(image), (round(width * MM_PER_POINT), round(height * MM_PER_POINT)), pages


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
    ("agents", "lang", "action", "instructions"),
    [
        ([("telegram", "@dolcevita")], "en", "Chat with us on Telegram",
         "Scan with your phone camera to chat with us on Telegram"),
        ([("telegram", "@dolcevita")], "it", "Scrivici su Telegram", "per scriverci su Telegram"),
        ([("call", "+39 06 1234 5678")], "de", "Rufen Sie uns an", "um uns anzurufen"),
        ([("email", "shop@example.com")], "fr", "Écrivez-nous un e-mail", "pour nous écrire un e-mail"),
        ([("sms", "+39 347 123 4567")], "es", "Envíanos un SMS", "para enviarnos un SMS"),
        ([("line", "@dolcevita"), ("line", "@dolcevita2")], "pt", "Fale conosco no LINE", "fale conosco no LINE"),
        ([("telegram", "@dolcevita"), ("whatsapp", "+39 347 123 4567")], "en", "Chat with us",
         "Scan with your phone camera to chat with us"),  # several messengers: the click picks, the poster names none
    ],
)  # fmt: skip
def test_the_poster_names_the_messenger_or_the_action(
    client: TestClient, service: Service, agents: list[tuple[str, str]], lang: str, action: str, instructions: str
) -> None:
    shop = call(client, service.add_business("Dolce Vita", "Europe/Rome"))
    for channel, to in agents:
        call(client, service.add_agent(shop.id, "Giulia", to, channel))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="vetrina"))  # type: ignore[attr-defined]
    page = unescape(client.get(f"/poster/s/vetrina?lang={lang}").text)
    assert f"<h1>{action}</h1>" in page and instructions in page and "WhatsApp" not in page
    for _, to in agents:
        assert to.lstrip("@").split(" ")[-1] not in page  # the address stays out of the poster


def test_a_fixed_address_poster_names_its_channel(client: TestClient, service: Service) -> None:
    call(client, service.create_link(to="dolcevita.roma", channel="messenger", slug="fb"))
    assert "<h1>Scrivici su Messenger</h1>" in client.get("/poster/s/fb?lang=it").text


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [("/poster/s/nope", 404, "no poster either"), ("/poster/s/vetrina?format=a3", 422, "'a3' is not one of a4, a5, a6"),
     ("/poster/s/vetrina?lang=xx", 422, "'xx' is not one of en, it, es, pt, de, fr")],
)  # fmt: skip
def test_poster_refusals(client: TestClient, shop_link: str, path: str, status: int, words: str) -> None:
    response = client.get(path, headers={"accept": "application/json"})
    assert response.status_code == status and words in response.json()["detail"]


def test_a_link_turned_off_has_no_poster_or_code_until_it_is_on_again(client: TestClient, service: Service,
                                                                      shop_link: str) -> None:  # fmt: skip
    """Found trying the README: /s/ answered 410 while its poster and code were still served."""
    paths = ["/s/vetrina", "/poster/s/vetrina", "/qr/s/vetrina.svg", "/qr/s/vetrina.png"]
    call(client, service.update_link(shop_link, {"disabled": True}))
    for path in paths:
        gone = client.get(path, headers={"accept": "application/json"}, follow_redirects=False)
        assert gone.status_code == 410 and "turned off" in gone.json()["detail"], path
    call(client, service.update_link(shop_link, {"disabled": False}))
    assert [client.get(path, follow_redirects=False).status_code for path in paths] == [200, 200, 200, 200]


def test_chromium_prints_the_served_poster_and_its_code_scans(tmp_path: Path) -> None:
    db, port = tmp_path / "poster.db", free_port()
    base = f"http://127.0.0.1:{port}"
    shop = cli(db, "business", "add", "Dolce Vita", "--colour", "#c2185b")
    cli(db, "agent", "add", "--business", shop, "--name", "Giulia", "--to", "+39 347 123 4567")
    cli(db, "link", "create", "--business", shop, "--slug", "vetrina", "--base-url", base)
    with server(db, port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            for page_format, size in (("a4", (210, 297)), ("a6", (105, 297))):
                page = browser.new_page()
                blocked: list[str] = []
                page.on("console", lambda message, seen=blocked: seen.append(message.text))  # CSP reports land here
                page.goto(f"{base}/poster/s/vetrina?format={page_format}&lang=it")
                # The business's colour reached the page through its CSP (one hashed style attribute).
                assert page.eval_on_selector("h1", "e => getComputedStyle(e).color") == "rgb(194, 24, 91)"
                assert not [m for m in blocked if "Content Security Policy" in m], blocked
                pdf = page.pdf(prefer_css_page_size=True, print_background=True)
                assert decode_pdf(pdf) == (f"{base}/s/vetrina?qr", size, 1)
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
    assert decode_pdf(output) == ("https://chat.example.com/s/tavolo?qr", (148, 210), 1)


def test_the_cli_writes_a_poster_only_to_a_pdf_file(tmp_path: Path) -> None:
    """Found by a new user: `poster vetrina -o x.png` wrote a PDF named x.png."""
    db = tmp_path / "cli.db"
    cli(db, "link", "create", "--to", "+39 347 123 4567", "--slug", "tavolo")
    done = subprocess.run([sys.executable, "-m", "clicktochat", "poster", "tavolo", "-o", str(tmp_path / "p.png"),
                           "--db", str(db)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "the file must end in .pdf" in done.stderr
    assert not (tmp_path / "p.png").exists()


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
                assert read_qr(page.screenshot()) == f"{base}/s/vetrina?qr", query
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
    for page_format, size in (("a4", (210, 297)), ("a6", (105, 297))):
        output = tmp_path / f"{page_format}.pdf"
        done = subprocess.run(
            [sys.executable, "-m", "clicktochat", "poster", "lunga", "-o", str(output), "--format", page_format,
             "--lang", "de", "--db", str(db), "--base-url", "https://chat.example.com"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert ("A6 table tent" if page_format == "a6" else "A4 poster") in done.stdout  # as the README says
        assert decode_pdf(output) == ("https://chat.example.com/s/lunga?qr", size, 1)
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


# -- the printed page, measured -------------------------------------------------------------

SCALE = 4  # 288 dpi: a 3 mm line of text is about 34 pixels tall
LATIN = "Pasticceria Gelateria Dolce Vita di Roma"
GREEK = "Ζαχαροπλαστείο «Η Γλυκιά Ζωή» της Αθήνας"
CYRILLIC = "Кондитерская «Сладкая жизнь» на Тверской"
ARABIC = "حلويات الحياة الحلوة - فرع وسط المدينة"
CJK = "東京ラーメン横丁 新宿西口本店"
SAFFRON = "#f4c430"  # too light for text on paper: printed darker, its hue kept
# Each format with and without a logo; every language and script once; 40-character names with the logo.
PRINTS = [
    ("a4", True, "en", GREEK), ("a4", False, "it", ARABIC), ("a5", True, "pt", LATIN),
    ("a5", False, "es", CJK), ("a6", True, "de", CYRILLIC), ("a6", False, "fr", LATIN),
]  # fmt: skip
NAME_HEIGHT_MM = {"a4": 6, "a5": 4, "a6": 2.6}  # at least: a capital letter of the name's font size


def logo_png() -> bytes:
    from PIL import Image

    from clicktochat.logos import check_logo

    out = io.BytesIO()
    Image.new("RGB", (400, 200), (200, 30, 30)).save(out, format="PNG")
    return check_logo(out.getvalue())


def rgb(page: pypdfium2.PdfPage) -> np.ndarray:
    """The page drawn at SCALE, as an RGB array of its own (a bitmap's array is a view of memory
    that PDFium frees with the bitmap)."""
    bitmap = page.render(scale=SCALE, rev_byteorder=True)
    try:
        return np.array(bitmap.to_numpy()[..., :3])
    finally:
        bitmap.close()


def find_text(page: pypdfium2.PdfPage, text: str, below: float) -> list[tuple[float, float, float, float]]:
    """The boxes (left, bottom, right, top, in points) of `text`'s letters on the page below
    `below` points (the front face of a table tent), spaces and line breaks aside; [] if absent."""
    textpage = page.get_textpage()
    try:
        letters = [(textpage.get_text_range(i, 1), textpage.get_charbox(i)) for i in range(textpage.count_chars())]
    finally:
        textpage.close()
    letters = [(c, box) for c, box in letters if not c.isspace() and c != "-" and box[3] <= below]
    stream, boxes, at = "".join(c for c, _ in letters), [], 0
    for word in text.replace("-", " ").split():
        # PDFium reads some right-to-left words of a wrapped line backwards; Chromium drew them right.
        found = min((i for i in (stream.find(word, at), stream.find(word[::-1], at)) if i >= 0), default=-1)
        if found < 0:
            return []
        boxes += [box for _, box in letters[found : found + len(word)]]
        at = found + len(word)
    return boxes


def printed_lines(boxes: list[tuple[float, float, float, float]], image: np.ndarray, page_height: float) -> list[
        tuple[float, int, int]]:  # fmt: skip
    """For each line of the letters: its glyphs' height in points, in pixels, and the pixel rows
    of ink actually printed within their box (fewer when the line is clipped)."""
    lines: list[list[tuple[float, float, float, float]]] = []
    for box in boxes:  # a line: letters that overlap it in height (a flat "ー" or "-" too)
        middle = (box[1] + box[3]) / 2
        line = next((line for line in lines if line[0][1] <= middle <= line[0][3]
                     or box[1] <= (line[0][1] + line[0][3]) / 2 <= box[3]), None)  # fmt: skip
        if line is None:
            lines.append(line := [])
        line.append(box)
    found = []
    for line in lines:
        left, right = min(b[0] for b in line), max(b[2] for b in line)
        bottom, top = min(b[1] for b in line), max(b[3] for b in line)
        rows = image[round((page_height - top) * SCALE) : round((page_height - bottom) * SCALE),
                     round(left * SCALE) : round(right * SCALE)]  # fmt: skip
        inked = np.flatnonzero(rows.min(axis=(1, 2)) < 140)
        found.append((top - bottom, rows.shape[0], int(inked[-1] - inked[0] + 1) if inked.size else 0))
    return found


@pytest.mark.parametrize(("page_format", "with_logo", "lang", "name"), PRINTS)
def test_the_printed_name_is_whole_in_every_format_script_and_language(
    tmp_path: Path, page_format: str, with_logo: bool, lang: str, name: str
) -> None:
    """Print with the CLI's path (headless Chromium), rasterise, and read the page back: the
    name is in its text layer and printed at full height (a name squeezed into a 7 px line box
    printed as dashes), above the call to action; the code scans; the call to action is in the
    business's colour; the table tent has its fold line."""
    from starlette.templating import Jinja2Templates

    from clicktochat.app import asset_dir
    from clicktochat.posters import Poster, print_pdf, readable_on_white

    templates = asset_dir("templates")
    env = Jinja2Templates(directory=str(templates)).env
    css = (templates / "static" / "poster.css").read_text()
    poster = Poster("https://chat.example.com/s/vetrina", name, page_format, lang,
                    logo_png() if with_logo else None, SAFFRON)  # fmt: skip
    print_pdf(env, poster, css, tmp_path / "poster.pdf", CHROMIUM)
    assert decode_pdf(tmp_path / "poster.pdf")[0] == "https://chat.example.com/s/vetrina?qr"

    page = pypdfium2.PdfDocument(tmp_path / "poster.pdf")[0]
    width, height = page.get_size()
    face = height / 2 if page_format == "a6" else height  # the front face: the lower half of a tent
    image = rgb(page)
    name_boxes = find_text(page, name, face)
    assert name_boxes, f"{name!r} is not in the printed text"
    for points, pixels, inked in printed_lines(name_boxes, image, height):
        assert points * MM_PER_POINT >= NAME_HEIGHT_MM[page_format] * 0.6, (points, name)
        assert inked >= pixels * 0.75, f"a line of {name!r} printed {inked} of its {pixels} pixel rows"
    heading = find_text(page, poster.call_to_action, face)
    assert heading and min(b[1] for b in name_boxes) > max(b[3] for b in heading)  # the name above, apart
    assert find_text(page, poster.instructions, face)  # the instructions, the page's last line, are all there

    # The call to action in the business's colour (darkened to read on paper), the logo at its size.
    accent = np.array([int(readable_on_white(SAFFRON)[i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(image.astype(int) - accent).max(axis=2) < 12).sum() > 1000
    red = np.argwhere((image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80))
    if with_logo:
        logo_mm = (red[:, 0].max() - red[:, 0].min()) / SCALE * 25.4 / 72
        assert logo_mm >= NAME_HEIGHT_MM[page_format] * 1.5 and red[:, 0].max() < min(
            (height - b[3]) * SCALE for b in name_boxes)  # above the name
    else:
        assert red.size == 0
    middle = image[round(height / 2 * SCALE) - 3 : round(height / 2 * SCALE) + 3].min(axis=2)
    if page_format == "a6":  # a dashed fold line across the middle of the strip
        assert 0.3 < (middle.min(axis=0) < 200).mean() < 0.9
    else:
        assert width * 2 > height


def test_the_issues_poster_after_its_number_changed(tmp_path: Path) -> None:
    """Issue 12, as reported: a shop with a logo, `link edit --to` (which used to detach the link
    from its business), then `clicktochat poster vetrina -o vetrina.pdf --format a5 --lang it`."""
    db, logo = tmp_path / "shop.db", tmp_path / "logo.png"
    logo.write_bytes(logo_png())
    shop = cli(db, "business", "add", "Pasticceria Dolce Vita", "--colour", "#C2185B")
    cli(db, "business", "logo", shop, str(logo))
    cli(db, "agent", "add", "--business", shop, "--name", "Giulia", "--to", "+39 347 123 4567")
    cli(db, "link", "create", "--business", shop, "--slug", "vetrina", "--base-url", "https://chat.example.com")
    cli(db, "link", "edit", "vetrina", "--to", "+39 347 765 4321")
    output = tmp_path / "vetrina.pdf"
    done = subprocess.run(
        [sys.executable, "-m", "clicktochat", "poster", "vetrina", "-o", str(output), "--format", "a5", "--lang", "it",
         "--db", str(db), "--base-url", "https://chat.example.com"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert decode_pdf(output) == ("https://chat.example.com/s/vetrina?qr", (148, 210), 1)
    page = pypdfium2.PdfDocument(output)[0]
    height = page.get_size()[1]
    image = rgb(page)
    boxes = find_text(page, "Pasticceria Dolce Vita", height)
    assert boxes and page.get_textpage().get_text_range().startswith("Pasticceria Dolce Vita\r\nScrivici su")
    ((points, pixels, inked),) = printed_lines(boxes, image, height)  # one line, whole
    assert points * MM_PER_POINT >= 4 and inked >= pixels * 0.9
    magenta = np.abs(image.astype(int) - (0xC2, 0x18, 0x5B)).max(axis=2) < 12  # dark enough: printed as chosen
    assert magenta.sum() > 1000
