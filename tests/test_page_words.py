"""The pages a customer meets on a link, in their language: the catalogue, the landing page, the
crawlers' preview, and the error pages (with the way back to a gone link's business)."""

from __future__ import annotations

import re
import string
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from clicktochat import optin_words, posters
from clicktochat.page_words import LANGUAGES, WORDS
from clicktochat.service import Service
from conftest import DESKTOP, IPHONE, WHATSAPP_PREVIEW, call


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_word_with_the_same_blanks() -> None:
    assert set(LANGUAGES) == set(posters.WORDS) == set(optin_words.LANGUAGES)  # one set of languages
    for lang, words in WORDS.items():
        assert words.keys() == WORDS["en"].keys(), lang
        for key, text in words.items():
            assert text.strip() and fields(text) == fields(WORDS["en"][key]), (lang, key)
    assert len({words["no_link"] for words in WORDS.values()}) == len(WORDS)  # each really translated


def heading(html: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert found, html
    return unescape(found.group(1)).strip()


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="([^"]*)">', html)
    assert found, html
    return found.group(1)


@pytest.fixture
def shop(client: TestClient, service: Service) -> int:
    """A business with one agent and its general chat link, `shop`."""
    business = call(client, service.add_business("Pasticceria Dolce Vita", "Europe/Rome"))
    call(client, service.add_agent(business.id, "Giulia", "+39 347 123 4567"))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=business.id, slug="shop"))  # type: ignore[attr-defined]
    return business.id  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(
    ("accept", "lang", "button", "lead"),
    [
        ("it-IT,it;q=0.9,en;q=0.8", "it", "Scrivi su WhatsApp", "Continua su WhatsApp."),
        ("en;q=0.5, de-CH", "de", "Auf WhatsApp schreiben", "Weiter auf WhatsApp."),
        ("ja", "en", "Chat on WhatsApp", "Continue on WhatsApp."),
    ],
)
def test_the_landing_page_speaks_the_visitors_language(
    client: TestClient, shop: int, accept: str, lang: str, button: str, lead: str
) -> None:
    page = client.get("/s/shop", headers={"user-agent": DESKTOP, "accept-language": accept})
    assert page.status_code == 200 and lang_of(page.text) == lang
    assert f">{button}</a>" in page.text and lead in page.text
    assert f"<title>{WORDS[lang]['chat_with'].format(name='Pasticceria Dolce Vita', channel='WhatsApp')}</title>" \
        in unescape(page.text)  # fmt: skip
    assert page.headers["vary"] == "Accept-Language"


def test_lang_in_the_query_wins_and_an_unknown_one_is_no_error(client: TestClient, shop: int) -> None:
    italian = {"user-agent": DESKTOP, "accept-language": "it"}
    assert lang_of(client.get("/s/shop?lang=fr", headers=italian).text) == "fr"
    unknown = client.get("/s/shop?lang=tlh", headers=italian)
    assert unknown.status_code == 200 and lang_of(unknown.text) == "it"


def test_the_redirect_asks_for_no_language(client: TestClient, service: Service) -> None:
    """The click path answers a phone the same whatever its languages: nothing is negotiated."""
    call(client, service.create_link(to="+39 347 123 4567", slug="fast"))
    answers = [client.get("/s/fast", headers={"user-agent": IPHONE, "accept-language": accept})
               for accept in ("it", "de;q=0.1, fr", "")]  # fmt: skip
    assert {a.status_code for a in answers} == {302}
    assert len({tuple(sorted(a.headers.items())) for a in answers}) == 1 and "vary" not in answers[0].headers


