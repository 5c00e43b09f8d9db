// The printable invoice, opened in a new window: fetched with the page's own credential (a
// link could not carry the Authorization header) and shown from a Blob URL, to print or save
// as PDF. Both pages print this way; each says how to fetch its invoice.

import { run, setStatus } from "./ui.js";

/** Poll until the new window shows the document at `url` (it loads on its own). */
async function loadedDocument(win, url) {
  for (let i = 0; i < 400; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    try {
      if (win.document.URL === url && win.document.readyState !== "loading") return win.document;
    } catch {
      return null; // closed, or no longer ours
    }
  }
  return null;
}

/**
 * Open the HTML answer of `fetchHtml()` (a Response) in a new window, with progress and the
 * outcome in `status`; `label` names the invoice ("No. 3 of 2026-02"). The window is opened
 * within the click, so pop-up blockers let it through. A blob document inherits this page's
 * Content-Security-Policy, which refuses inline <style>: its own style is applied again as a
 * constructed stylesheet, which that policy allows.
 */
export async function printInvoice({ button, status, label, fetchHtml }) {
  const win = window.open("", "_blank");
  const url = await run({ button, status, busy: "Preparing the printable invoice…" }, async () => {
    const response = await fetchHtml();
    return URL.createObjectURL(new Blob([await response.text()], { type: "text/html" }));
  });
  if (!url) {
    if (win) win.close();
    return;
  }
  setTimeout(() => URL.revokeObjectURL(url), 120_000);
  if (!win) {
    setStatus(status, "The browser blocked the new window: allow pop-ups for this site and try again.", "error");
    return;
  }
  win.location.replace(url);
  const doc = await loadedDocument(win, url);
  if (doc) {
    const sheet = new win.CSSStyleSheet();
    sheet.replaceSync([...doc.querySelectorAll("style")].map((style) => style.textContent).join("\n"));
    doc.adoptedStyleSheets = [sheet];
  }
  setStatus(status, `Opened invoice ${label} in a new window: print it, or save it as PDF.`, "ok");
}
