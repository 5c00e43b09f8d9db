// A device row's action, as both pages offer it: Revoke (asked first: its next call is
// refused and its seat freed), or let a revoked device back in; then the list is loaded again.

import { h } from "./dom.js";
import { run } from "./ui.js";

/**
 * The Action cell of `row` ({install_id, api_key_id, revoked_at}).
 * @param {{status: Element, again: string, busyAgain: string, send: (row: object, action: string) => Promise<any>,
 *          done: () => any}} options again: the page's word for letting a device back in, busyAgain
 *          its progress line; send makes the call ("revoke" or "unrevoke"); done runs after a success
 */
export function deviceActionCell(row, options) {
  const revoked = Boolean(row.revoked_at);
  const word = revoked ? options.again : "Revoke";
  const button = h("button", { type: "button", class: revoked ? "small" : "small danger" }, word);
  button.setAttribute("aria-label", `${word} device ${row.install_id} of key ${row.api_key_id}`);
  button.addEventListener("click", () => setRevoked(row, !revoked, button, options));
  return h("td", {}, button);
}

async function setRevoked(row, revoke, button, { status, busyAgain, send, done }) {
  const question = `Revoke device “${row.install_id}” on key ${row.api_key_id}? Its next call is refused and its seat is freed.`;
  if (revoke && !window.confirm(question)) return;
  const result = await run(
    {
      button,
      status,
      busy: revoke ? "Revoking the device…" : busyAgain,
      success: `Device “${row.install_id}” on key ${row.api_key_id} is ${revoke ? "revoked" : "active again"}.`,
    },
    () => send(row, revoke ? "revoke" : "unrevoke"),
  );
  if (result) await done();
}
