// What the portal's panels share beyond ../ui.js: a secret shown once (a new key, a webhook
// signing secret), the small cell renderers, and the keys of the account for the filters.

import { badge, fmtTime, h } from "../dom.js";
import { copyText } from "../ui.js";
import { api } from "./api.js";

/**
 * A secret in `slot`, once: with a copy button and the warning that it cannot be shown
 * again. "I have stored it" removes it from the page (then `onDone`, e.g. sign in again).
 */
export function showOnce(slot, { title, secret, what = "key", onDone = null }) {
  const code = h("code", { class: "secret-value", "data-secret": "" }, secret);
  const feedback = h("span", { class: "small", role: "status", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "primary" }, `Copy ${what}`);
  copy.addEventListener("click", async () => {
    const copied = await copyText(secret, code);
    feedback.textContent = copied ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
  });
  const done = h("button", { type: "button" }, "I have stored it");
  done.addEventListener("click", () => {
    slot.replaceChildren();
    if (onDone) onDone();
  });
  slot.replaceChildren(
    h(
      "div",
      { class: "secret-box", role: "alert" },
      h("p", {}, h("strong", {}, title)),
      h("div", { class: "secret-row" }, code, copy, feedback),
      h(
        "p",
        { class: "warning" },
        `Copy it now: this ${what} is shown only once. Kaixu keeps only a fingerprint of it, so it cannot be shown again.`,
      ),
      h("div", {}, done),
    ),
  );
  copy.focus();
}

/** The first field present and not null: the lists are rendered from what each item has. */
export function pick(row, ...names) {
  for (const name of names) if (row && row[name] !== undefined && row[name] !== null) return row[name];
  return null;
}

/** "Key 12 (…abcd)" with its label under it: how a key is named everywhere in the portal. */
export function keyCell(id, last4, label) {
  return h(
    "td",
    {},
    h("strong", { class: "nowrap" }, `${id ?? "?"}${last4 ? ` (…${last4})` : ""}`),
    label ? h("span", { class: "sub" }, label) : null,
  );
}

/** Active, or revoked with when. */
export function revokedCell(revokedAt) {
  if (!revokedAt) return h("td", {}, badge("active", "ok"));
  return h("td", { title: revokedAt, class: "nowrap" }, badge("revoked", "bad"), h("span", { class: "sub" }, fmtTime(revokedAt)));
}

const TONES = {
  ready: "ok", done: "ok", paid: "ok", sent: "ok", issued: "info", pending: "warn", retry_wait: "warn",
  error: "bad", failed: "bad", init_failed: "bad", expired: "bad", void: "bad",
};

export function stateBadge(value) {
  return badge(value || "—", TONES[value] || "info");
}

/** An http(s) link as a link (opened apart from this page), anything else as text. */
export function urlCell(url) {
  if (!url || !/^https?:\/\//i.test(url)) return h("td", { class: "wrap" }, url || "");
  return h("td", { class: "wrap" }, h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url));
}

let keysPromise = null;

/** Every key of the account (all pages), fetched once until forgetKeys() (after a change). */
export function accountKeys() {
  if (!keysPromise) {
    keysPromise = (async () => {
      const items = [];
      let cursor = null;
      for (let page = 0; page < 20; page += 1) {
        const body = await api("customer-keys", { query: { limit: 100, cursor } });
        items.push(...(body.items || []));
        cursor = body.next_cursor;
        if (!cursor) break;
      }
      return items;
    })().catch((error) => {
      keysPromise = null;
      throw error;
    });
  }
  return keysPromise;
}

export function forgetKeys() {
  keysPromise = null;
}

/** Fill a <select> of keys (its first "all keys" option kept), keeping the chosen one. */
export async function fillKeySelect(select) {
  const items = await accountKeys();
  const current = select.value;
  const first = select.options.length && select.options[0].value === "" ? [select.options[0]] : [];
  const options = items.map((key) => {
    const option = document.createElement("option");
    option.value = String(key.id);
    const state = key.revoked_at ? ", revoked" : "";
    option.textContent = `${key.id} (…${key.key_last4})${key.label ? ` ${key.label}` : ""}${state}`;
    return option;
  });
  select.replaceChildren(...first, ...options);
  select.value = current;
  if (select.value !== current) select.value = "";
}
