"""The words of the opt-in page, its poster and the widget's panel, per language (the consent
sentence itself is the owner's, per form), and the country a number field starts with. As
`posters.WORDS` and `widget.WORDS` do: plain dictionaries, checked complete by a test."""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from pathlib import Path

import phonenumbers

from .languages import ranges

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "heading": "Get updates on WhatsApp", "intro": "Leave your number and {business} will send you the updates "
        "you ask for on WhatsApp. You can stop them at any time by writing STOP.",
        "country": "Country", "phone": "Your WhatsApp number", "topic": "Updates about", "submit": "Get updates",
        "in": "Thank you! {business} will send you updates about “{topic}” on WhatsApp. Write STOP to end them.",
        "pending": "Almost done: we sent you a message on WhatsApp. Tap Yes there to confirm.",
        "waiting": "We already sent this number a message on WhatsApp: tap Yes there to confirm. If it is no "
        "longer there, please try again tomorrow.",
        "unavailable": "Sign-ups are not possible right now: "
        "{business} cannot send the confirmation. Please try again later.",
        "fix": "Please check the number.",
        "fix_person": "Please use your own mobile number: premium-rate, toll-free and service numbers are not taken.",
        "fix_topic": "Please choose one of the topics.",
        "changed": "The words you agree to have changed since this page was opened. Please read them again "
        "and confirm.",
        "busy": "Too many sign-ups from here right now. Please try again in {minutes} min.",
        "busy_number": "Too many sign-ups for this number right now. Please try again in {minutes} min.",
        "busy_form": "This form is taking too many sign-ups right now. Please try again in {minutes} min.",
        "honeypot": "Leave this field empty",
        "scan": "Scan with your phone camera to get updates on WhatsApp", "back": "Back",
    },
    "it": {
        "heading": "Ricevi aggiornamenti su WhatsApp", "intro": "Lascia il tuo numero e {business} ti manderà su "
        "WhatsApp gli aggiornamenti che chiedi. Puoi fermarli quando vuoi scrivendo STOP.",
        "country": "Paese", "phone": "Il tuo numero WhatsApp", "topic": "Aggiornamenti su", "submit": "Iscriviti",
        "in": "Grazie! {business} ti manderà aggiornamenti su «{topic}» su WhatsApp. Scrivi STOP per fermarli.",
        "pending": "Quasi fatto: ti abbiamo scritto su WhatsApp. Tocca Sì per confermare.",
        "waiting": "Abbiamo già scritto a questo numero su WhatsApp: tocca Sì per confermare. Se il messaggio non "
        "c'è più, riprova domani.",
        "unavailable": "Al momento non è possibile iscriversi: "
        "{business} non può mandare la conferma. Riprova più tardi.",
        "fix": "Controlla il numero.",
        "fix_person": "Usa il tuo numero di cellulare: i numeri a pagamento, verdi e di servizio non sono accettati.",
        "fix_topic": "Scegli uno degli argomenti.",
        "changed": "Il testo a cui acconsenti è cambiato da quando hai aperto la pagina. Rileggilo e conferma "
        "di nuovo.",
        "busy": "Troppe iscrizioni da qui in questo momento. Riprova tra {minutes} min.",
        "busy_number": "Troppe iscrizioni per questo numero in questo momento. Riprova tra {minutes} min.",
        "busy_form": "Questo modulo riceve troppe iscrizioni in questo momento. Riprova tra {minutes} min.",
        "honeypot": "Lascia vuoto questo campo",
        "scan": "Inquadra il codice con la fotocamera per ricevere aggiornamenti su WhatsApp", "back": "Indietro",
    },
    "es": {
        "heading": "Recibe novedades por WhatsApp", "intro": "Deja tu número y {business} te enviará por WhatsApp "
        "las novedades que pidas. Puedes pararlas cuando quieras escribiendo STOP.",
        "country": "País", "phone": "Tu número de WhatsApp", "topic": "Novedades sobre", "submit": "Suscribirme",
        "in": "¡Gracias! {business} te enviará novedades sobre «{topic}» por WhatsApp. Escribe STOP para pararlas.",
        "pending": "Casi listo: te hemos escrito por WhatsApp. Toca Sí para confirmar.",
        "waiting": "Ya escribimos a este número por WhatsApp: toca Sí para confirmar. Si el mensaje ya no está, "
        "inténtalo mañana.",
        "unavailable": "Ahora no es posible suscribirse: "
        "{business} no puede enviar la confirmación. Inténtalo más tarde.",
        "fix": "Revisa el número.",
        "fix_person": "Usa tu número de móvil: "
        "no se aceptan números de tarificación especial, gratuitos ni de servicios.",
        "fix_topic": "Elige uno de los temas.",
        "changed": "El texto que aceptas ha cambiado desde que abriste la página. Léelo de nuevo y confirma.",
        "busy": "Demasiadas altas desde aquí ahora mismo. Inténtalo de nuevo en {minutes} min.",
        "busy_number": "Demasiadas altas para este número ahora mismo. Inténtalo de nuevo en {minutes} min.",
        "busy_form": "Este formulario recibe demasiadas altas ahora mismo. Inténtalo de nuevo en {minutes} min.",
        "honeypot": "Deja este campo vacío",
        "scan": "Escanea el código con la cámara para recibir novedades por WhatsApp", "back": "Atrás",
    },
    "de": {
        "heading": "Neuigkeiten auf WhatsApp", "intro": "Hinterlassen Sie Ihre Nummer, und {business} schickt Ihnen "
        "die gewünschten Neuigkeiten auf WhatsApp. Mit STOP beenden Sie sie jederzeit.",
        "country": "Land", "phone": "Ihre WhatsApp-Nummer", "topic": "Neuigkeiten zu", "submit": "Anmelden",
        "in": "Danke! {business} schickt Ihnen Neuigkeiten zu „{topic}“ auf WhatsApp. Mit STOP beenden Sie sie.",
        "pending": "Fast fertig: Wir haben Ihnen auf WhatsApp geschrieben. Tippen Sie dort auf Ja.",
        "waiting": "Wir haben dieser Nummer schon auf WhatsApp geschrieben: Tippen Sie dort auf Ja. Ist die "
        "Nachricht nicht mehr da, versuchen Sie es bitte morgen.",
        "unavailable": "Eine Anmeldung ist gerade nicht möglich: "
        "{business} kann die Bestätigung nicht senden. Bitte versuchen Sie es später.",
        "fix": "Bitte prüfen Sie die Nummer.",
        "fix_person": "Bitte nutzen Sie Ihre eigene Mobilnummer: "
        "Premium-, gebührenfreie und Servicenummern sind nicht möglich.",
        "fix_topic": "Bitte wählen Sie eines der Themen.",
        "changed": "Der Text, dem Sie zustimmen, hat sich geändert. Bitte lesen Sie ihn erneut und bestätigen Sie.",
        "busy": "Gerade zu viele Anmeldungen von hier. Bitte versuchen Sie es in {minutes} Min. erneut.",
        "busy_number": "Gerade zu viele Anmeldungen für diese Nummer. Bitte versuchen Sie es in {minutes} Min. erneut.",
        "busy_form": "Dieses Formular erhält gerade zu viele Anmeldungen. Bitte versuchen Sie es in {minutes} Min. "
        "erneut.",
        "honeypot": "Dieses Feld leer lassen",
        "scan": "Scannen Sie den Code mit der Kamera, um Neuigkeiten auf WhatsApp zu erhalten", "back": "Zurück",
    },
    "fr": {
        "heading": "Recevez nos nouvelles sur WhatsApp", "intro": "Laissez votre numéro et {business} vous enverra "
        "sur WhatsApp les nouvelles demandées. Écrivez STOP pour les arrêter à tout moment.",
        "country": "Pays", "phone": "Votre numéro WhatsApp", "topic": "Nouvelles sur", "submit": "M'inscrire",
        "in": "Merci ! {business} vous enverra des nouvelles sur « {topic} » sur WhatsApp. Écrivez STOP pour arrêter.",
        "pending": "Presque fini : nous vous avons écrit sur WhatsApp. Touchez Oui pour confirmer.",
        "waiting": "Nous avons déjà écrit à ce numéro sur WhatsApp : touchez Oui pour confirmer. Si le message "
        "n'y est plus, réessayez demain.",
        "unavailable": "L'inscription n'est pas possible pour le moment : "
        "{business} ne peut pas envoyer la confirmation. Réessayez plus tard.",
        "fix": "Vérifiez le numéro.",
        "fix_person": "Utilisez votre propre numéro de mobile : "
        "les numéros surtaxés, gratuits et de service ne sont pas acceptés.",
        "fix_topic": "Choisissez l'un des sujets.",
        "changed": "Le texte que vous acceptez a changé depuis l'ouverture de la page. Relisez-le et confirmez.",
        "busy": "Trop d'inscriptions depuis ici en ce moment. Réessayez dans {minutes} min.",
        "busy_number": "Trop d'inscriptions pour ce numéro en ce moment. Réessayez dans {minutes} min.",
        "busy_form": "Ce formulaire reçoit trop d'inscriptions en ce moment. Réessayez dans {minutes} min.",
        "honeypot": "Laissez ce champ vide",
        "scan": "Scannez le code avec l'appareil photo pour recevoir nos nouvelles sur WhatsApp", "back": "Retour",
    },
    "pt": {
        "heading": "Receba novidades no WhatsApp", "intro": "Deixe seu número e {business} enviará pelo WhatsApp "
        "as novidades que você pedir. Escreva STOP para parar quando quiser.",
        "country": "País", "phone": "Seu número de WhatsApp", "topic": "Novidades sobre", "submit": "Inscrever-me",
        "in": "Obrigado! {business} enviará novidades sobre “{topic}” pelo WhatsApp. Escreva STOP para parar.",
        "pending": "Quase pronto: escrevemos para você no WhatsApp. Toque em Sim para confirmar.",
        "waiting": "Já escrevemos para este número no WhatsApp: toque em Sim para confirmar. Se a mensagem não "
        "estiver mais lá, tente amanhã.",
        "unavailable": "Não é possível se inscrever agora: "
        "{business} não consegue enviar a confirmação. Tente mais tarde.",
        "fix": "Confira o número.",
        "fix_person": "Use o seu próprio número de celular: "
        "números de tarifa especial, gratuitos e de serviço não são aceitos.",
        "fix_topic": "Escolha um dos assuntos.",
        "changed": "O texto com que você concorda mudou desde que abriu a página. Leia de novo e confirme.",
        "busy": "Muitas inscrições daqui agora. Tente de novo em {minutes} min.",
        "busy_number": "Muitas inscrições para este número agora. Tente de novo em {minutes} min.",
        "busy_form": "Este formulário está recebendo inscrições demais agora. Tente de novo em {minutes} min.",
        "honeypot": "Deixe este campo vazio",
        "scan": "Aponte a câmera para o código e receba novidades no WhatsApp", "back": "Voltar",
    },
}  # fmt: skip
LANGUAGES = tuple(WORDS)
# The country a language most often means, when the visitor's language names none ("it", not "it-IT").
LANGUAGE_COUNTRY = {"en": "GB", "it": "IT", "es": "ES", "de": "DE", "fr": "FR", "pt": "PT"}


