// Rotating and revoking a key, as both pages do it: the row's buttons, the question first,
// the call, then what happened in `status`. Each page says which call, and what more to ask.

import { h } from "./dom.js";
import { run, setStatus } from "./ui.js";

/** "key 12 (…abcd)": how both pages name a key in their questions and buttons. */
export function keyName(row) {
  return `key ${row.id} (…${row.key_last4})`;
}

/** The Rotate and Revoke buttons of `row` (off once it is revoked); each handler gets (row, button). */
export function buttons(row, handlers) {
  const rotate = h("button", { type: "button", class: "small" }, "Rotate");
  const revoke = h("button", { type: "button", class: "small danger" }, "Revoke");
  rotate.disabled = revoke.disabled = Boolean(row.revoked_at);
  rotate.setAttribute("aria-label", `Rotate ${keyName(row)}`);
  revoke.setAttribute("aria-label", `Revoke ${keyName(row)}`);
  rotate.addEventListener("click", () => handlers.rotate(row, rotate));
  revoke.addEventListener("click", () => handlers.revoke(row, revoke));
  return [rotate, revoke];
}

/**
 * Rotate `row` once `question` is answered yes; `send()` makes the call. Returns the new
 * key's item (its secret in `key`), or undefined when not rotated.
 */
export async function rotate(row, button, { status, question, send }) {
  if (!window.confirm(question)) return undefined;
  const result = await run({ button, status, busy: `Rotating key ${row.id}…` }, send);
  if (!result) return undefined;
  const item = result.item;
  setStatus(status, `Key ${row.id} was revoked and replaced by key ${item.id} (…${item.key_last4}).`, "ok");
  return item;
}

/** Revoke `row` after asking (`warning` is added to the question); true when it is revoked. */
export async function revoke(row, button, { status, warning = "", send }) {
  const question = `Revoke ${keyName(row)} now?\n\nEvery call with it is refused from this moment. This cannot be undone.`;
  if (!window.confirm(question + warning)) return false;
  const result = await run({ button, status, busy: `Revoking key ${row.id}…`, success: `Key ${row.id} (…${row.key_last4}) is revoked.` }, send);
  return Boolean(result);
}