@pytest.mark.parametrize(
    ("accept", "title", "description", "button"),
    [
        ("fr-FR,fr;q=0.9", "Écrivez-nous sur WhatsApp", "Touchez pour démarrer une discussion.",
         "Discuter sur WhatsApp"),
        ("pt-BR", "Fale conosco no WhatsApp", "Toque para iniciar uma conversa.", "Conversar no WhatsApp"),
        ("", "Chat with us on WhatsApp", "Tap to start a chat.", "Chat on WhatsApp"),
    ],
)  # fmt: skip
def test_the_crawlers_preview_speaks_the_language_asked_for(
    client: TestClient, service: Service, accept: str, title: str, description: str, button: str
) -> None:
    call(client, service.create_link(to="+39 347 123 4567", slug="preview"))
    page = client.get("/s/preview", headers={"user-agent": WHATSAPP_PREVIEW, "accept-language": accept})
    html = unescape(page.text)
    assert page.status_code == 200 and lang_of(page.text) == (accept[:2] or "en")
    assert f'<meta property="og:title" content="{title}">' in html
    assert f'<meta property="og:description" content="{description}">' in html
    assert f">{button}</a>" in html and heading(page.text) == title
    # A shared link's preview can be asked for in the shop's language, whatever the crawler sends.
    asked = client.get("/s/preview?lang=it", headers={"user-agent": WHATSAPP_PREVIEW, "accept-language": accept})
    assert '<meta property="og:title" content="Scrivici su WhatsApp">' in asked.text


@pytest.mark.parametrize(
    ("path", "accept", "title", "detail"),
    [
        ("/s/nope", "es", "No encontrado", "Aquí no hay ningún enlace de chat."),
        ("/s/nope", "pt-PT,en;q=0.5", "Não encontrado", "Não há nenhum link de conversa aqui."),
        ("/nowhere", "de", "Nicht gefunden", "Unter dieser Adresse gibt es nichts."),
        ("/c/not-a-token", "it", "Non trovato", "Questo link non è valido."),
        ("/w/gone/any", "fr", "Introuvable", "Ce bouton de discussion n'est plus à jour"),
        ("/s/nope", "zh", "Not found", "There is no chat link here."),
    ],
)
def test_404_pages_speak_the_visitors_language(
    client: TestClient, path: str, accept: str, title: str, detail: str
) -> None:
    page = client.get(path, headers={"user-agent": IPHONE, "accept-language": accept})
    assert page.status_code == 404 and lang_of(page.text) == ("en" if accept == "zh" else accept[:2])
    assert heading(page.text) == title and detail in unescape(page.text)
    assert WORDS["en" if accept == "zh" else accept[:2]]["tell"] in unescape(page.text)
    assert page.headers["vary"] == "Accept-Language"


def test_api_clients_keep_english(client: TestClient) -> None:
    problem = client.get("/s/nope", headers={"accept": "application/json", "accept-language": "it"})
    assert problem.json()["detail"].startswith("There is no chat link here.")


def test_a_detail_without_a_translation_is_marked_as_english(client: TestClient, service: Service) -> None:
    call(client, service.create_link(to="+39 347 123 4567", slug="counter"))
    page = client.get("/poster/s/counter?format=a3", headers={"accept-language": "it"})
    assert page.status_code == 422 and lang_of(page.text) == "it" and heading(page.text) == "Non ha funzionato"
    assert re.search(r'<p class="lead" lang="en">format: .a3. is not one of', unescape(page.text))



@pytest.mark.parametrize("path", ["/poster/s/counter?format=a3", "/poster/s/nope", "/qr/s/nope.png",
                                  "/optin/nope/poster"])  # fmt: skip
def test_pages_for_whoever_prints_a_code_do_not_ask_them_to_tell_the_business(
    client: TestClient, service: Service, path: str
) -> None:
    """Found by a review: a poster's error page asked the shop printing it to tell the shop."""
    call(client, service.create_link(to="+39 347 123 4567", slug="counter"))
    page = client.get(path, headers={"accept-language": "de"})
    assert page.status_code in (404, 422) and lang_of(page.text) == "de"
    assert WORDS["de"]["tell"] not in unescape(page.text)


def test_nobody_to_answer_is_said_in_the_visitors_language(client: TestClient, service: Service) -> None:
    empty = call(client, service.add_business("Vuoto", "UTC"))
    call(client, service.create_link(business_id=empty.id, slug="empty"))  # type: ignore[attr-defined]
    page = client.get("/s/empty", headers={"user-agent": IPHONE, "accept-language": "de"})
    assert page.status_code == 503 and heading(page.text) == "Noch kann niemand antworten"
    assert "Das Geschäft hat niemanden eingetragen" in unescape(page.text)


