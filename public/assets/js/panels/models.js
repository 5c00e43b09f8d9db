// Price book: the models the gateway prices (cost prices, USD per million tokens), filtered
// by provider, retired ones on request; add a model, change its price (always a new version,
// effective now or later, never earlier), retire or restore it, and see every version.

import { api } from "../api.js";
import { $, badge, fieldValue, fmtInt, fmtTime, h, intValue, timeCell } from "../dom.js";
import { forgetPricedModels } from "../state.js";
import { PagedTable } from "../table.js";
import { run, setStatus } from "../ui.js";

const KINDS = ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h"];
const filterForm = $("#models-filter");
const status = $("#models-status");
const createForm = $("#model-create");
const priceCard = $("#model-price-card");
const priceForm = $("#model-price");
const historyCard = $("#model-history");
let table;
let versions;
let priceFor = null; // the model whose price the form changes
let loaded = false;

/** A datetime-local value (the viewer's time) as ISO-8601 UTC, or undefined when empty. */
function isoFrom(form) {
  const raw = fieldValue(form, "effective_from");
  if (!raw) return undefined;
  const moment = new Date(raw);
  return Number.isNaN(moment.getTime()) ? raw : moment.toISOString().replace(/\.\d{3}Z$/, "Z");
}

const usd = (value) => (value === null || value === undefined ? "" : `$${value}`);

function priceCell(price, kind) {
  const value = price ? price[kind] : null;
  return h("td", { class: "num" }, value === null || value === undefined ? "—" : usd(value));
}

function scheduledCell(item) {
  const items = item.scheduled || [];
  if (!items.length) return h("td", { class: "muted" }, "—");
  return h(
    "td",
    {},
    items.map((v) =>
      h("span", { class: "sub", title: v.effective_from }, `from ${fmtTime(v.effective_from)}: in ${usd(v.input)} / out ${usd(v.output)}`),
    ),
  );
}

function actionsCell(item) {
  const buttons = [];
  const label = `${item.provider} ${item.model}`;
  const history = h("button", { type: "button", class: "small", "aria-label": `Price history of ${label}` }, "History");
  history.addEventListener("click", () => showHistory(item));
  buttons.push(history);
  if (item.retired_at) {
    const restore = h("button", { type: "button", class: "small", "aria-label": `Restore ${label}` }, "Restore");
    restore.addEventListener("click", () => setRetired(item, false, restore));
    buttons.push(restore);
  } else {
    const change = h("button", { type: "button", class: "small", "aria-label": `Change price of ${label}` }, "Change price");
    change.addEventListener("click", () => openPriceForm(item));
    const retire = h("button", { type: "button", class: "small danger", "aria-label": `Retire ${label}` }, "Retire");
    retire.addEventListener("click", () => setRetired(item, true, retire));
    buttons.push(change, retire);
  }
  return h("td", {}, h("div", { class: "actions" }, buttons));
}

function query() {
  return {
    provider: fieldValue(filterForm, "provider"),
    include_retired: filterForm.elements.namedItem("include_retired").checked ? 1 : "",
  };
}

async function reload() {
  loaded = true;
  await table.reload();
}

/** The book changed: reload the list and let the model pickers fetch it again. */
async function changed() {
  forgetPricedModels();
  await reload();
}

// ---------------------------------------------------------------------------- add

async function createModel(event) {
  event.preventDefault();
  const formStatus = $(".status", createForm);
  const prices = { input: fieldValue(createForm, "input"), output: fieldValue(createForm, "output") };
  const cacheRead = fieldValue(createForm, "cache_read");
  if (cacheRead) prices.cache_read = cacheRead;
  const aliases = fieldValue(createForm, "aliases")
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  const body = {
    provider: fieldValue(createForm, "provider"),
    model: fieldValue(createForm, "model"),
    mode: fieldValue(createForm, "mode") || "chat",
    max_input_tokens: intValue(createForm, "max_input_tokens"),
    max_output_tokens: intValue(createForm, "max_output_tokens"),
    hidden_reasoning: createForm.elements.namedItem("hidden_reasoning").checked,
    prices,
  };
  if (aliases.length) body.aliases = aliases;
  const from = isoFrom(createForm);
  if (from) body.effective_from = from;
  const result = await run(
    {
      button: $("button[type=submit]", createForm),
      status: formStatus,
      form: createForm,
      busy: "Adding the model…",
      success: (r) => `Added ${r.item.provider} ${r.item.model} to the price book.`,
    },
    () => api("admin-models", { method: "POST", body }),
  );
  if (!result) return;
  createForm.reset();
  await changed();
}

// ---------------------------------------------------------------------------- change price

function openPriceForm(item) {
  priceFor = item;
  const price = item.price || {};
  priceForm.elements.namedItem("id").value = String(item.id);
  for (const kind of KINDS) priceForm.elements.namedItem(kind).value = price[kind] ?? "";
  priceForm.elements.namedItem("request_usd").value = price.request_usd ?? "";
  priceForm.elements.namedItem("effective_from").value = "";
  $("#model-price-title").textContent = `Change price: ${item.provider} ${item.model}`;
  setStatus($(".status", priceForm), "");
  priceCard.hidden = false;
  priceForm.elements.namedItem("input").focus();
}

