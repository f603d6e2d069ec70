"""The words of the pages a customer meets on a link: the landing page, the preview crawlers
see, and the error pages (404, 410, 503, ...), per language. As `posters.WORDS`,
`optin_words.WORDS` and `widget.WORDS` do: plain dictionaries, one per language, checked
complete by a test. The language is `languages.choose(?lang=, Accept-Language)`."""

from __future__ import annotations

from .languages import choose

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "chat_with": "Chat with {name} on {channel}", "chat_with_us": "Chat with us on {channel}",
        "start": "Start a chat",
        "continue": "Continue on {channel}. Your message is ready; you can change it before sending.",
        "message": "Message preview", "open": "Open {channel}", "qr": "QR code of this link",
        "scan": "On your phone? Scan this code with the camera to continue the chat there.",
        "tap": "Tap to start a chat.", "open_chat": "Open the chat",
        "title": "This did not work", "title_404": "Not found", "title_410": "This link no longer works",
        "title_429": "Please wait a moment", "title_500": "Something went wrong",
        "title_503": "Nobody can answer yet",
        "no_link": "There is no chat link here. Check the address, or ask the business for a new one.",
        "no_page": "There is nothing at this address.",
        "bad_link": "This link is not valid. Check that it was copied completely.",
        "expired": "This chat link has expired.", "disabled": "This chat link has been turned off by the business.",
        "nobody": "Nobody can take this chat yet: the business has not added anyone to answer.",
        "old_button": "This chat button is out of date: the website no longer has it.",
        "server": "Something went wrong on our side. Please try again.",
        "tell": "If you scanned or clicked this link from a business, let them know it does not work.",
        "reach": "You can still write to {business}.", "write": "Write to {business}",
        "ask": "Ask {business} for a new link.",
    },
    "it": {
        "chat_with": "Scrivi a {name} su {channel}", "chat_with_us": "Scrivici su {channel}",
        "start": "Inizia una chat",
        "continue": "Continua su {channel}. Il messaggio è pronto; puoi cambiarlo prima di inviarlo.",
        "message": "Anteprima del messaggio", "open": "Apri {channel}", "qr": "Codice QR di questo link",
        "scan": "Sei al telefono? Inquadra questo codice con la fotocamera per continuare la chat lì.",
        "tap": "Tocca per iniziare una chat.", "open_chat": "Apri la chat",
        "title": "Non ha funzionato", "title_404": "Non trovato", "title_410": "Questo link non funziona più",
        "title_429": "Attendi un momento", "title_500": "Qualcosa è andato storto",
        "title_503": "Ancora nessuno può rispondere",
        "no_link": "Qui non c'è nessun link per chattare. Controlla l'indirizzo o chiedine uno nuovo all'attività.",
        "no_page": "A questo indirizzo non c'è niente.",
        "bad_link": "Questo link non è valido. Controlla che sia stato copiato per intero.",
        "expired": "Questo link per chattare è scaduto.",
        "disabled": "Questo link per chattare è stato disattivato dall'attività.",
        "nobody": "Ancora nessuno può rispondere a questa chat: l'attività non ha aggiunto nessuno.",
        "old_button": "Questo pulsante per chattare non è più aggiornato: il sito non lo ha più.",
        "server": "Qualcosa è andato storto da parte nostra. Riprova.",
        "tell": "Se hai inquadrato o cliccato questo link da un'attività, avvisala che non funziona.",
        "reach": "Puoi comunque scrivere a {business}.", "write": "Scrivi a {business}",
        "ask": "Chiedi a {business} un link nuovo.",
    },
    "es": {
        "chat_with": "Escribe a {name} por {channel}", "chat_with_us": "Escríbenos por {channel}",
        "start": "Empezar un chat",
        "continue": "Sigue en {channel}. Tu mensaje está listo; puedes cambiarlo antes de enviarlo.",
        "message": "Vista previa del mensaje", "open": "Abrir {channel}", "qr": "Código QR de este enlace",
        "scan": "¿Estás en el móvil? Escanea este código con la cámara para seguir el chat allí.",
        "tap": "Toca para empezar un chat.", "open_chat": "Abrir el chat",
        "title": "No ha funcionado", "title_404": "No encontrado", "title_410": "Este enlace ya no funciona",
        "title_429": "Espera un momento", "title_500": "Algo ha salido mal",
        "title_503": "Todavía no puede responder nadie",
        "no_link": "Aquí no hay ningún enlace de chat. Revisa la dirección o pide uno nuevo al negocio.",
        "no_page": "No hay nada en esta dirección.",
        "bad_link": "Este enlace no es válido. Comprueba que se haya copiado entero.",
        "expired": "Este enlace de chat ha caducado.", "disabled": "El negocio ha desactivado este enlace de chat.",
        "nobody": "Todavía nadie puede atender este chat: el negocio no ha añadido a nadie.",
        "old_button": "Este botón de chat está desactualizado: la web ya no lo tiene.",
        "server": "Algo ha salido mal por nuestra parte. Inténtalo de nuevo.",
        "tell": "Si escaneaste o pulsaste este enlace de un negocio, avísale de que no funciona.",
        "reach": "Aún puedes escribir a {business}.", "write": "Escribir a {business}",
        "ask": "Pide a {business} un enlace nuevo.",
    },
    "pt": {
        "chat_with": "Converse com {name} no {channel}", "chat_with_us": "Fale conosco no {channel}",
        "start": "Iniciar uma conversa",
        "continue": "Continue no {channel}. Sua mensagem está pronta; você pode mudá-la antes de enviar.",
        "message": "Prévia da mensagem", "open": "Abrir o {channel}", "qr": "Código QR deste link",
        "scan": "Está no celular? Aponte a câmera para este código para continuar a conversa por lá.",
        "tap": "Toque para iniciar uma conversa.", "open_chat": "Abrir a conversa",
        "title": "Não funcionou", "title_404": "Não encontrado", "title_410": "Este link não funciona mais",
        "title_429": "Aguarde um momento", "title_500": "Algo deu errado",
        "title_503": "Ninguém pode responder ainda",
        "no_link": "Não há nenhum link de conversa aqui. Confira o endereço ou peça um novo à empresa.",
        "no_page": "Não há nada neste endereço.",
        "bad_link": "Este link não é válido. Confira se foi copiado por inteiro.",
        "expired": "Este link de conversa expirou.", "disabled": "A empresa desativou este link de conversa.",
        "nobody": "Ninguém pode atender esta conversa ainda: a empresa não adicionou ninguém.",
        "old_button": "Este botão de conversa está desatualizado: o site não o tem mais.",
        "server": "Algo deu errado do nosso lado. Tente de novo.",
        "tell": "Se você escaneou ou tocou neste link de uma empresa, avise que ele não funciona.",
        "reach": "Você ainda pode escrever para {business}.", "write": "Escrever para {business}",
        "ask": "Peça um link novo para {business}.",
    },
    "de": {
        "chat_with": "Schreiben Sie {name} auf {channel}", "chat_with_us": "Schreiben Sie uns auf {channel}",
        "start": "Chat beginnen",
        "continue": "Weiter auf {channel}. Ihre Nachricht ist fertig; Sie können sie vor dem Senden ändern.",
        "message": "Vorschau der Nachricht", "open": "{channel} öffnen", "qr": "QR-Code dieses Links",
        "scan": "Am Handy? Scannen Sie diesen Code mit der Kamera, um den Chat dort fortzusetzen.",
        "tap": "Tippen, um einen Chat zu beginnen.", "open_chat": "Chat öffnen",
        "title": "Das hat nicht geklappt", "title_404": "Nicht gefunden",
        "title_410": "Dieser Link funktioniert nicht mehr", "title_429": "Bitte einen Moment warten",
        "title_500": "Etwas ist schiefgegangen", "title_503": "Noch kann niemand antworten",
        "no_link": "Hier gibt es keinen Chat-Link. Prüfen Sie die Adresse oder bitten Sie das Geschäft um einen "
        "neuen.",
        "no_page": "Unter dieser Adresse gibt es nichts.",
        "bad_link": "Dieser Link ist ungültig. Prüfen Sie, ob er vollständig kopiert wurde.",
        "expired": "Dieser Chat-Link ist abgelaufen.", "disabled": "Das Geschäft hat diesen Chat-Link abgeschaltet.",
        "nobody": "Noch kann niemand diesen Chat annehmen: Das Geschäft hat niemanden eingetragen.",
        "old_button": "Dieser Chat-Button ist veraltet: Die Website hat ihn nicht mehr.",
        "server": "Bei uns ist etwas schiefgegangen. Bitte versuchen Sie es noch einmal.",
        "tell": "Wenn Sie diesen Link bei einem Geschäft gescannt oder angeklickt haben, sagen Sie dort Bescheid, "
        "dass er nicht funktioniert.",
        "reach": "Sie können {business} trotzdem schreiben.", "write": "{business} schreiben",
        "ask": "Bitten Sie {business} um einen neuen Link.",
    },
    "fr": {
        "chat_with": "Écrivez à {name} sur {channel}", "chat_with_us": "Écrivez-nous sur {channel}",
        "start": "Démarrer une discussion",
        "continue": "Continuez sur {channel}. Votre message est prêt ; vous pouvez le modifier avant de l'envoyer.",
        "message": "Aperçu du message", "open": "Ouvrir {channel}", "qr": "Code QR de ce lien",
        "scan": "Sur votre téléphone ? Scannez ce code avec l'appareil photo pour y continuer la discussion.",
        "tap": "Touchez pour démarrer une discussion.", "open_chat": "Ouvrir la discussion",
        "title": "Cela n'a pas marché", "title_404": "Introuvable", "title_410": "Ce lien ne marche plus",
        "title_429": "Patientez un instant", "title_500": "Un problème est survenu",
        "title_503": "Personne ne peut encore répondre",
        "no_link": "Il n'y a pas de lien de discussion ici. Vérifiez l'adresse ou demandez-en un nouveau au "
        "commerce.",
        "no_page": "Il n'y a rien à cette adresse.",
        "bad_link": "Ce lien n'est pas valide. Vérifiez qu'il a été copié en entier.",
        "expired": "Ce lien de discussion a expiré.", "disabled": "Le commerce a désactivé ce lien de discussion.",
        "nobody": "Personne ne peut encore prendre cette discussion : le commerce n'a ajouté personne.",
        "old_button": "Ce bouton de discussion n'est plus à jour : le site ne l'a plus.",
        "server": "Un problème est survenu de notre côté. Veuillez réessayer.",
        "tell": "Si vous avez scanné ou cliqué ce lien chez un commerce, prévenez-le qu'il ne marche pas.",
        "reach": "Vous pouvez quand même écrire à {business}.", "write": "Écrire à {business}",
        "ask": "Demandez un nouveau lien à {business}.",
    },
}  # fmt: skip
LANGUAGES = tuple(WORDS)


def page_language(asked: str, accept_language: str) -> str:
    """A customer page's language: ?lang= when we speak it, else the visitor's Accept-Language
    (with its q-values), else English."""
    return choose(asked, accept_language, LANGUAGES)


def chat_with(lang: str, name: str | None, channel: str) -> str:
    """ "Chat with Pasticceria Dolce Vita on WhatsApp", or "with us" for a link without a name."""
    words = WORDS[lang]
    return words["chat_with"].format(name=name, channel=channel) if name else \
        words["chat_with_us"].format(channel=channel)  # fmt: skip