def words(lang: str) -> dict[str, str]:
    return WORDS.get(lang, WORDS["en"])


@cache
def countries() -> tuple[tuple[str, int], ...]:
    """(region, calling code) of every region phonenumbers knows, by region."""
    return tuple(sorted((r, phonenumbers.country_code_for_region(r)) for r in phonenumbers.SUPPORTED_REGIONS))


COUNTRY_NAMES = Path(__file__).with_name("country_names.json")
"""{language: {region: name}} for the forms' languages: phonenumbers' own names (its geocoding
locale data, whose import costs some 70 MB of memory, so the names are kept here), corrected
where they are wrong for the language (tests/test_optin_words.py's CORRECTED); tests check them
against it, and `python tests/test_optin_words.py` writes them again."""

FOLDED = str.maketrans({"æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ß": "ss", "œ": "oe", "Œ": "OE", "ł": "l",
                        "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH"})  # fmt: skip


@cache
def country_names(lang: str) -> tuple[tuple[str, int, str], ...]:
    """(region, calling code, the region's name in `lang`) of every region phonenumbers knows,
    in the order of their names as people look for them ("Italia +39" under I, "Österreich"
    under O); English names for a language without its own list."""
    names = _country_names()
    named = names.get(lang, names["en"])
    rows = [(region, code, named.get(region, region)) for region, code in countries()]
    return tuple(sorted(rows, key=lambda row: (_folded(row[2]), row[0])))


