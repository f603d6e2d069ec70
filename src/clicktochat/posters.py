"""Print-ready posters of a short link: a call to action in the shop's language, the QR code,
the short URL in readable text, the business's name, logo and colour. One Jinja page with
print CSS for A4 and A5 posters and the A6 table tent (two faces on a 105 x 297 mm strip, half
an A4 sheet, folded in the middle); `clicktochat poster` prints it to PDF with headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment

from .channels import CHANNELS
from .errors import InvalidInput
from .links import Target
from .page_words import ACTIONS
from .qr import QROptions, luminance, render, scan_url

if TYPE_CHECKING:
    from .service import Service

FORMATS = ("a4", "a5", "a6")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# (call to action, one line of instructions), per language and kind of channel: a messenger
# ("chat", named), SMS, a phone call, e-mail (page_words.ACTIONS), or "any" when a business's
# agents are on several messengers and the visitor's click picks one.
WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "chat": ("Chat with us on {channel}", "Scan with your phone camera to chat with us on {channel}"),
        "any": ("Chat with us", "Scan with your phone camera to chat with us"),
        "sms": ("Send us an SMS", "Scan with your phone camera to send us an SMS"),
        "call": ("Call us", "Scan with your phone camera to call us"),
        "email": ("E-mail us", "Scan with your phone camera to e-mail us"),
    },
    "it": {
        "chat": ("Scrivici su {channel}",
                 "Inquadra il codice con la fotocamera del telefono per scriverci su {channel}"),
        "any": ("Scrivici", "Inquadra il codice con la fotocamera del telefono per scriverci"),
        "sms": ("Mandaci un SMS", "Inquadra il codice con la fotocamera del telefono per mandarci un SMS"),
        "call": ("Chiamaci", "Inquadra il codice con la fotocamera del telefono per chiamarci"),
        "email": ("Scrivici un'e-mail", "Inquadra il codice con la fotocamera del telefono per scriverci un'e-mail"),
    },
    "es": {
        "chat": ("Escríbenos por {channel}",
                 "Escanea el código con la cámara del móvil para escribirnos por {channel}"),
        "any": ("Escríbenos", "Escanea el código con la cámara del móvil para escribirnos"),
        "sms": ("Envíanos un SMS", "Escanea el código con la cámara del móvil para enviarnos un SMS"),
        "call": ("Llámanos", "Escanea el código con la cámara del móvil para llamarnos"),
        "email": ("Escríbenos un correo", "Escanea el código con la cámara del móvil para escribirnos un correo"),
    },
    "pt": {
        "chat": ("Fale conosco no {channel}", "Aponte a câmera do celular para o código e fale conosco no {channel}"),
        "any": ("Fale conosco", "Aponte a câmera do celular para o código e fale conosco"),
        "sms": ("Envie um SMS para nós", "Aponte a câmera do celular para o código e envie um SMS para nós"),
        "call": ("Ligue para nós", "Aponte a câmera do celular para o código e ligue para nós"),
        "email": ("Envie um e-mail para nós", "Aponte a câmera do celular para o código e envie um e-mail para nós"),
    },
    "de": {
        "chat": ("Schreiben Sie uns auf {channel}",
                 "Scannen Sie den Code mit der Handykamera, um uns auf {channel} zu schreiben"),
        "any": ("Schreiben Sie uns", "Scannen Sie den Code mit der Handykamera, um uns zu schreiben"),
        "sms": ("Senden Sie uns eine SMS", "Scannen Sie den Code mit der Handykamera, um uns eine SMS zu senden"),
        "call": ("Rufen Sie uns an", "Scannen Sie den Code mit der Handykamera, um uns anzurufen"),
        "email": ("Schreiben Sie uns eine E-Mail",
                  "Scannen Sie den Code mit der Handykamera, um uns eine E-Mail zu schreiben"),
    },
    "fr": {
        "chat": ("Écrivez-nous sur {channel}",
                 "Scannez le code avec l'appareil photo de votre téléphone pour nous écrire sur {channel}"),
        "any": ("Écrivez-nous", "Scannez le code avec l'appareil photo de votre téléphone pour nous écrire"),
        "sms": ("Envoyez-nous un SMS",
                "Scannez le code avec l'appareil photo de votre téléphone pour nous envoyer un SMS"),
        "call": ("Appelez-nous", "Scannez le code avec l'appareil photo de votre téléphone pour nous appeler"),
        "email": ("Écrivez-nous un e-mail",
                  "Scannez le code avec l'appareil photo de votre téléphone pour nous écrire un e-mail"),
    },
}  # fmt: skip
# Error correction Q: a poster gets scuffed, folded and photographed at an angle.
POSTER_QR = QROptions(error="Q")
DEFAULT_ACCENT = "#075e54"  # WhatsApp's dark green, when the business has no colour of its own
COLOUR = re.compile(r"#[0-9a-f]{6}")
TEXT_CONTRAST = 4.5  # WCAG AA: the call to action is printed in the accent, on white paper


@dataclass(frozen=True)
class Poster:
    url: str
    business: str | None
    format: str
    lang: str
    logo: bytes | None = None  # the business's PNG
    colour: str | None = None  # the business's, #rrggbb
    channel: str | None = "whatsapp"  # where a scan leads; None: one of several messengers

    @property
    def accent(self) -> str:
        """The business's colour for the call to action, darkened until it reads on white."""
        return readable_on_white(self.colour) if self.colour else DEFAULT_ACCENT

    @property
    def style(self) -> str:
        """The page's one style attribute (a #rrggbb made here, never text the business typed)."""
        return f"--accent: {self.accent}"

    @property
    def style_source(self) -> str:
        """The CSP source that allows exactly that attribute, and no other inline style."""
        digest = base64.b64encode(hashlib.sha256(self.style.encode()).digest()).decode()
        return f"'unsafe-hashes' 'sha256-{digest}'"

    @property
    def faces(self) -> tuple[str, ...]:
        """A table tent shows the poster on both sides of the fold: the back one upside down."""
        return ("back", "front") if self.format == "a6" else ("front",)

    @property
    def logo_uri(self) -> str | None:
        return "data:image/png;base64," + base64.b64encode(self.logo).decode() if self.logo else None

    @property
    def words(self) -> tuple[str, str]:
        """(call to action, instructions), naming the messenger or the action (SMS, call, e-mail)."""
        channel = CHANNELS.get(self.channel or "")
        kind = "any" if channel is None else ACTIONS.get(channel.name, "chat")
        action, instructions = WORDS[self.lang][kind]
        label = channel.label if channel else ""
        return action.format(channel=label), instructions.format(channel=label)

    @property
    def call_to_action(self) -> str:
        return self.words[0]

    @property
    def instructions(self) -> str:
        return self.words[1]

    @property
    def readable_url(self) -> str:
        return self.url.split("://", 1)[-1]

    @property
    def qr(self) -> str:
        return render(scan_url(self.url), POSTER_QR, "svg").decode()


