// Alerts webhook: where Kaixu POSTs the account's cap alerts. Set or change the URL (a new
// signing secret is shown once), send a test, remove it; the recent deliveries below say
// what reached it.

import { $, fieldValue, fmtInt, fmtTime, h, terms, timeCell } from "../dom.js";
import { loadOnce } from "../shell.js";
import { PagedTable } from "../table.js";
import { run, setStatus } from "../ui.js";
import { api } from "./api.js";
import { showOnce, stateBadge } from "./ui.js";

const form = $("#alerts-form");
const status = $("#alerts-status");
const secretSlot = $("#alerts-secret");
let deliveries;
const once = loadOnce(load);
let current = null;

const ALERT_NAMES = { cap_warning: "near the cap", cap_reached: "cap reached", "webhook.test": "test" };

function renderCurrent(item) {
  current = item;
  const rows = item
    ? [
        ["URL", h("span", { class: "mono wrap-anywhere" }, item.url)],
        ["Signing secret", item.secret_last4 ? `…${item.secret_last4}` : "—"],
        ["Since", fmtTime(item.created_at)],
        ["Changed", fmtTime(item.updated_at)],
      ]
    : [["Webhook", "none set: alerts are not sent"]];
  $("#alerts-current").replaceChildren(...terms(rows));
  form.elements.namedItem("url").value = item ? item.url : "";
  form.elements.namedItem("rotate_secret").checked = false;
  $(".check-field", form).hidden = !item; // a first webhook always gets a new secret
  $("[data-alerts-test]", form).disabled = !item;
  $("[data-alerts-delete]", form).disabled = !item;
}

async function load() {
  const body = await run({ status, busy: "Loading the webhook…" }, () => api("customer-webhook"));
  if (!body) return;
  setStatus(status, "");
  renderCurrent(body.item || null);
  deliveries.setItems(body.deliveries || []);
}

async function save(event) {
  event.preventDefault();
  const formStatus = $(".status", form);
  const body = { url: fieldValue(form, "url") };
  if (form.elements.namedItem("rotate_secret").checked) body.rotate_secret = true;
  const result = await run(
    { button: $("button[type=submit]", form), status: formStatus, form, busy: "Saving the webhook…", success: "Saved the webhook." },
    () => api("customer-webhook", { method: "PUT", body }),
  );
  if (!result) return;
  renderCurrent(result.item || null);
  if (result.secret) {
    showOnce(secretSlot, { title: "The webhook's signing secret", secret: result.secret, what: "signing secret" });
  }
}

async function remove(button) {
  if (!current || !window.confirm(`Remove the webhook ${current.url}? Alerts stop being sent.`)) return;
  const result = await run(
    { button, status: $(".status", form), busy: "Removing the webhook…", success: "Removed the webhook." },
    async () => (await api("customer-webhook", { method: "DELETE" })) || {},
  );
  if (!result) return;
  secretSlot.replaceChildren();
  renderCurrent(null);
}

async function test(button) {
  const result = await run(
    { button, status: $(".status", form), busy: "Sending a test alert…" },
    async () => (await api("customer-webhook", { method: "POST", query: { action: "test" } })) || {},
  );
  if (!result) return;
  const item = result.item || result.delivery || null;
  const outcome = item && item.status ? ` (${item.status}${item.last_error ? `: ${item.last_error}` : ""})` : "";
  setStatus($(".status", form), `Sent a test alert${outcome}.`, item && item.status === "failed" ? "error" : "ok");
  await load();
}

export default {
  name: "alerts",
  init() {
    deliveries = new PagedTable($("#alerts-deliveries"), {
      columns: [
        (row) => timeCell(row.created_at, { stack: true }),
        (row) => ALERT_NAMES[row.alert_type] || row.alert_type || "",
        (row) => row.month || "",
        (row) => (row.api_key_id ? String(row.api_key_id) : h("span", { class: "muted" }, "account")),
        (row) => h("td", {}, stateBadge(row.status)),
        (row) => h("td", { class: "num" }, fmtInt(row.attempts)),
        (row) => h("td", { class: "wrap" }, row.last_error || ""),
        (row) => timeCell(row.sent_at, { stack: true }),
      ],
      empty: "No alerts delivered yet.",
      idle: "Loading…",
    });
    form.addEventListener("submit", save);
    $("[data-alerts-test]", form).addEventListener("click", (event) => test(event.currentTarget));
    $("[data-alerts-delete]", form).addEventListener("click", (event) => remove(event.currentTarget));
  },
  show: () => once.show(),
  reset() {
    once.forget();
    current = null;
    secretSlot.replaceChildren();
    form.reset();
    setStatus($(".status", form), "");
    setStatus(status, "");
    $("#alerts-current").replaceChildren();
    deliveries.reset();
  },
};