@cache
def country_pairs(lang: str) -> tuple[str, ...]:
    """`country_names(lang)` as the widget's panel takes them: "IT:39:Italia"."""
    return tuple(f"{region}:{code}:{name}" for region, code, name in country_names(lang))


@cache
def _country_names() -> dict[str, dict[str, str]]:
    return json.loads(COUNTRY_NAMES.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _folded(name: str) -> str:
    """The name as it is looked up by: accents off, æ as ae, case folded."""
    return unicodedata.normalize("NFKD", name.translate(FOLDED)).encode("ascii", "ignore").decode().casefold()


def default_country(languages: str, lang: str, region: str = "") -> str:
    """The number field's country: the first of the visitor's languages (an Accept-Language
    header, or the widget's page language then the browser's) that names a region ("it-IT",
    "pt-BR"); else the server's `region` (CLICKTOCHAT_DEFAULT_REGION); else the usual country
    of the first language that has one ("it": IT); else the page's language's; else none (the
    visitor picks). A page's bare "en" must not beat the browser's "it-IT" (a new user's
    Italian number was read as British)."""
    known = {code for code, _ in countries()}
    tags = [subtags(tag) for tag, q in ranges(languages) if q > 0]  # most wanted first
    for pieces in tags:
        found = next((sub.upper() for sub in pieces[1:] if len(sub) == 2 and sub.isalpha()), "")
        if found in known:
            return found
    if region.upper() in known:
        return region.upper()
    for pieces in tags:
        if pieces[0] in LANGUAGE_COUNTRY:
            return LANGUAGE_COUNTRY[pieces[0]]
    return LANGUAGE_COUNTRY.get(lang, "")


def subtags(tag: str) -> list[str]:
    """A language tag's subtags before any singleton ("en-US-x-twain": en, us; what follows "x"
    or "u" is private use or an extension, never the region)."""
    pieces = []
    for sub in tag.split("-"):
        if len(sub) == 1:
            break
        pieces.append(sub)
    return pieces or [""]


def topic_label(topic: str) -> str:
    """A topic's name made readable, where its form gives no label: "new-arrivals": "New arrivals"."""
    return topic.replace("-", " ").replace("_", " ").capitalize()
