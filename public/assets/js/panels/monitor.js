// Monitor: gateway_events newest first, filtered by level, function, app and error code; a
// live tail (admin-monitor?tail=1, SSE read through fetch so it can carry the Bearer header);
// click a row for its full detail. Above the list, the last hour's error rates per function
// (?view=rates); below it, pruning of old rows (POST ?action=prune, confirmed first).

import { api, request } from "../api.js";
import { $, badge, fieldValue, fmtInt, h, intValue, timeCell } from "../dom.js";
import { readEvents } from "../sse.js";
import { PagedTable, staticTable } from "../table.js";
import { describe, run, setStatus } from "../ui.js";

const form = $("#monitor-filters");
const status = $("#monitor-status");
const tailButton = $("#monitor-tail");
const detail = $("#monitor-detail");
const ratesSlot = $("#monitor-rates-table");
const ratesStatus = $("#monitor-rates-status");
const pruneForm = $("#monitor-prune");
const pruneStatus = $("#monitor-prune-status");
let table;
let tail = null; // AbortController of the open tail
let seen = new Set();
let maxId = 0;
let loaded = false;

const LEVEL_TONES = { info: "info", warn: "warn", error: "bad" };

function filters() {
  return {
    level: fieldValue(form, "level"),
    function: fieldValue(form, "function"),
    app: fieldValue(form, "app"),
    code: fieldValue(form, "code"),
  };
}

function matches(row) {
  const f = filters();
  return (
    (!f.level || row.level === f.level) &&
    (!f.function || row.function_name === f.function) &&
    (!f.app || row.app === f.app) &&
    (!f.code || row.code === f.code)
  );
}

function remember(items) {
  for (const row of items) {
    seen.add(row.id);
    if (row.id > maxId) maxId = row.id;
  }
  return items;
}

function providerModel(row) {
  if (!row.provider && !row.model) return "";
  return [row.provider, row.model].filter(Boolean).join(" / ");
}

function statusTone(code) {
  if (!code) return "";
  if (code >= 500) return "bad";
  if (code >= 400) return "warn";
  return "ok";
}

/** The Summary cell: an error's code as a badge (4xx warn, 5xx bad) before its sentence. */
function summaryCell(row) {
  const code = row.code ? badge(row.code, statusTone(row.status)) : null;
  return h("td", { class: "wrap" }, code, code && row.summary ? " " : null, row.summary || "");
}

function percent(rate) {
  return `${(rate * 100).toFixed(1)} %`;
}

async function loadRates() {
  const result = await run({ status: ratesStatus, busy: "Counting the last hour…" }, () =>
    api("admin-monitor", { query: { view: "rates" } }),
  );
  if (!result) return;
  const rows = (result.items || []).map((item) => [
    item.function_name,
    fmtInt(item.requests),
    fmtInt(item.status_4xx),
    fmtInt(item.status_5xx),
    percent(item.error_rate),
  ]);
  ratesSlot.replaceChildren(staticTable(["Function", "Requests", "4xx", "5xx", "Error rate"], rows, new Set([1, 2, 3, 4])));
}

async function prune(event) {
  event.preventDefault();
  const days = intValue(pruneForm, "days");
  if (days === null) {
    setStatus(pruneStatus, "Enter how many days of events to keep.", "error");
    return;
  }
  if (!window.confirm(`Delete every monitor event older than ${days} days? This cannot be undone.`)) {
    setStatus(pruneStatus, "Nothing was deleted.", "info");
    return;
  }
  const result = await run(
    { button: $("button[type=submit]", pruneForm), status: pruneStatus, form: pruneForm, busy: "Pruning…" },
    () => api("admin-monitor", { method: "POST", query: { action: "prune" }, body: { days } }),
  );
  if (!result) return;
  const { deleted } = result.item;
  setStatus(pruneStatus, `Deleted ${fmtInt(deleted)} ${deleted === 1 ? "event" : "events"} older than ${result.item.days} days.`, "ok");
  if (deleted) await Promise.all([reload(), loadRates()]);
}

