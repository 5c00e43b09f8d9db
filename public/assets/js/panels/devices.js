// Devices: install ids seen on a customer's keys; revoke one (its next call is refused
// and its seat freed) or un-revoke it.

import { api } from "../api.js";
import { deviceActionCell } from "../device_actions.js";
import { $, badge, h, intValue, timeCell } from "../dom.js";
import { customerLoads } from "../state.js";
import { PagedTable } from "../table.js";
import { setStatus } from "../ui.js";

const form = $("#devices-load");
const status = $("#devices-action-status");
let table;
const loads = customerLoads(() => {
  form.elements.namedItem("api_key_id").value = "";
});

const query = () => ({ customer_id: intValue(form, "customer_id"), api_key_id: intValue(form, "api_key_id") });

function keyCell(row) {
  return h("td", {}, h("strong", {}, `${row.api_key_id} (…${row.key_last4})`), row.key_label ? h("span", { class: "sub" }, row.key_label) : null);
}

const actions = {
  status,
  again: "Un-revoke",
  busyAgain: "Un-revoking the device…",
  send: (row, action) => api("admin-devices", { method: "POST", query: { id: `${row.api_key_id}:${row.install_id}`, action } }),
  done: () => table.reload(),
};

async function load() {
  const q = query();
  if (q.customer_id === null && q.api_key_id === null) {
    setStatus(status, "Enter a Customer ID or a Key ID (or click a customer row in Customers) first.", "error");
    return;
  }
  setStatus(status, "");
  loads.loaded(q);
  await table.reload();
}

export default {
  name: "devices",
  init() {
    table = new PagedTable($("#devices-table"), {
      columns: [
        keyCell,
        (row) => h("td", { class: "mono wrap" }, row.install_id),
        (row) => timeCell(row.first_seen_at),
        (row) => timeCell(row.last_seen_at),
        (row) =>
          row.revoked_at
            ? h("td", { title: row.revoked_at }, badge("revoked", "bad"), h("span", { class: "sub" }, `by ${row.revoked_by || "admin"}`))
            : h("td", {}, badge("active", "ok")),
        (row) => h("td", { class: "clip", title: row.user_agent || "" }, row.user_agent || ""),
        (row) => deviceActionCell(row, actions),
      ],
      rowClass: (row) => (row.revoked_at ? "revoked" : ""),
      fetchPage: (cursor) => api("admin-devices", { query: { ...query(), limit: 50, cursor } }),
      empty: "No devices seen yet: devices appear when a client sends x-kaixu-install-id.",
      idle: "Choose a customer to see the devices on its keys.",
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
  },
  async show() {
    const q = query();
    if (loads.wanted(q)) await load();
  },
  reset() {
    loads.forget();
    table.reset();
  },
};
