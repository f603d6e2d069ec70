// The landing page works without this file. Where JavaScript runs it adds: one try to open an
// app that many devices lack (Viber: the page says what to do when nothing happens), and a
// "Copy" button for a message the app cannot fill in (without it, the message is plain text).
const open = document.querySelector("a[data-open]");
if (open) addEventListener("load", () => (location.href = open.href)); // the page is whole first

for (const button of document.querySelectorAll("button.copy[data-copy]")) {
  const message = document.getElementById(button.dataset.copy);
  if (!message || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(message.textContent);
    button.textContent = button.dataset.copied;
  });
}