def check_colour(value: str | None, field: str = "colour") -> str | None:
    """A business's colour as #rrggbb (with or without the #, any case); "" or None: none."""
    if value is None or not value.strip():
        return None
    colour = "#" + value.strip().lower().removeprefix("#")
    if not COLOUR.fullmatch(colour):
        raise InvalidInput(field, f"{value!r} is not a colour like #c2185b")
    return colour


def contrast_on_white(colour: str) -> float:
    """WCAG's contrast ratio of `colour` (#rrggbb) against white."""
    return 1.05 / (luminance(colour) + 0.05)


def readable_on_white(colour: str) -> str:
    """`colour` as it is when it reads on white paper, else darkened (its hue kept) until it does."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    found = colour.lower()
    while contrast_on_white(found) < TEXT_CONTRAST:
        red, green, blue = (int(c * 0.9) for c in (red, green, blue))
        found = f"#{red:02x}{green:02x}{blue:02x}"
    return found


async def make_poster(service: Service, target: Target, page_format: str, lang: str) -> Poster:
    """The poster of a short link, with its business's name, logo and colour."""
    business = await service.store.business(target.business_id) if target.business_id is not None else None
    logo = await service.store.logo(business.id) if business else None
    colour = business.colour if business else None
    return Poster(service.short_url(target.link.slug), target.title, page_format, lang, logo, colour,
                  poster_channel(target))  # fmt: skip


def poster_channel(target: Target) -> str | None:
    """The channel a scan of a short link opens: its own, its agent's, the one all its business's
    agents share; None when they are on several (the poster then names no messenger)."""
    if target.link.channel is not None:
        return target.link.channel
    channels = {agent.channel for agent in target.agents}
    if len(channels) == 1:
        return channels.pop()
    return None if channels else "whatsapp"


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