async function changePrice(event) {
  event.preventDefault();
  const formStatus = $(".status", priceForm);
  if (!priceFor) return;
  const before = priceFor.price || {};
  const prices = {};
  for (const name of [...KINDS, "request_usd"]) {
    const value = fieldValue(priceForm, name);
    if (value !== "" && value !== String(before[name] ?? "")) prices[name] = value;
  }
  if (!Object.keys(prices).length) {
    setStatus(formStatus, "Change at least one price: the version in force already has these.", "error");
    return;
  }
  const body = { prices };
  const from = isoFrom(priceForm);
  if (from) body.effective_from = from;
  const id = priceFor.id;
  const result = await run(
    { button: $("button[type=submit]", priceForm), status: formStatus, form: priceForm, busy: "Saving the new price version…" },
    () => api("admin-models", { method: "PATCH", query: { id }, body }),
  );
  if (!result) return;
  const item = result.item;
  const scheduled = (item.scheduled || []).length;
  setStatus(
    formStatus,
    scheduled && from
      ? `Scheduled a new price version for ${item.provider} ${item.model} from ${fmtTime(from)}.`
      : `Saved a new price version for ${item.provider} ${item.model}: input $${item.price.input}, output $${item.price.output} per Mtok.`,
    "ok",
  );
  priceFor = item;
  await changed();
  if (!historyCard.hidden && historyCard.dataset.modelId === String(id)) await showHistory(item);
}

// ---------------------------------------------------------------------------- retire / history

async function setRetired(item, retire, button) {
  const label = `${item.provider} ${item.model}`;
  if (retire && !window.confirm(`Retire ${label}? Calls to it are refused from now on; you can restore it.`)) return;
  const result = await run(
    {
      button,
      status,
      busy: retire ? `Retiring ${label}…` : `Restoring ${label}…`,
      success: retire ? `Retired ${label}.` : `Restored ${label}.`,
    },
    () =>
      retire
        ? api("admin-models", { method: "DELETE", query: { id: item.id } })
        : api("admin-models", { method: "PATCH", query: { id: item.id }, body: { retired: false } }),
  );
  if (result) await changed();
}

function versionState(version, inForce) {
  if (Date.parse(version.effective_from) > Date.now()) return badge("scheduled", "info");
  return version.version_id === inForce ? badge("in force", "ok") : badge("superseded");
}

async function showHistory(item) {
  historyCard.hidden = false;
  historyCard.dataset.modelId = String(item.id);
  $("#model-history-title").textContent = `Price history: ${item.provider} ${item.model}`;
  versions.showMessage("Loading…");
  const result = await run({ status, busy: "Loading the price history…" }, () =>
    api("admin-models", { query: { id: item.id } }),
  );
  if (!result) {
    versions.showMessage("Could not load the history.");
    return;
  }
  const model = result.item;
  const inForce = model.price ? model.price.version_id : null;
  versions.options.columns = [
    (v) => h("td", {}, h("strong", {}, `v${v.version_id}`)),
    (v) => timeCell(v.effective_from),
    (v) => priceCell(v, "input"),
    (v) => priceCell(v, "output"),
    (v) => priceCell(v, "cache_read"),
    (v) => h("td", { class: "num" }, `${usd(v.cache_write_5m)} / ${usd(v.cache_write_1h)}`),
    (v) => h("td", { class: "num" }, v.request_usd && Number(v.request_usd) ? usd(v.request_usd) : "—"),
    (v) => h("td", {}, versionState(v, inForce)),
  ];
  versions.setItems(model.versions || []);
}

// ---------------------------------------------------------------------------- panel

export default {
  name: "models",
  init() {
    table = new PagedTable($("#models-table"), {
      columns: [
        (item) => item.provider,
        (item) =>
          h(
            "td",
            {},
            h("strong", {}, item.model),
            item.mode === "embedding" ? h("span", { class: "sub" }, "embedding") : null,
            item.hidden_reasoning
              ? h("span", { class: "sub", title: "Thinks unseen: its calls reserve all of max_tokens, never a lease, and are never clamped" }, "reasons unseen")
              : null,
          ),
        (item) => (item.aliases || []).join(", "),
        (item) => priceCell(item.price, "input"),
        (item) => priceCell(item.price, "output"),
        (item) => priceCell(item.price, "cache_read"),
        (item) => h("td", { class: "num" }, `${fmtInt(item.max_input_tokens)} / ${fmtInt(item.max_output_tokens)}`),
        scheduledCell,
        (item) =>
          h("td", { title: item.retired_at || "" }, item.retired_at ? badge(`retired ${fmtTime(item.retired_at)}`, "bad") : badge("offered", "ok")),
        actionsCell,
      ],
      fetchPage: () => api("admin-models", { query: query() }),
      decorate: (tr, item) => {
        tr.dataset.modelId = String(item.id);
        if (item.retired_at) tr.classList.add("muted");
      },
      empty: "No models match.",
      idle: "Loading the price book…",
    });
    versions = new PagedTable($("#model-versions"), { columns: [], empty: "No versions." });
    filterForm.addEventListener("change", () => reload());
    filterForm.addEventListener("submit", (event) => {
      event.preventDefault();
      reload();
    });
    createForm.addEventListener("submit", createModel);
    priceForm.addEventListener("submit", changePrice);
    $("[data-close]", priceForm).addEventListener("click", () => {
      priceCard.hidden = true;
      priceFor = null;
    });
    $("[data-close]", historyCard).addEventListener("click", () => {
      historyCard.hidden = true;
    });
  },
  async show() {
    if (!loaded) await reload();
  },
  reset() {
    loaded = false;
    priceFor = null;
    priceCard.hidden = true;
    historyCard.hidden = true;
    table.reset();
    versions.reset();
    createForm.reset();
    setStatus(status, "");
  },
};
