// Devices: install ids seen on the account's keys; revoke one (its next call is refused and
// its seat freed) or let it back in.

import { deviceActionCell } from "../device_actions.js";
import { $, badge, h, intValue, timeCell } from "../dom.js";
import { PagedTable } from "../table.js";
import { setStatus } from "../ui.js";
import { api } from "./api.js";
import { fillKeySelect, keyCell } from "./ui.js";

const form = $("#devices-load");
const status = $("#devices-status");
let table;
let loadedFor = null;

const query = () => ({ api_key_id: intValue(form, "api_key_id") });

const actions = {
  status,
  again: "Let back in",
  busyAgain: "Letting the device back in…",
  send: (row, action) => api("customer-devices", { method: "POST", query: { action, id: row.id || `${row.api_key_id}:${row.install_id}` } }),
  done: () => table.reload(),
};

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
        (row) => deviceActionCell(row, actions),
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