async function showDetail(row) {
  const result = await run({ status, busy: `Loading event ${row.id}…` }, () => api("admin-monitor", { query: { id: row.id } }));
  if (!result) return;
  $("#monitor-detail-json").textContent = JSON.stringify(result.item, null, 2);
  detail.hidden = false;
  detail.scrollIntoView({ block: "nearest" });
}

async function reload() {
  seen = new Set();
  maxId = 0;
  loaded = true;
  await table.reload();
}

// ---------------------------------------------------------------------------- live tail

function setTailUi(open) {
  tailButton.textContent = open ? "Stop live tail" : "Start live tail";
  tailButton.setAttribute("aria-pressed", open ? "true" : "false");
}

export function stopTail() {
  if (tail) tail.abort();
  tail = null;
  setTailUi(false);
}

async function startTail() {
  const controller = new AbortController();
  tail = controller;
  setTailUi(true);
  setStatus(status, "Live tail: connecting…", "busy");
  try {
    const response = await request("admin-monitor", {
      query: { tail: 1, after_id: maxId || undefined },
      signal: controller.signal,
      stream: true,
    });
    for await (const frame of readEvents(response)) {
      if (frame.event === "hello") setStatus(status, "Live tail: connected. New events appear at the top.", "ok");
      else if (frame.event === "row") {
        const row = frame.data;
        if (seen.has(row.id)) continue;
        remember([row]);
        if (matches(row)) table.prepend(row);
      } else if (frame.event === "error") {
        setStatus(status, `Live tail stopped: ${frame.data.error}`, "error");
        break;
      }
    }
    if (tail === controller) setStatus(status, "Live tail ended by the server; start it again to resume.", "info");
  } catch (error) {
    if (error.name === "AbortError") setStatus(status, "Live tail stopped.", "info");
    else setStatus(status, `Live tail stopped: ${describe(error)}`, "error");
  } finally {
    if (tail === controller) {
      tail = null;
      setTailUi(false);
    }
  }
}

export default {
  name: "monitor",
  init() {
    table = new PagedTable($("#monitor-table"), {
      columns: [
        (row) => timeCell(row.created_at, { seconds: true }),
        (row) => h("td", {}, badge(row.level, LEVEL_TONES[row.level] || "")),
        (row) => h("td", { class: "mono" }, row.function_name, row.kind && row.kind !== "http" ? h("span", { class: "sub" }, row.kind) : null),
        (row) => h("td", {}, row.app || "", row.build ? h("span", { class: "sub" }, row.build) : null),
        (row) => h("td", { class: "num" }, row.status ? badge(String(row.status), statusTone(row.status)) : ""),
        (row) => h("td", { class: "wrap" }, providerModel(row)),
        (row) => h("td", { class: "num" }, row.duration_ms === null || row.duration_ms === undefined ? "" : String(Math.round(row.duration_ms))),
        (row) => h("td", { class: "mono clip", title: row.request_id || "" }, row.request_id || ""),
        summaryCell,
      ],
      onRowClick: showDetail,
      fetchPage: async (cursor) => {
        const page = await api("admin-monitor", { query: { ...filters(), limit: 50, cursor } });
        remember(page.items || []);
        return page;
      },
      empty: "No events match these filters.",
      idle: "Loading events…",
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      reload();
    });
    $("#monitor-rates-refresh").addEventListener("click", loadRates);
    pruneForm.addEventListener("submit", prune);
    tailButton.addEventListener("click", () => (tail ? stopTail() : startTail()));
    $("[data-close-detail]", detail).addEventListener("click", () => {
      detail.hidden = true;
    });
  },
  async show() {
    if (!loaded) await Promise.all([reload(), loadRates()]);
  },
  reset() {
    stopTail();
    loaded = false;
    table.reset();
    detail.hidden = true;
    ratesSlot.replaceChildren();
    setStatus(status, "");
    setStatus(ratesStatus, "");
    setStatus(pruneStatus, "");
  },
};
