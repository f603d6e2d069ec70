"""Print-ready posters of a short link: a call to action in the shop's language, the QR code,
the short URL in readable text. One Jinja page with print CSS for A4, A5 and A6 table tents;
`clicktochat poster` prints it to PDF with headless Chromium."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment

from .errors import InvalidInput
from .qr import QROptions, render

FORMATS = ("a4", "a5", "a6")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# (call to action, one line of instructions), per language.
WORDS: dict[str, tuple[str, str]] = {
    "en": ("Chat with us on WhatsApp", "Scan with your phone camera to chat with us on WhatsApp"),
    "it": ("Scrivici su WhatsApp", "Inquadra il codice con la fotocamera del telefono per scriverci su WhatsApp"),
    "es": ("Escríbenos por WhatsApp", "Escanea el código con la cámara del móvil para escribirnos por WhatsApp"),
    "pt": ("Fale conosco no WhatsApp", "Aponte a câmera do celular para o código e fale conosco no WhatsApp"),
    "de": ("Schreiben Sie uns auf WhatsApp",
           "Scannen Sie den Code mit der Handykamera, um uns auf WhatsApp zu schreiben"),
    "fr": ("Écrivez-nous sur WhatsApp",
           "Scannez le code avec l'appareil photo de votre téléphone pour nous écrire sur WhatsApp"),
}  # fmt: skip
# Error correction Q: a poster gets scuffed, folded and photographed at an angle.
POSTER_QR = QROptions(error="Q")


@dataclass(frozen=True)
class Poster:
    url: str
    business: str | None
    format: str
    lang: str
    logo: bytes | None = None  # the business's PNG

    @property
    def logo_uri(self) -> str | None:
        return "data:image/png;base64," + base64.b64encode(self.logo).decode() if self.logo else None

    @property
    def call_to_action(self) -> str:
        return WORDS[self.lang][0]

    @property
    def instructions(self) -> str:
        return WORDS[self.lang][1]

    @property
    def readable_url(self) -> str:
        return self.url.split("://", 1)[-1]

    @property
    def qr(self) -> str:
        return render(self.url, POSTER_QR, "svg").decode()


def poster_options(params: Mapping[str, str], preferred: str = "") -> tuple[str, str]:
    """(format, lang) from query parameters, with a 422 for anything else. Without `lang`, the
    first supported language of `preferred` (an Accept-Language header or $LANG), else English:
    whoever prints the poster usually reads the shop's language."""
    page_format = params.get("format", "a4").lower()
    if page_format not in FORMATS:
        raise InvalidInput("format", f"{params['format']!r} is not one of {', '.join(FORMATS)}")
    lang = params.get("lang", preferred_language(preferred)).lower()
    if lang not in WORDS:
        raise InvalidInput("lang", f"{params['lang']!r} is not one of {', '.join(WORDS)}")
    return page_format, lang


def preferred_language(header: str) -> str:
    """The first of our languages in "it-IT,it;q=0.9,en;q=0.8" or "de_DE.UTF-8"; else en."""
    for part in header.replace("_", "-").split(","):
        code = part.split(";")[0].strip().split("-")[0].split(".")[0].lower()
        if code in WORDS:
            return code
    return "en"


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def print_pdf(env: Environment, poster: Poster, css: str, output: Path, chromium: str) -> None:
    """Render the poster page on its own (CSS inline, no server needed) and print it to PDF."""
    html = env.get_template("poster.html").render(poster=poster, inline_css=css, url_for=None)
    with tempfile.TemporaryDirectory() as folder:
        page, pdf = Path(folder) / "poster.html", Path(folder) / "poster.pdf"
        page.write_text(html, encoding="utf-8")
        try:
            done = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", f"--user-data-dir={folder}/profile", "--no-pdf-header-footer",
                 f"--print-to-pdf={pdf}", page.as_uri()],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise RuntimeError("Chromium did not print the poster within two minutes") from None
        # Chromium exits 0 even when it wrote nothing: check the file itself.
        if not pdf.exists() or not pdf.read_bytes().startswith(b"%PDF"):
            raise RuntimeError(f"Chromium could not print the poster: {done.stderr.strip()[-300:]}")
        try:
            shutil.move(pdf, output)
        except OSError as exc:
            raise RuntimeError(f"cannot write {output}: {exc.strerror}") from None
