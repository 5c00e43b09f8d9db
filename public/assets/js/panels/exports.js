// Exports & Invoices: CSV downloads fetched with the admin credential and saved locally.

import { download } from "../api.js";
import { $, $$, fieldValue, fmtBytes, intValue } from "../dom.js";
import { run, setStatus } from "../ui.js";

const form = $("#exports-form");
const status = $("#export-status");
const progress = $("#export-progress");

/** The filters each export type accepts (the API refuses one that does not apply). */
const FILTERS = {
  usage: ["customer_id", "month", "api_key_id"],
  customers: ["customer_id"],
  keys: ["customer_id"],
  devices: ["customer_id", "api_key_id"],
  topups: ["customer_id", "month"],
  invoices: ["customer_id", "month"],
  summary: ["customer_id", "month"],
};

function queryFor(type) {
  const values = {
    customer_id: intValue(form, "customer_id"),
    month: fieldValue(form, "month"),
    api_key_id: intValue(form, "api_key_id"),
  };
  const query = { type };
  for (const name of FILTERS[type]) if (values[name] !== null && values[name] !== "") query[name] = values[name];
  return query;
}

async function exportCsv(button) {
  const type = button.dataset.export;
  const label = button.textContent.trim();
  progress.hidden = false;
  progress.removeAttribute("value");
  const result = await run(
    {
      button,
      status,
      form,
      busy: `Downloading ${label}…`,
      success: (r) => `Saved ${r.filename} (${fmtBytes(r.size)}).`,
    },
    () =>
      download("admin-export", queryFor(type), {
        fallbackName: `kaixu-${type}.csv`,
        onProgress: (bytes) => setStatus(status, `Downloading ${label}… ${fmtBytes(bytes)}`, "busy"),
      }),
  );
  progress.hidden = true;
  return result;
}

export default {
  name: "exports",
  init() {
    for (const button of $$("button[data-export]", $("#export-buttons"))) {
      button.addEventListener("click", () => exportCsv(button));
    }
    form.addEventListener("submit", (event) => event.preventDefault());
  },
  show() {},
  reset() {
    setStatus(status, "");
  },
};
