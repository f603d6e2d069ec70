"""The words of the pages a customer meets on a link: the landing page, the preview crawlers
see, and the error pages (404, 410, 503, ...), per language. As `posters.WORDS`,
`optin_words.WORDS` and `widget.WORDS` do: plain dictionaries, one per language, checked
complete by a test. The language is `languages.choose(?lang=, Accept-Language)`.

Messengers are named ("Chat with X on Telegram", "Chat on Telegram"); an SMS, a phone call and
an e-mail name their action instead ("Call X", "Send an SMS"), see `ACTIONS`."""

from __future__ import annotations

from .channels import Channel
from .languages import choose

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "chat_with": "Chat with {name} on {channel}", "chat_with_us": "Chat with us on {channel}",
        "chat_on": "Chat on {channel}", "call_name": "Call {name}", "call_us": "Call us", "call": "Call",
        "sms_name": "Send {name} an SMS", "sms_us": "Send us an SMS", "sms": "Send an SMS",
        "email_name": "E-mail {name}", "email_us": "E-mail us", "email": "Send an e-mail",
        "lead": "Continue on {channel}.", "ready": "Your message is ready; you can change it before sending.",
        "lead_call": "The call starts on your phone, or in a calling app on this computer.",
        "lead_sms": "This opens your messages app.", "lead_email": "This opens your e-mail app.",
        "copy_hint": "{channel} cannot fill in your message: copy it, then paste it into the chat.",
        "copy_call": "Your message, to have at hand during the call:", "copy": "Copy", "copied": "Copied",
        "missing": "Nothing happened? {channel} is probably not installed on this device. Get it from your app "
        "store, or scan the QR code with a phone that has it.",
        "get_app": "Get {channel}", "web": "Use {channel} in the browser",
        "no_app": "On a computer without an app for this, scan the QR code with your phone instead.",
        "others": "Other ways to reach us",
        "message": "Message preview", "open": "Open {channel}", "qr": "QR code of this link",
        "scan": "On your phone? Scan this code with the camera to continue the chat there.",
        "tap": "Tap to start a chat.",
        "title": "This did not work", "title_404": "Not found", "title_410": "This link no longer works",
        "title_429": "Please wait a moment", "title_500": "Something went wrong",
        "title_503": "Nobody can answer yet",
        "no_link": "There is no chat link here. Check the address, or ask the business for a new one.",
        "no_form": "There is no sign-up form here. Check the address, or ask the business for a new one.",
        "no_page": "There is nothing at this address.",
        "bad_link": "This link is not valid. Check that it was copied completely.",
        "expired": "This chat link has expired.", "disabled": "This chat link has been turned off by the business.",
        "nobody": "Nobody can take this chat yet: the business has not added anyone to answer.",
        "old_button": "This chat button is out of date: the website no longer has it.",
        "server": "Something went wrong on our side. Please try again.",
        "away": "We cannot open this link for a moment. Please try again in a few seconds.",
        "tell": "If you scanned or clicked this link from a business, let them know it does not work.",
        "reach": "You can still write to {business}.", "write": "Write to {business}",
        "ask": "Ask {business} for a new link.",
        "channel_gone": "This chat link asks for {channel}, which is not available here.",
        "elsewhere": "You can still write to {business} on:", "elsewhere_us": "You can still write to us on:",
    },
    "it": {
        "chat_with": "Scrivi a {name} su {channel}", "chat_with_us": "Scrivici su {channel}",
        "chat_on": "Scrivi su {channel}", "call_name": "Chiama {name}", "call_us": "Chiamaci", "call": "Chiama",
        "sms_name": "Manda un SMS a {name}", "sms_us": "Mandaci un SMS", "sms": "Manda un SMS",
        "email_name": "Scrivi un'e-mail a {name}", "email_us": "Scrivici un'e-mail", "email": "Manda un'e-mail",
        "lead": "Continua su {channel}.", "ready": "Il messaggio è pronto; puoi cambiarlo prima di inviarlo.",
        "lead_call": "La chiamata parte dal tuo telefono, o da un'app per chiamare su questo computer.",
        "lead_sms": "Si apre l'app dei messaggi.", "lead_email": "Si apre la tua app di posta.",
        "copy_hint": "{channel} non può inserire il messaggio: copialo e incollalo nella chat.",
        "copy_call": "Il tuo messaggio, da tenere sott'occhio durante la chiamata:", "copy": "Copia",
        "copied": "Copiato",
        "missing": "Non succede niente? Probabilmente {channel} non è installato su questo dispositivo. Scaricalo "
        "dal tuo app store, oppure inquadra il codice QR con un telefono che ce l'ha.",
        "get_app": "Scarica {channel}", "web": "Usa {channel} nel browser",
        "no_app": "Su un computer senza un'app adatta, inquadra invece il codice QR con il telefono.",
        "others": "Altri modi per contattarci",
        "message": "Anteprima del messaggio", "open": "Apri {channel}", "qr": "Codice QR di questo link",
        "scan": "Sei al telefono? Inquadra questo codice con la fotocamera per continuare la chat lì.",
        "tap": "Tocca per iniziare una chat.",
        "title": "Non ha funzionato", "title_404": "Non trovato", "title_410": "Questo link non funziona più",
        "title_429": "Attendi un momento", "title_500": "Qualcosa è andato storto",
        "title_503": "Ancora nessuno può rispondere",
        "no_link": "Qui non c'è nessun link per chattare. Controlla l'indirizzo o chiedine uno nuovo all'attività.",
        "no_form": "Qui non c'è nessun modulo di iscrizione. Controlla l'indirizzo o chiedine uno nuovo all'attività.",
        "no_page": "A questo indirizzo non c'è niente.",
        "bad_link": "Questo link non è valido. Controlla che sia stato copiato per intero.",
        "expired": "Questo link per chattare è scaduto.",
        "disabled": "Questo link per chattare è stato disattivato dall'attività.",
        "nobody": "Ancora nessuno può rispondere a questa chat: l'attività non ha aggiunto nessuno.",
        "old_button": "Questo pulsante per chattare non è più aggiornato: il sito non lo ha più.",
        "server": "Qualcosa è andato storto da parte nostra. Riprova.",
        "away": "Per un momento non riusciamo ad aprire questo link. Riprova tra qualche secondo.",
        "tell": "Se hai inquadrato o cliccato questo link da un'attività, avvisala che non funziona.",
        "reach": "Puoi comunque scrivere a {business}.", "write": "Scrivi a {business}",
        "ask": "Chiedi a {business} un link nuovo.",
        "channel_gone": "Questo link per chattare porta a {channel}, che qui non è disponibile.",
        "elsewhere": "Puoi comunque scrivere a {business} su:", "elsewhere_us": "Puoi comunque scriverci su:",
    },
    "es": {
        "chat_with": "Escribe a {name} por {channel}", "chat_with_us": "Escríbenos por {channel}",
        "chat_on": "Chatear por {channel}", "call_name": "Llamar a {name}", "call_us": "Llámanos", "call": "Llamar",
        "sms_name": "Enviar un SMS a {name}", "sms_us": "Envíanos un SMS", "sms": "Enviar un SMS",
        "email_name": "Escribir un correo a {name}", "email_us": "Escríbenos un correo", "email": "Enviar un correo",
        "lead": "Sigue en {channel}.", "ready": "Tu mensaje está listo; puedes cambiarlo antes de enviarlo.",
        "lead_call": "La llamada sale de tu teléfono o de una app de llamadas de este ordenador.",
        "lead_sms": "Se abre tu app de mensajes.", "lead_email": "Se abre tu app de correo.",
        "copy_hint": "{channel} no puede rellenar tu mensaje: cópialo y pégalo en el chat.",
        "copy_call": "Tu mensaje, para tenerlo a mano durante la llamada:", "copy": "Copiar", "copied": "Copiado",
        "missing": "¿No pasa nada? Seguramente {channel} no está instalado en este dispositivo. Descárgalo de tu "
        "tienda de apps o escanea el código QR con un teléfono que lo tenga.",
        "get_app": "Descargar {channel}", "web": "Usar {channel} en el navegador",
        "no_app": "En un ordenador sin una app para esto, escanea el código QR con tu teléfono.",
        "others": "Otras formas de contactarnos",
        "message": "Vista previa del mensaje", "open": "Abrir {channel}", "qr": "Código QR de este enlace",
        "scan": "¿Estás en el móvil? Escanea este código con la cámara para seguir el chat allí.",
        "tap": "Toca para empezar un chat.",
        "title": "No ha funcionado", "title_404": "No encontrado", "title_410": "Este enlace ya no funciona",
        "title_429": "Espera un momento", "title_500": "Algo ha salido mal",
        "title_503": "Todavía no puede responder nadie",
        "no_link": "Aquí no hay ningún enlace de chat. Revisa la dirección o pide uno nuevo al negocio.",
        "no_form": "Aquí no hay ningún formulario de suscripción. Revisa la dirección o pide uno nuevo al negocio.",
        "no_page": "No hay nada en esta dirección.",
        "bad_link": "Este enlace no es válido. Comprueba que se haya copiado entero.",
        "expired": "Este enlace de chat ha caducado.", "disabled": "El negocio ha desactivado este enlace de chat.",
        "nobody": "Todavía nadie puede atender este chat: el negocio no ha añadido a nadie.",
        "old_button": "Este botón de chat está desactualizado: la web ya no lo tiene.",
        "server": "Algo ha salido mal por nuestra parte. Inténtalo de nuevo.",
        "away": "Ahora mismo no podemos abrir este enlace. Inténtalo de nuevo en unos segundos.",
        "tell": "Si escaneaste o pulsaste este enlace de un negocio, avísale de que no funciona.",
        "reach": "Aún puedes escribir a {business}.", "write": "Escribir a {business}",
        "ask": "Pide a {business} un enlace nuevo.",
        "channel_gone": "Este enlace de chat lleva a {channel}, que aquí no está disponible.",
        "elsewhere": "Aún puedes escribir a {business} por:", "elsewhere_us": "Aún puedes escribirnos por:",
    },
    "pt": {
        "chat_with": "Converse com {name} no {channel}", "chat_with_us": "Fale conosco no {channel}",
        "chat_on": "Conversar no {channel}", "call_name": "Ligar para {name}", "call_us": "Ligue para nós",
        "call": "Ligar", "sms_name": "Enviar um SMS para {name}", "sms_us": "Envie um SMS para nós",
        "sms": "Enviar um SMS", "email_name": "Enviar um e-mail para {name}", "email_us": "Envie um e-mail para nós",
        "email": "Enviar um e-mail",
        "lead": "Continue no {channel}.", "ready": "Sua mensagem está pronta; você pode mudá-la antes de enviar.",
        "lead_call": "A ligação sai do seu celular ou de um app de chamadas neste computador.",
        "lead_sms": "Isto abre o seu app de mensagens.", "lead_email": "Isto abre o seu app de e-mail.",
        "copy_hint": "O {channel} não preenche sua mensagem: copie-a e cole-a na conversa.",
        "copy_call": "Sua mensagem, para ter à mão durante a ligação:", "copy": "Copiar", "copied": "Copiado",
        "missing": "Nada aconteceu? Provavelmente o {channel} não está instalado neste aparelho. Baixe-o na loja de "
        "apps ou aponte para o código QR a câmera de um celular que o tenha.",
        "get_app": "Baixar o {channel}", "web": "Usar o {channel} no navegador",
        "no_app": "Num computador sem um app para isso, aponte a câmera do celular para o código QR.",
        "others": "Outras formas de falar conosco",
        "message": "Prévia da mensagem", "open": "Abrir o {channel}", "qr": "Código QR deste link",
        "scan": "Está no celular? Aponte a câmera para este código para continuar a conversa por lá.",
        "tap": "Toque para iniciar uma conversa.",
        "title": "Não funcionou", "title_404": "Não encontrado", "title_410": "Este link não funciona mais",
        "title_429": "Aguarde um momento", "title_500": "Algo deu errado",
        "title_503": "Ninguém pode responder ainda",
        "no_link": "Não há nenhum link de conversa aqui. Confira o endereço ou peça um novo à empresa.",
        "no_form": "Não há nenhum formulário de inscrição aqui. Confira o endereço ou peça um novo à empresa.",
        "no_page": "Não há nada neste endereço.",
        "bad_link": "Este link não é válido. Confira se foi copiado por inteiro.",
        "expired": "Este link de conversa expirou.", "disabled": "A empresa desativou este link de conversa.",
        "nobody": "Ninguém pode atender esta conversa ainda: a empresa não adicionou ninguém.",
        "old_button": "Este botão de conversa está desatualizado: o site não o tem mais.",
        "server": "Algo deu errado do nosso lado. Tente de novo.",
        "away": "No momento não conseguimos abrir este link. Tente de novo em alguns segundos.",
        "tell": "Se você escaneou ou tocou neste link de uma empresa, avise que ele não funciona.",
        "reach": "Você ainda pode escrever para {business}.", "write": "Escrever para {business}",
        "ask": "Peça um link novo para {business}.",
        "channel_gone": "Este link de conversa leva ao {channel}, que não está disponível aqui.",
        "elsewhere": "Você ainda pode escrever para {business} por:",
        "elsewhere_us": "Você ainda pode nos escrever por:",
    },
    "de": {
        "chat_with": "Schreiben Sie {name} auf {channel}", "chat_with_us": "Schreiben Sie uns auf {channel}",
        "chat_on": "Auf {channel} schreiben", "call_name": "{name} anrufen", "call_us": "Rufen Sie uns an",
        "call": "Anrufen", "sms_name": "{name} eine SMS senden", "sms_us": "Senden Sie uns eine SMS",
        "sms": "SMS senden", "email_name": "{name} eine E-Mail schreiben", "email_us": "Schreiben Sie uns eine E-Mail",
        "email": "E-Mail schreiben",
        "lead": "Weiter auf {channel}.", "ready": "Ihre Nachricht ist fertig; Sie können sie vor dem Senden ändern.",
        "lead_call": "Der Anruf startet auf Ihrem Handy oder in einer Telefonie-App auf diesem Computer.",
        "lead_sms": "Das öffnet Ihre Nachrichten-App.", "lead_email": "Das öffnet Ihr E-Mail-Programm.",
        "copy_hint": "{channel} kann Ihre Nachricht nicht einfügen: Kopieren Sie sie und fügen Sie sie im Chat ein.",
        "copy_call": "Ihre Nachricht, für den Anruf zur Hand:", "copy": "Kopieren", "copied": "Kopiert",
        "missing": "Nichts passiert? Dann ist {channel} auf diesem Gerät wohl nicht installiert. Laden Sie es im "
        "App Store herunter oder scannen Sie den QR-Code mit einem Handy, auf dem es installiert ist.",
        "get_app": "{channel} herunterladen", "web": "{channel} im Browser nutzen",
        "no_app": "Auf einem Computer ohne passende App scannen Sie stattdessen den QR-Code mit dem Handy.",
        "others": "Andere Wege zu uns",
        "message": "Vorschau der Nachricht", "open": "{channel} öffnen", "qr": "QR-Code dieses Links",
        "scan": "Am Handy? Scannen Sie diesen Code mit der Kamera, um den Chat dort fortzusetzen.",
        "tap": "Tippen, um einen Chat zu beginnen.",
        "title": "Das hat nicht geklappt", "title_404": "Nicht gefunden",
        "title_410": "Dieser Link funktioniert nicht mehr", "title_429": "Bitte einen Moment warten",
        "title_500": "Etwas ist schiefgegangen", "title_503": "Noch kann niemand antworten",
        "no_link": "Hier gibt es keinen Chat-Link. Prüfen Sie die Adresse oder bitten Sie das Geschäft um einen "
        "neuen.",
        "no_form": "Hier gibt es kein Anmeldeformular. Prüfen Sie die Adresse oder bitten Sie das Geschäft um ein "
        "neues.",
        "no_page": "Unter dieser Adresse gibt es nichts.",
        "bad_link": "Dieser Link ist ungültig. Prüfen Sie, ob er vollständig kopiert wurde.",
        "expired": "Dieser Chat-Link ist abgelaufen.", "disabled": "Das Geschäft hat diesen Chat-Link abgeschaltet.",
        "nobody": "Noch kann niemand diesen Chat annehmen: Das Geschäft hat niemanden eingetragen.",
        "old_button": "Dieser Chat-Button ist veraltet: Die Website hat ihn nicht mehr.",
        "server": "Bei uns ist etwas schiefgegangen. Bitte versuchen Sie es noch einmal.",
        "away": "Wir können diesen Link gerade nicht öffnen. Bitte versuchen Sie es in ein paar Sekunden erneut.",
        "tell": "Wenn Sie diesen Link bei einem Geschäft gescannt oder angeklickt haben, sagen Sie dort Bescheid, "
        "dass er nicht funktioniert.",
        "reach": "Sie können {business} trotzdem schreiben.", "write": "{business} schreiben",
        "ask": "Bitten Sie {business} um einen neuen Link.",
        "channel_gone": "Dieser Chat-Link führt zu {channel}; das wird hier nicht angeboten.",
        "elsewhere": "Sie können {business} weiterhin hier schreiben:",
        "elsewhere_us": "Sie können uns weiterhin hier schreiben:",
    },
    "fr": {
        "chat_with": "Écrivez à {name} sur {channel}", "chat_with_us": "Écrivez-nous sur {channel}",
        "chat_on": "Discuter sur {channel}", "call_name": "Appeler {name}", "call_us": "Appelez-nous",
        "call": "Appeler", "sms_name": "Envoyer un SMS à {name}", "sms_us": "Envoyez-nous un SMS",
        "sms": "Envoyer un SMS", "email_name": "Écrire un e-mail à {name}", "email_us": "Écrivez-nous un e-mail",
        "email": "Envoyer un e-mail",
        "lead": "Continuez sur {channel}.",
        "ready": "Votre message est prêt ; vous pouvez le modifier avant de l'envoyer.",
        "lead_call": "L'appel part de votre téléphone, ou d'une application d'appel sur cet ordinateur.",
        "lead_sms": "Cela ouvre votre application de messages.", "lead_email": "Cela ouvre votre messagerie.",
        "copy_hint": "{channel} ne peut pas remplir votre message : copiez-le, puis collez-le dans la discussion.",
        "copy_call": "Votre message, à garder sous la main pendant l'appel :", "copy": "Copier", "copied": "Copié",
        "missing": "Rien ne se passe ? {channel} n'est sans doute pas installé sur cet appareil. Téléchargez-le "
        "depuis votre magasin d'applications, ou scannez le code QR avec un téléphone qui l'a.",
        "get_app": "Télécharger {channel}", "web": "Utiliser {channel} dans le navigateur",
        "no_app": "Sur un ordinateur sans application adaptée, scannez plutôt le code QR avec votre téléphone.",
        "others": "D'autres façons de nous joindre",
        "message": "Aperçu du message", "open": "Ouvrir {channel}", "qr": "Code QR de ce lien",
        "scan": "Sur votre téléphone ? Scannez ce code avec l'appareil photo pour y continuer la discussion.",
        "tap": "Touchez pour démarrer une discussion.",
        "title": "Cela n'a pas marché", "title_404": "Introuvable", "title_410": "Ce lien ne marche plus",
        "title_429": "Patientez un instant", "title_500": "Un problème est survenu",
        "title_503": "Personne ne peut encore répondre",
        "no_link": "Il n'y a pas de lien de discussion ici. Vérifiez l'adresse ou demandez-en un nouveau au "
        "commerce.",
        "no_form": "Il n'y a pas de formulaire d'inscription ici. Vérifiez l'adresse ou demandez-en un nouveau "
        "au commerce.",
        "no_page": "Il n'y a rien à cette adresse.",
        "bad_link": "Ce lien n'est pas valide. Vérifiez qu'il a été copié en entier.",
        "expired": "Ce lien de discussion a expiré.", "disabled": "Le commerce a désactivé ce lien de discussion.",
        "nobody": "Personne ne peut encore prendre cette discussion : le commerce n'a ajouté personne.",
        "old_button": "Ce bouton de discussion n'est plus à jour : le site ne l'a plus.",
        "server": "Un problème est survenu de notre côté. Veuillez réessayer.",
        "away": "Nous ne pouvons pas ouvrir ce lien pour le moment. Réessayez dans quelques secondes.",
        "tell": "Si vous avez scanné ou cliqué ce lien chez un commerce, prévenez-le qu'il ne marche pas.",
        "reach": "Vous pouvez quand même écrire à {business}.", "write": "Écrire à {business}",
        "ask": "Demandez un nouveau lien à {business}.",
        "channel_gone": "Ce lien de discussion mène à {channel}, qui n'est pas proposé ici.",
        "elsewhere": "Vous pouvez toujours écrire à {business} sur :",
        "elsewhere_us": "Vous pouvez toujours nous écrire sur :",
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


ACTIONS = {"sms": "sms", "call": "call", "email": "email"}
"""Channels whose words are their own action ("Call us"); the others are messengers ("Chat with
us on Signal"), and Viber, whose page opens an app that may be missing, says "Open Viber"."""


def heading(lang: str, name: str | None, channel: Channel) -> str:
    """A page's heading and title: "Chat with Dolce Vita on Telegram", "Call Dolce Vita", "Call us"."""
    kind = ACTIONS.get(channel.name)
    if kind is None:
        return chat_with(lang, name, channel.label)
    words = WORDS[lang]
    return words[f"{kind}_name"].format(name=name) if name else words[f"{kind}_us"]


def button(lang: str, channel: Channel) -> str:
    """The button that opens the chat: "Chat on Telegram", "Open Viber", "Call", "Send an e-mail"."""
    kind = ACTIONS.get(channel.name)
    if kind is not None:
        return WORDS[lang][kind]
    return WORDS[lang]["open" if channel.page_first else "chat_on"].format(channel=channel.label)


def lead(lang: str, channel: Channel, text: str) -> str:
    """The line under the heading: where the button leads, and whether the message is ready there."""
    words = WORDS[lang]
    kind = ACTIONS.get(channel.name)
    first = words[f"lead_{kind}"] if kind else words["lead"].format(channel=channel.label)
    return f"{first} {words['ready']}" if text and channel.takes_text else first
