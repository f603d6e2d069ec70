// The dashboard works without this file. Where JavaScript runs it adds: "Copy" buttons
// beside links and keys, an "are you sure?" before what cannot be undone, the link form's
// choice of who answers picked as its field is filled in, and a widget
// preview that follows the settings form as it is edited (the unsaved settings are posted,
// CSRF token included, as a draft).
for (const button of document.querySelectorAll("button[data-confirm]")) {
  button.addEventListener("click", (event) => {
    if (!confirm(button.dataset.confirm)) event.preventDefault();
  });
}

for (const button of document.querySelectorAll("button.copy[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  if (!field || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
}

// The address field's placeholder follows the channel picked (the server renders the first one).
for (const select of document.querySelectorAll("select[data-example-for]")) {
  const field = document.getElementById(select.dataset.exampleFor);
  if (!field) continue;
  select.addEventListener("change", () => {
    field.placeholder = select.selectedOptions[0]?.dataset.example ?? "";
  });
}

// Who answers a link: filling in a choice's own field picks it (found by a new user: an address
// typed under "A business" was dropped; the server refuses that now, and this spares the trip).
for (const [field, choice] of [["f-to", "d-to"], ["f-channel", "d-to"], ["f-business_id", "d-business"],
                               ["f-agent_id", "d-agent"]]) {
  const input = document.getElementById(field);
  const radio = document.getElementById(choice);
  if (input && radio) input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => (radio.checked = true));
}

const widgetForm = document.querySelector("form.widget-form");
const preview = document.getElementById("preview");
const previewNote = document.getElementById("preview-note");
if (widgetForm && preview) {
  let timer;
  const refresh = async () => {
    const response = await fetch(`${widgetForm.getAttribute("action")}/draft`, {
      method: "POST", body: new FormData(widgetForm), credentials: "same-origin",
    });
    const body = await response.json();
    if (response.ok) {
      preview.src = body.preview;
      if (previewNote) previewNote.textContent = "The preview shows your changes; save to publish them.";
    } else if (previewNote) {
      previewNote.textContent = `Not shown yet: ${body.errors.map((e) => `${e.field}: ${e.reason}`).join("; ")}`;
    }
  };
  widgetForm.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
}

// The customer-service window's countdown ("closes in 3 h 12 min"), as the server wrote it,
// kept up to date every 30 s. Times are the server's: data-now is when it rendered the page.
const countdowns = document.querySelectorAll("[data-until][data-now]");
if (countdowns.length) {
  const skew = Number(countdowns[0].dataset.now) - Date.now() / 1000;
  const timeLeft = (seconds) => {
    if (seconds <= 0) return "closed";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 1) return "closes in less than a minute";
    const hours = Math.floor(minutes / 60);
    return hours ? `closes in ${hours} h ${minutes % 60} min` : `closes in ${minutes} min`;
  };
  const closed = (el) => {  // a conversation's page: what may be sent changes with it, the draft stays
    el.classList.remove("on");
    const maySend = document.getElementById("may-send");
    if (maySend && maySend.textContent === "text") maySend.textContent = "only templates";
    const form = document.querySelector("form.reply");
    if (!form || form.dataset.closed) return;
    form.dataset.closed = "1";
    form.querySelector("button").disabled = true;
    const note = document.createElement("p");
    note.className = "refused";
    note.setAttribute("role", "alert");
    note.textContent = "The 24-hour window has closed: only an approved template may be sent now. "
      + "What you typed stays here to copy.";
    form.prepend(note);
  };
  const tick = () => {
    const now = Date.now() / 1000 + skew;
    for (const el of countdowns) {
      const left = Number(el.dataset.until) - now;
      el.textContent = timeLeft(left);
      if (left <= 0) closed(el);
    }
  };
  const soonest = Math.min(...[...countdowns].map((el) => Number(el.dataset.until)));
  setInterval(tick, 30000);
  setTimeout(tick, Math.max(0, (soonest - (Date.now() / 1000 + skew)) * 1000) + 100);  // on the minute it closes
}
