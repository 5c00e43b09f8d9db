// What the portal's panels share beyond ../ui.js: its words for a secret shown once, the
// small cell renderers, and the keys of the account for the filters.

import { badge, h } from "../dom.js";
import { showSecret } from "../ui.js";
import { api } from "./api.js";

/** A secret shown once (../ui.js), in the portal's words for what Kaixu keeps instead. */
export function showOnce(slot, options) {
  showSecret(slot, { kept: "keeps only a fingerprint of it", ...options });
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