def reach_button(html: str) -> tuple[str, str] | None:
    found = re.search(r'<a class="button" href="([^"]*)" rel="nofollow">([^<]*)</a>', html)
    return (unescape(found.group(1)), unescape(found.group(2))) if found else None


def test_a_turned_off_link_still_leads_to_its_business(client: TestClient, service: Service, shop: int) -> None:
    call(client, service.create_link(business_id=shop, slug="summer", campaign="summer"))
    call(client, service.update_link("summer", {"disabled": True}))
    page = client.get("/s/summer", headers={"user-agent": IPHONE, "accept-language": "it"})
    assert page.status_code == 410 and heading(page.text) == "Questo link non funziona più"
    html = unescape(page.text)
    assert "Questo link per chattare è stato disattivato dall'attività." in html
    assert "Puoi comunque scrivere a Pasticceria Dolce Vita." in html
    assert reach_button(page.text) == ("https://chat.example.com/s/shop", "Scrivi a Pasticceria Dolce Vita")
    assert "393471234567" not in page.text  # the way goes through our link, never the number
    # The way works: the general link takes the chat to whoever answers for the business.
    followed = client.get(urlsplit(reach_button(page.text)[0]).path, headers={"user-agent": IPHONE})  # type: ignore[index]
    assert followed.status_code == 302 and followed.headers["location"].startswith("https://wa.me/393471234567")


def test_the_general_link_is_a_live_one_to_the_whole_business_without_a_campaign(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    business = call(client, service.add_business("Forno", "Europe/Rome"))
    shop: int = business.id  # type: ignore[attr-defined]
    agent = call(client, service.add_agent(shop, "Marco", "+39 348 765 4321"))
    soon = int(time.time()) + 60
    call(client, service.create_link(business_id=shop, slug="old"))
    call(client, service.update_link("old", {"disabled": True}))  # turned off: not a way
    call(client, service.create_link(business_id=shop, slug="ad", campaign="spring"))  # a campaign's: not a way
    call(client, service.create_link(agent_id=agent.id, slug="marco"))  # type: ignore[attr-defined]  # one agent's
    call(client, service.create_link(business_id=shop, slug="brief", expires_at=soon))
    page = client.get("/s/old", headers={"user-agent": IPHONE})
    assert reach_button(page.text) == ("https://chat.example.com/s/brief", "Write to Forno")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)  # "brief" expires too: no general link is left
    for gone in ("old", "brief"):
        page = client.get(f"/s/{gone}", headers={"user-agent": IPHONE, "accept-language": "es"})
        assert page.status_code == 410 and reach_button(page.text) is None
        assert "Pide a Forno un enlace nuevo." in unescape(page.text)  # the business is named, at least
    # With a website widget, its "whoever is on duty" is the way.
    call(client, service.create_widget(shop, "forno"))
    page = client.get("/s/brief", headers={"user-agent": IPHONE, "accept-language": "es"})
    assert reach_button(page.text) == ("https://chat.example.com/w/forno/any?t=Forno", "Escribir a Forno")
    followed = client.get("/w/forno/any?t=Forno", headers={"user-agent": IPHONE, "accept-language": "es"})
    assert followed.status_code == 302 and followed.headers["location"].startswith("https://wa.me/393487654321")
    # in the language of the page it came from (found by a new user: the message was in English)
    assert parse_qs(urlsplit(followed.headers["location"]).query)["text"] == ["¡Hola! Tengo una pregunta sobre Forno"]


def test_a_gone_link_of_no_business_asks_to_tell_whoever_shared_it(client: TestClient, service: Service) -> None:
    call(client, service.create_link(to="+39 347 123 4567", slug="lonely"))
    call(client, service.update_link("lonely", {"disabled": True}))
    page = client.get("/s/lonely", headers={"user-agent": IPHONE, "accept-language": "fr"})
    assert page.status_code == 410 and reach_button(page.text) is None
    assert "Si vous avez scanné ou cliqué ce lien chez un commerce" in unescape(page.text)
