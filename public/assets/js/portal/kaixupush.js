// KaixuPush: the account's deploys and its monthly push charges, read only. The columns are
// read from what each item has, so a field the server adds later does not break the table.

import { $, fmtBytes, fmtCents, fmtInt, h, thisMonth, timeCell } from "../dom.js";
import { loadOnce } from "../shell.js";
import { PagedTable } from "../table.js";
import { api } from "./api.js";
import { pick, stateBadge, urlCell } from "./ui.js";

let deploys;
let charges;
const once = loadOnce(() => Promise.all([deploys.reload(), charges.reload()]));

function breakdown(row) {
  return row.breakdown && typeof row.breakdown === "object" ? row.breakdown : {};
}

function deployCell(row) {
  const id = pick(row, "push_id", "deploy_id", "id");
  return h("td", { class: "mono clip", title: String(id ?? "") }, String(id ?? ""));
}

function branchCell(row) {
  const branch = pick(row, "branch");
  const title = pick(row, "title");
  return h("td", { class: "wrap" }, branch || "", title ? h("span", { class: "sub" }, title) : null);
}

function stateCell(row) {
  const error = pick(row, "error", "last_error");
  return h("td", { title: error || "" }, stateBadge(pick(row, "state", "status")), error ? h("span", { class: "sub" }, error) : null);
}

/** A charge's status when the server gives one; this month's total is still growing. */
function statusCell(row) {
  if (pick(row, "status")) return h("td", {}, stateBadge(row.status));
  return h("td", { class: "muted" }, row.month === thisMonth() ? "month so far" : "—");
}

export default {
  name: "kaixupush",
  init() {
    deploys = new PagedTable($("#push-deploys"), {
      columns: [
        deployCell,
        (row) => h("td", { class: "wrap" }, pick(row, "project_name", "project_id") || ""),
        branchCell,
        stateCell,
        (row) => h("td", { class: "num" }, fmtInt(pick(row, "file_count", "required_count"))),
        (row) => urlCell(pick(row, "url", "deploy_url")),
        (row) => timeCell(row.created_at, { stack: true }),
      ],
      fetchPage: (cursor) => api("customer-kaixupush", { query: { view: "deploys", limit: 50, cursor } }),
      empty: "No deploys yet.",
      idle: "Loading…",
    });
    charges = new PagedTable($("#push-charges"), {
      columns: [
        (row) => row.month || "",
        (row) => h("td", { class: "num" }, fmtCents(pick(row, "total_cents"))),
        (row) => h("td", { class: "num" }, fmtInt(pick(row, "deploys", "deploys_ready") ?? breakdown(row).deploys_ready)),
        (row) => h("td", { class: "num" }, fmtBytes(pick(row, "bytes", "bytes_uploaded") ?? breakdown(row).bytes_uploaded)),
        statusCell,
        (row) => timeCell(pick(row, "updated_at", "created_at"), { stack: true }),
      ],
      fetchPage: (cursor) => api("customer-kaixupush", { query: { view: "charges", limit: 50, cursor } }),
      empty: "No KaixuPush charges yet.",
      idle: "Loading…",
    });
  },
  show: () => once.show(),
  reset() {
    once.forget();
    deploys.reset();
    charges.reset();
  },
};
