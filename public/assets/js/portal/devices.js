// Devices: install ids seen on the account's keys; revoke one (its next call is refused and
// its seat freed) or let it back in.

import { $, badge, h, intValue, timeCell } from "../dom.js";
import { PagedTable } from "../table.js";
import { run, setStatus } from "../ui.js";
import { api } from "./api.js";
import { fillKeySelect, keyCell } from "./ui.js";

const form = $("#devices-load");
const status = $("#devices-status");
let table;
let loadedFor = null;

const query = () => ({ api_key_id: intValue(form, "api_key_id") });

function actionCell(row) {
  const revoked = Boolean(row.revoked_at);
  const button = h("button", { type: "button", class: revoked ? "small" : "small danger" }, revoked ? "Let back in" : "Revoke");
  button.setAttribute("aria-label", `${revoked ? "Let back in" : "Revoke"} device ${row.install_id} of key ${row.api_key_id}`);
  button.addEventListener("click", () => setRevoked(row, !revoked, button));
  return h("td", {}, button);
}

async function setRevoked(row, revoke, button) {
  const question = `Revoke device “${row.install_id}” on key ${row.api_key_id}? Its next call is refused and its seat is freed.`;
  if (revoke && !window.confirm(question)) return;
  const result = await run(
    {
      button,
      status,
      busy: revoke ? "Revoking the device…" : "Letting the device back in…",
      success: `Device “${row.install_id}” on key ${row.api_key_id} is ${revoke ? "revoked" : "active again"}.`,
    },
    () => api("customer-devices", { method: "POST", query: { action: revoke ? "revoke" : "unrevoke", id: row.id || `${row.api_key_id}:${row.install_id}` } }),
  );
  if (result) await table.reload();
}

async function load() {
  try {
    await fillKeySelect(form.elements.namedItem("api_key_id"));
  } catch {
    /* the list still loads for all keys */
  }
  loadedFor = JSON.stringify(query());
  setStatus(status, "");
  await table.reload();
}

export default {
  name: "devices",
  init() {
    table = new PagedTable($("#devices-table"), {
      columns: [
        (row) => keyCell(row.api_key_id, row.key_last4, row.key_label),
        (row) => h("td", { class: "mono wrap" }, row.install_id),
        (row) => timeCell(row.first_seen_at, { stack: true }),
        (row) => timeCell(row.last_seen_at, { stack: true }),
        (row) => (row.revoked_at ? h("td", { title: row.revoked_at }, badge("revoked", "bad")) : h("td", {}, badge("active", "ok"))),
        (row) => h("td", { class: "clip", title: row.user_agent || "" }, row.user_agent || ""),
        actionCell,
      ],
      rowClass: (row) => (row.revoked_at ? "revoked" : ""),
      fetchPage: (cursor) => api("customer-devices", { query: { ...query(), limit: 50, cursor } }),
      empty: "No devices seen yet: a device appears when your app sends x-kaixu-install-id.",
      idle: "Loading…",
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
  },
  async show() {
    if (loadedFor !== JSON.stringify(query())) await load();
  },
  reset() {
    loadedFor = null;
    setStatus(status, "");
    table.reset();
  },
};
