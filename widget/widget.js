/*! clicktochat widget | MIT */
// One script tag puts a chat button on any page:
//   <script src="https://HOST/widget.js" data-widget="ID" async></script>
// Everything it draws lives in a Shadow DOM: the page's CSS cannot reach in and
// ours cannot leak out. Every configured string is inserted as text, never parsed as HTML.
// No cookies, no third parties: its only requests go to the server it came from, and
// window.ClickToChat is its only global.
(() => {
  "use strict";
  const script = document.currentScript;
  const id = script && script.dataset.widget;
  if (!id || window.ClickToChat) return;
  performance.mark("clicktochat:start");
  const origin = new URL(script.src).origin;
  const { locale, position, preview } = script.dataset;
  const phone = /Mobi|Android|iPhone|iPad/i.test(navigator.userAgent) || matchMedia("(pointer: coarse)").matches;
  let show = () => (wanted = location.pathname); // asked before it was drawn: opened then, on that page only
  let hide = () => (wanted = null);
  let wanted = null;
  window.ClickToChat = Object.freeze({ open: () => show(), close: () => hide() });

  const fire = (name, detail) =>
    document.dispatchEvent(new CustomEvent(`clicktochat:${name}`, { detail: { widget: id, ...detail } }));

  const el = (tag, attributes = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children); // strings become text nodes, never markup
    return node;
  };

  const query = new URLSearchParams({ hl: [document.documentElement.lang, ...navigator.languages].join() });
  if (locale) query.set("lang", locale);
  if (preview) query.set("preview", preview); // the dashboard's preview (our own origin only): no display rules
  // Referrer "strict-origin" on everything it asks for: the page's path and query are not ours to hear.
  fetch(`${origin}/api/widget/${encodeURIComponent(id)}?${query}`, { credentials: "omit", referrerPolicy: "strict-origin" })
    .then(async (response) => {
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail);
      return body;
    })
    .then(start)
    .catch((error) => console.warn("clicktochat:", error.message));

  // Display rules: which pages, after how long, how far down, and only while someone answers.
  function start(config) {
    const { show_on, hide_on, delay, scroll, hide_offline } = config.rules;
    if (hide_offline && !config.open) return;
    const matches = (patterns) =>
      patterns.some((pattern) => {
        const regex = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
        return new RegExp(`^${regex}$`).test(location.pathname);
      });
    const here = () => !((show_on.length && !matches(show_on)) || matches(hide_on));
    const scrolled = () => {
      const room = document.documentElement.scrollHeight - innerHeight;
      return room <= 0 || (scrollY / room) * 100 >= scroll;
    };
    let box, waiting, path;
    const draw = () => {
      box = render(config);
      follow();
      if (wanted === location.pathname && !box.hidden) show(); // ClickToChat.open() before it was drawn
      wanted = null;
    };
    const whenScrolled = () => {
      if (scrolled()) return draw();
      const check = () => scrolled() && (removeEventListener("scroll", check), draw());
      addEventListener("scroll", check, { passive: true });
    };
    // Single-page apps change the path without loading a page: the rules are read again at each change.
    // The delay counts from the page's load (however long the configuration took to come), or from
    // such a change (`moved`: an event, or true).
    const follow = (moved) => {
      path = location.pathname;
      if (box) return (box.hidden = !here()) && hide();
      if (waiting || !here()) return;
      waiting = true;
      const wait = delay * 1000 - (moved ? 0 : performance.now());
      wait > 0 ? setTimeout(whenScrolled, wait) : whenScrolled();
    };
    follow();
    addEventListener("popstate", follow);
    if (window.navigation) navigation.addEventListener("currententrychange", follow);
    else setInterval(() => path !== location.pathname && follow(true), 1000);
  }

  function render(config) {
    const words = config.words;
    const host = el("clicktochat-widget");
    const root = host.attachShadow({ mode: "open" }); // open: accessibility and test tools can look inside
    const sheet = new CSSStyleSheet(); // allowed by a strict CSP, unlike a <style> element
    sheet.replaceSync("__CSS__");
    root.adoptedStyleSheets = [sheet];
    const left = (position || config.position) === "left";
    for (const [name, value] of Object.entries({
      "--colour": config.colour,
      "--text": config.text_colour,
      "--left": left ? `${config.offset_x}px` : "auto",
      "--right": left ? "auto" : `${config.offset_x}px`,
      "--bottom": `${config.offset_y}px`,
    }))
      host.style.setProperty(name, value);

    const ours = (url) => url.startsWith(`${origin}/`); // a link only ever leads back to our server
    const close = el("button", { class: "x", type: "button", "aria-label": words.close }, "×");
    const title = el("h2", { id: "t" }, config.name);
    const header = el("div", { class: "head" }, title, close);
    if (config.avatar && ours(config.avatar))
      header.prepend(el("img", { src: config.avatar, alt: "", referrerpolicy: "strict-origin" }));
    const list = el("ul", { class: "agents" });
    const handoff = el("div", { class: "handoff", hidden: "" });
    // The apps the business offers: with more than one, the visitor picks (remembered in this tab).
    const offered = config.channels || [];
    const picker = el("div", { class: "channels", role: "group", "aria-label": words.apps });
    const saved = `clicktochat:${id}:channel`;
    let chosen = offered[0] && offered[0].name;
    try {
      const kept = sessionStorage.getItem(saved);
      if (offered.some((c) => c.name === kept)) chosen = kept;
    } catch {}
    const rows = [];
    const pick = (name) => {
      chosen = name;
      for (const b of picker.children) b.setAttribute("aria-pressed", b.value === name);
      for (const [agent, row] of rows) row.hidden = !agent.channels.includes(name);
    };
    if (offered.length > 1)
      for (const c of offered) {
        const b = el("button", { class: "channel", type: "button", value: c.name }, c.label);
        b.addEventListener("click", () => {
          pick(c.name);
          try {
            sessionStorage.setItem(saved, c.name);
          } catch {}
        });
        picker.append(b);
      }
    const panel = el(
      "div",
      { class: "panel", id: "p", role: "dialog", "aria-labelledby": "t", dir: config.dir, hidden: "" },
      header,
      el("p", { class: "greeting" }, config.greeting),
      picker,
      list,
      handoff,
    );
    const choosing = (on) => ((list.hidden = !on), (picker.hidden = !on || !picker.firstChild));
    // "Get updates on WhatsApp": its own small script, fetched only when the owner turned it on.
    if (config.optin && ours(config.optin.script))
      import(config.optin.script).then((panelPart) => panelPart.default({ panel, handoff, el, id, config }), (e) => console.warn("clicktochat:", e.message));
    const bubble = el("button", { class: "bubble", type: "button", dir: config.dir, hidden: "" }, config.greeting);
    const icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    icon.append(document.createElementNS(icon.namespaceURI, "path"));
    icon.firstChild.setAttribute("d", "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2z");
    const launcher = el(
      "button",
      { class: "launcher", type: "button", dir: config.dir, "aria-expanded": "false", "aria-controls": "p", "aria-haspopup": "dialog" },
      icon,
    );
    if (config.label) launcher.append(el("span", {}, config.label));
    else launcher.setAttribute("aria-label", words.button);

    // "Back 08:00" in the visitor's own clock; when the business's clock (config.tz) reads
    // otherwise, "(your time)" says whose it is.
    const when = (iso) => {
      const at = new Date(iso);
      const today = at.toDateString() === new Date().toDateString();
      const format = { hour: "2-digit", minute: "2-digit", ...(today ? {} : { weekday: "short" }) };
      // The browser's own variant of the language, when it has one: en-GB reads 08:00, en-US 8:00 AM.
      const locale = navigator.languages.find((tag) => tag.split("-")[0] === config.lang) || config.lang;
      const time = (timeZone) => new Intl.DateTimeFormat(locale, { ...format, timeZone }).format(at);
      let shown = time();
      try {
        if (time(config.tz) !== shown) shown += ` (${words.yours})`;
      } catch {} // a zone this browser does not know: the time unnamed, as before
      return words.back.replace("{time}", shown);
    };
    const listed = config.agents.filter((agent) => ours(agent.url));
    if (listed.length < config.agents.length) // the server's base URL is another address than this script's
      console.warn(`clicktochat: ${config.agents.length - listed.length} agent(s) hidden: their links are not on ${origin}; load widget.js from the server's base URL`);
    for (const agent of listed) {
      const state = agent.available ? words.online : agent.back_at ? when(agent.back_at) : words.offline;
      const button = el(
        "button",
        { class: "agent", type: "button" },
        el("span", { class: agent.available ? "dot on" : "dot" }),
        el("span", { class: "who" }, agent.name),
        el("small", {}, state),
      );
      button.addEventListener("click", () => chat(agent, button));
      const row = el("li", {}, button);
      rows.push([agent, row]);
      list.append(row);
    }
    if (picker.firstChild) pick(chosen);
    else picker.hidden = true;

    // A link followed as a link is (an <a> can say what it tells of the page; location.assign cannot).
    const go = (href, target) => {
      const a = el("a", { href, target, rel: "noopener", referrerpolicy: "strict-origin", hidden: "" });
      root.append(a);
      a.click();
      a.remove();
    };
    // Phones go straight to the chat in this tab; desktops may scan a code to continue on
    // the phone, or open the messenger's web app in a new tab.
    function chat(agent, button) {
      const u = location.origin + location.pathname; // never the query or fragment: they can hold personal data
      const ch = picker.firstChild ? { ch: chosen } : {}; // the server routes to the agent's address on it
      const url = `${agent.url}?${new URLSearchParams({ ...ch, u, t: document.title.slice(0, 150), l: config.lang })}`;
      const app = ch.ch || agent.channel;
      fire("click", { channel: app, agent: agent.name, agent_id: agent.id, link: url });
      if (phone) return go(url, "_self");
      if (!config.qr) return go(`${url}&web=1`, "_blank");
      const back = el("button", { class: "link", type: "button" }, words.return);
      // "WhatsApp Web" names one messenger; the others' web apps are "the browser".
      const web = el("a", { class: "web", href: `${url}&web=1`, target: "_blank", rel: "noopener", referrerpolicy: "strict-origin" }, app == "whatsapp" ? words.web : words.browser);
      handoff.replaceChildren(
        el("img", { src: `${origin}/qr/w/${id}/${agent.id}.svg?${new URLSearchParams({ ...ch, u, t: document.title.slice(0, 60), l: config.lang })}`, alt: words.scan, referrerpolicy: "strict-origin" }),
        el("p", {}, words.scan),
        web,
        back,
      );
      back.addEventListener("click", () => {
        handoff.hidden = true;
        choosing(true);
        button.focus();
      });
      choosing(false);
      handoff.hidden = false;
      web.focus();
    }

    show = () => {
      if (!panel.hidden || box.hidden) return; // not on a page its rules hide it on
      panel.hidden = false;
      bubble.hidden = true;
      launcher.setAttribute("aria-expanded", "true");
      // Focus moves into the panel: to the app picked, else the first agent.
      ((list.hidden ? handoff : picker.querySelector('[aria-pressed="true"]') ? picker : list).querySelector('[aria-pressed="true"], li:not([hidden]) button, a') || close).focus();
      fire("open");
    };
    hide = () => {
      if (panel.hidden) return;
      const focused = panel.contains(root.activeElement);
      panel.hidden = true;
      handoff.hidden = true;
      choosing(true);
      launcher.setAttribute("aria-expanded", "false");
      if (focused) launcher.focus(); // and back to the button
      fire("close");
    };
    launcher.addEventListener("click", () => (panel.hidden ? show() : hide()));
    close.addEventListener("click", hide);
    bubble.addEventListener("click", show);
    root.addEventListener("keydown", (event) => {
      if (event.key === "Escape") (bubble.hidden = true), hide();
    });

    // Laid out left to right whatever the language (the corner is the owner's choice); each part
    // reads in the visitor's direction.
    const box = el("div", { class: left ? "ctc left" : "ctc", dir: "ltr", lang: config.lang }, panel, bubble, launcher);
    root.append(box);
    // On <html>, not <body>: a page that swaps its body (Turbo) keeps the widget, and a body
    // with a transform does not pin the fixed button to the end of the document.
    document.documentElement.append(host);
    // A script of the page that removes what it did not put there (a framework taking over the
    // document) takes it out only until the next moment.
    new MutationObserver(() => host.isConnected || document.documentElement.append(host)).observe(
      document.documentElement,
      { childList: true },
    );
    requestAnimationFrame(() => setTimeout(() => performance.mark("clicktochat:painted")));
    // The greeting bubble once per visit: sessionStorage is forgotten with the tab, and is no
    // cookie; storage blocked: better no bubble than one on every page.
    const key = `clicktochat:${id}:bubble`;
    const first = () => {
      try {
        return !sessionStorage.getItem(key) && !sessionStorage.setItem(key, "1");
      } catch {}
    };
    if (config.bubble !== null && first()) setTimeout(() => panel.hidden && (bubble.hidden = false), config.bubble * 1000);
    return box;
  }
})();
