/*! clicktochat opt-in panel | MIT */
// "Get updates on WhatsApp" inside the widget's panel. widget.js imports this module only when
// the widget's owner turned it on (the widget's `optin_form`), so pages without it never load
// it. The words and the consent sentence come from the server in the widget's language; the
// form posts to the same server, without cookies, and nothing else is called.
const CSS = `
.optin { border-top: 1px solid rgba(0, 0, 0, .12); padding: 10px 16px 14px; }
.updates { width: 100%; border: 0; border-radius: 10px; padding: 10px; background: rgba(0, 0, 0, .06); font-weight: 600; }
.optin form { display: grid; grid-template-columns: minmax(0, 1fr); gap: 8px; margin-top: 10px; }
.optin label { display: grid; grid-template-columns: minmax(0, 1fr); gap: 2px; font-size: 13px; font-weight: 600; }
.optin input, .optin select { min-width: 0; width: 100%; box-sizing: border-box; font: inherit; padding: 7px; border: 1px solid #767676; border-radius: 8px; background: #fff; color: #111; }
.optin [aria-invalid="true"] { border-color: #b3261e; }
.consent { font-size: 13px; margin: 0; }
.send { border: 0; border-radius: 10px; padding: 10px; background: var(--colour); color: var(--text); font-weight: 600; }
.said { margin: 8px 0 0; }
.hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
@media (prefers-color-scheme: dark) { .optin { border-color: rgba(255, 255, 255, .16); } .updates { background: rgba(255, 255, 255, .1); } }
`;

export default ({ panel, handoff, el, id, config }) => {
  const { form, script } = config.optin;
  const origin = new URL(script).origin;
  const query = new URLSearchParams({ lang: config.lang, hl: [document.documentElement.lang, ...navigator.languages].join() });
  fetch(`${origin}/api/optin/${encodeURIComponent(form)}?${query}`, { credentials: "omit", referrerPolicy: "strict-origin" })
    .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`opt-in form ${form}: ${response.status}`))))
    .then(draw)
    .catch((error) => console.warn("clicktochat:", error.message));

  function draw(shown) {
    const words = shown.words;
    const root = panel.getRootNode();
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];

    const field = (label, control) => el("label", {}, label, control);
    const country = el("select", { name: "country", autocomplete: "tel-country-code" });
    for (const pair of shown.countries) {
      const [region, code, name] = pair.split(":");
      country.append(el("option", { value: region }, `${name || region} +${code}`));
    }
    country.value = shown.country || "";
    const phone = el("input", { name: "phone", type: "tel", inputmode: "tel", autocomplete: "tel-national", required: "", maxlength: "40" });
    const topic = el("select", { name: "topic" }, ...shown.topics.map(([value, label]) => el("option", { value }, label)));
    const trap = el("input", { name: shown.honeypot, tabindex: "-1", autocomplete: "off", "aria-hidden": "true", class: "hp" });
    const said = el("p", { class: "said", id: "said", role: "status" });
    const send = el("button", { type: "submit", class: "send", "aria-describedby": "oc" }, words.submit);
    const fields = el(
      "form",
      { id: "o", hidden: "", novalidate: "" },
      field(words.country, country),
      field(words.phone, phone),
      shown.topics.length > 1 ? field(words.topic, topic) : "",
      trap,
      el("p", { class: "consent", id: "oc" }, shown.wording),
      send,
    );
    const toggle = el("button", { type: "button", class: "updates", "aria-expanded": "false", "aria-controls": "o" }, words.heading);
    toggle.addEventListener("click", () => {
      const opening = fields.hidden;
      fields.hidden = !opening;
      toggle.setAttribute("aria-expanded", String(opening));
      if (opening) phone.focus();
    });
    fields.addEventListener("submit", async (event) => {
      event.preventDefault();
      send.disabled = true;
      const body = new URLSearchParams({
        country: country.value,
        phone: phone.value,
        topic: shown.topics.length > 1 ? topic.value : shown.topics[0][0],
        lang: shown.lang,
        version: String(shown.version), // the wording shown: a changed form records nothing
        widget: id,
        page: location.origin + location.pathname, // never the query or fragment
        [shown.honeypot]: trap.value,
      });
      try {
        const response = await fetch(shown.action, { method: "POST", body, credentials: "omit", referrerPolicy: "strict-origin", headers: { Accept: "application/json" } });
        const answer = await response.json();
        if (response.ok) {
          fields.hidden = true;
          toggle.hidden = true;
          said.textContent = answer.message;
          said.setAttribute("tabindex", "-1");
          said.focus();
          return;
        }
        const wrongNumber = (answer.errors || []).some((error) => error.field === "phone");
        phone.setAttribute("aria-invalid", String(wrongNumber));
        if (wrongNumber) phone.setAttribute("aria-describedby", "said"); else phone.removeAttribute("aria-describedby");
        said.textContent = wrongNumber ? words.fix : answer.message || answer.detail; // message: in the form's language
        if (wrongNumber) phone.focus();
        said.scrollIntoView({ block: "nearest" }); // below the fold of a scrolling panel, it would say nothing
      } catch (error) {
        said.textContent = error.message;
        said.scrollIntoView({ block: "nearest" });
      } finally {
        send.disabled = false;
      }
    });
    // The form's words may be in another language than the widget's (a form with no Arabic): say so.
    const speaks = shown.lang === config.lang ? {} : { lang: shown.lang, dir: "auto" };
    panel.insertBefore(el("section", { class: "optin", ...speaks }, toggle, fields, said), handoff);
  }
};
