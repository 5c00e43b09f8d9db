// KaixuPush (Deploy Proxy): a customer's project registry (click a row to edit it),
// deploy history (filtered by project and state), chunked-upload jobs (a failed one can be
// retried), the customer's push cap and pricing, and push invoices.

import { api } from "../api.js";
import { $, badge, fieldValue, fmtBytes, fmtCents, fmtInt, fmtTime, h, intValue, timeCell } from "../dom.js";
import { customerLoads } from "../state.js";
import { PagedTable } from "../table.js";
import { requireCustomerId, run, setStatus, showError } from "../ui.js";

const loadForm = $("#push-load");
const status = $("#push-status");
const projectForm = $("#push-project-form");
const capForm = $("#push-cap-form");
const invoiceStatus = $("#push-invoice-status");
const billingStatus = $("#push-billing");
const deployFilters = $("#push-deploy-filters");
let projects;
let deploys;
let jobs;
let invoices;
const loads = customerLoads(() => fillProject(null));

const customerId = () => intValue(loadForm, "customer_id");

/** The first field present: tolerant of the few names a row may use for one thing. */
function pick(row, ...names) {
  for (const name of names) if (row[name] !== undefined && row[name] !== null) return row[name];
  return null;
}

const STATE_TONES = { ready: "ok", done: "ok", error: "bad", init_failed: "bad", failed: "bad", retry_wait: "warn", expired: "bad" };

function stateBadge(value) {
  return badge(value || "", STATE_TONES[value] || "info");
}

/** The project id, marked when a key registered it: without the customer's own Netlify
 * token such a project cannot deploy (the operator's token is for admin-registered ones). */
function projectIdCell(row) {
  const cell = h("td", { class: "mono" }, pick(row, "project_id") || "");
  if (row.registered_by === "key") cell.append(" ", badge("key-registered", "warn"));
  return cell;
}

function urlCell(row) {
  const url = pick(row, "url", "deploy_url");
  if (!url || !/^https?:\/\//i.test(url)) return h("td", {}, url || "");
  return h("td", { class: "wrap" }, h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url));
}

// ---------------------------------------------------------------------------- projects

function fillProject(row) {
  projectForm.elements.namedItem("id").value = row ? String(row.id) : "";
  projectForm.elements.namedItem("project_id").value = row ? pick(row, "project_id") || "" : "";
  projectForm.elements.namedItem("name").value = row ? pick(row, "name") || "" : "";
  projectForm.elements.namedItem("netlify_site_id").value = row ? pick(row, "netlify_site_id") || "" : "";
  $("button[type=submit]", projectForm).textContent = row ? `Save project ${row.id}` : "Save project";
  setStatus($(".status", projectForm), row ? `Editing project ${row.id}; change fields and save.` : "", "info");
}

async function saveProject(event) {
  event.preventDefault();
  const formStatus = $(".status", projectForm);
  if (requireCustomerId(loadForm, formStatus) === null) return;
  const id = fieldValue(projectForm, "id");
  const body = {
    project_id: fieldValue(projectForm, "project_id"),
    name: fieldValue(projectForm, "name") || null,
    netlify_site_id: fieldValue(projectForm, "netlify_site_id"),
  };
  const result = await run(
    { button: $("button[type=submit]", projectForm), status: formStatus, form: projectForm, busy: "Saving the project…" },
    () =>
      id
        ? api("admin-kaixupush-projects", { method: "PATCH", query: { id }, body })
        : api("admin-kaixupush-projects", { method: "POST", body: { customer_id: customerId(), ...body } }),
  );
  if (!result) return;
  fillProject(null);
  setStatus(formStatus, `Saved project ${result.item.id} (${pick(result.item, "project_id")}).`, "ok");
  await projects.reload();
}

async function deleteProject(row, button) {
  if (!window.confirm(`Delete project ${pick(row, "project_id")} (${row.id})? Its deploy history stays.`)) return;
  const result = await run(
    { button, status, busy: "Deleting the project…", success: `Deleted project ${pick(row, "project_id")}.` },
    () => api("admin-kaixupush-projects", { method: "DELETE", query: { id: row.id } }),
  );
  if (result) {
    if (fieldValue(projectForm, "id") === String(row.id)) fillProject(null);
    await projects.reload();
  }
}

function projectActions(row) {
  const edit = h("button", { type: "button", class: "small" }, "Edit");
  const remove = h("button", { type: "button", class: "small danger" }, "Delete");
  edit.setAttribute("aria-label", `Edit project ${pick(row, "project_id")}`);
  remove.setAttribute("aria-label", `Delete project ${pick(row, "project_id")}`);
  edit.addEventListener("click", () => {
    fillProject(row);
    projectForm.elements.namedItem("project_id").focus();
  });
  remove.addEventListener("click", () => deleteProject(row, remove));
  return h("td", {}, h("div", { class: "actions" }, edit, remove));
}

// ---------------------------------------------------------------------------- chunk jobs

function receivedCell(row) {
  const cell = h("td", { class: "num" }, fmtInt(pick(row, "received_count", "received_parts", "received")));
  if (row.parts_staged === false && pick(row, "received")) cell.title = "Parts were deleted once the job finished; this is what it received.";
  return cell;
}

/** POST ?id=&action=retry for a failed job (after a confirm), then redraw its row. */
async function retryJob(row, button) {
  const what = pick(row, "path") || `job ${row.id}`;
  if (!window.confirm(`Retry ${what} (job ${row.id})? It is queued again with its attempts reset.`)) return;
  const result = await run(
    { button, status, busy: `Retrying ${what}…`, success: `Queued ${what} again.` },
    () => api("admin-kaixupush-jobs", { method: "POST", query: { id: row.id, action: "retry", customer_id: row.customer_id } }),
  );
  const tr = button.closest("tr");
  if (result && tr && tr.isConnected) tr.replaceWith(jobs.row(result.item));
}

function jobStatusCell(row) {
  const state = pick(row, "status", "state");
  const cell = h("td", { title: pick(row, "last_error", "error") || "" }, stateBadge(state));
  if (state !== "failed") return cell;
  const retry = h("button", { type: "button", class: "small" }, "Retry");
  retry.setAttribute("aria-label", `Retry ${pick(row, "path") || `job ${row.id}`}`);
  retry.addEventListener("click", () => retryJob(row, retry));
  cell.replaceChildren(h("div", { class: "actions" }, cell.firstChild, retry));
  return cell;
}

// ---------------------------------------------------------------------------- deploys

function deployQuery(cursor) {
  const query = listQuery(cursor);
  const project = fieldValue(deployFilters, "project_id");
  const state = fieldValue(deployFilters, "state");
  if (project) query.project_id = project;
  if (state) query.state = state;
  return query;
}

/** The project ids of the loaded projects, offered in the deploy filter. */
function offerProjects(items) {
  const ids = [...new Set(items.map((row) => pick(row, "project_id")).filter(Boolean))];
  $("#push-project-options").replaceChildren(...ids.map((id) => h("option", { value: id })));
}

// ---------------------------------------------------------------------------- cap and pricing

function capText(cents) {
  return cents === null || cents === undefined ? "no cap" : `a cap of ${fmtCents(cents)} a month`;
}

function pricingText(pricing) {
  const base = pricing.base_month_cents ? `${fmtCents(pricing.base_month_cents)} a month + ` : "";
  return `${base}${fmtCents(pricing.per_deploy_cents)} a ready deploy + ${fmtCents(pricing.per_gib_cents)} a GiB uploaded`;
}

function describeCap(item) {
  return `KaixuPush for customer #${item.customer_id}: ${capText(item.monthly_cap_cents)}, pricing version ${item.pricing_version}.`;
}

/** GET ?view=billing: show the cap and pricing in force and prefill the form with them. */
async function loadBilling() {
  const id = customerId();
  setStatus(billingStatus, "Loading the push cap…", "busy");
  try {
    const result = await api("admin-kaixupush-invoices", { query: { view: "billing", customer_id: id } });
    if (id !== customerId()) return;
    const item = result.item;
    const since = item.updated_at ? `set ${fmtTime(item.updated_at)}` : "the default: never set";
    setStatus(
      billingStatus,
      `Now: ${capText(item.monthly_cap_cents)}; pricing version ${item.pricing_version} (${pricingText(item.pricing)}); ${since}.`,
      "info",
    );
    capForm.elements.namedItem("monthly_cap_cents").value = item.monthly_cap_cents === null ? "" : String(item.monthly_cap_cents);
    capForm.elements.namedItem("pricing_version").value = String(item.pricing_version);
    $("#push-pricing-options").replaceChildren(
      ...(result.pricing_versions || []).map((v) => h("option", { value: String(v.version), label: `v${v.version}: ${pricingText(v)}` })),
    );
  } catch (error) {
    showError(billingStatus, error);
  }
}

function forgetBilling() {
  setStatus(billingStatus, "");
  capForm.reset();
  $("#push-pricing-options").replaceChildren();
}

/** POST ?action=set_cap: the customer's push cap (empty = no cap) and pricing version. */
async function saveCap(event) {
  event.preventDefault();
  if (requireCustomerId(loadForm, invoiceStatus) === null) return;
  const body = { customer_id: customerId(), monthly_cap_cents: intValue(capForm, "monthly_cap_cents") };
  const version = intValue(capForm, "pricing_version");
  if (version !== null) body.pricing_version = version;
  const result = await run(
    { button: $("button[type=submit]", capForm), status: invoiceStatus, form: capForm, busy: "Saving…", success: (r) => describeCap(r.item) },
    () => api("admin-kaixupush-invoices", { method: "POST", query: { action: "set_cap" }, body }),
  );
  if (result) await Promise.all([invoices.reload(), loadBilling()]);
}

function breakdown(row) {
  return row.breakdown && typeof row.breakdown === "object" ? row.breakdown : {};
}

// ---------------------------------------------------------------------------- panel

async function load() {
  if (requireCustomerId(loadForm, status) === null) return;
  setStatus(status, "");
  loads.loaded({ customer_id: customerId() });
  await Promise.all([projects.reload(), deploys.reload(), jobs.reload(), invoices.reload(), loadBilling()]);
}

function listQuery(cursor) {
  return { customer_id: customerId(), limit: 50, cursor };
}

export default {
  name: "kaixupush",
  init() {
    projects = new PagedTable($("#push-projects-table"), {
      columns: [
        (row) => h("td", {}, String(row.id)),
        projectIdCell,
        (row) => pick(row, "name") || "",
        (row) => h("td", { class: "mono wrap" }, pick(row, "netlify_site_id") || ""),
        (row) => timeCell(pick(row, "updated_at", "created_at")),
        projectActions,
      ],
      onRowClick: (row) => fillProject(row),
      fetchPage: async (cursor) => {
        const page = await api("admin-kaixupush-projects", { query: listQuery(cursor) });
        if (!cursor) offerProjects(page.items || []);
        return page;
      },
      empty: "No projects yet: add one with the form below.",
      idle: "Choose a customer to see its projects.",
    });
    deploys = new PagedTable($("#push-deploys-table"), {
      columns: [
        (row) => h("td", { class: "mono" }, pick(row, "push_id", "id") || ""),
        (row) => pick(row, "project_name", "project_id") || "",
        (row) => pick(row, "branch") || "",
        (row) => h("td", {}, stateBadge(pick(row, "state", "status"))),
        (row) => h("td", { class: "num" }, fmtInt(pick(row, "required_count", "required"))),
        (row) => h("td", { class: "num" }, fmtInt(pick(row, "uploaded_count", "uploaded"))),
        urlCell,
        (row) => timeCell(row.created_at),
      ],
      fetchPage: (cursor) => api("admin-kaixupush-deploys", { query: deployQuery(cursor) }),
      empty: "No deploys match.",
      idle: "Choose a customer to see its deploys.",
    });
    jobs = new PagedTable($("#push-jobs-table"), {
      columns: [
        (row) => h("td", { class: "mono" }, pick(row, "push_id") || ""),
        (row) => pick(row, "project_name", "project_id") || "",
        (row) => h("td", { class: "mono wrap" }, pick(row, "deploy_path", "path") || ""),
        (row) => h("td", { class: "mono clip", title: pick(row, "sha1") || "" }, pick(row, "sha1") || ""),
        (row) => h("td", { class: "num" }, fmtInt(pick(row, "parts"))),
        receivedCell,
        (row) => h("td", { class: "num" }, fmtBytes(pick(row, "bytes_staged", "staged_bytes"))),
        jobStatusCell,
        (row) => timeCell(pick(row, "updated_at", "created_at")),
      ],
      fetchPage: (cursor) => api("admin-kaixupush-jobs", { query: listQuery(cursor) }),
      empty: "No chunked uploads yet.",
      idle: "Choose a customer to see its chunked uploads.",
    });
    invoices = new PagedTable($("#push-invoices-table"), {
      columns: [
        (row) => row.month,
        (row) => h("td", { class: "num" }, fmtCents(pick(row, "total_cents"))),
        (row) => `v${pick(row, "pricing_version") ?? breakdown(row).pricing_version ?? "?"}`,
        (row) => h("td", { class: "num" }, fmtInt(pick(row, "deploys_ready", "deploys") ?? breakdown(row).deploys_ready)),
        (row) => h("td", { class: "num" }, fmtBytes(pick(row, "bytes_uploaded", "bytes") ?? breakdown(row).bytes_uploaded)),
        (row) => timeCell(pick(row, "updated_at", "created_at")),
      ],
      fetchPage: (cursor) => api("admin-kaixupush-invoices", { query: listQuery(cursor) }),
      empty: "No push invoices yet.",
      idle: "Choose a customer to see its push invoices.",
    });
    loadForm.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    projectForm.addEventListener("submit", saveProject);
    $("[data-new-project]", projectForm).addEventListener("click", () => {
      fillProject(null);
      projectForm.elements.namedItem("project_id").focus();
    });
    capForm.addEventListener("submit", saveCap);
    deployFilters.addEventListener("submit", (event) => {
      event.preventDefault();
      if (requireCustomerId(loadForm, status) !== null) deploys.reload();
    });
    deployFilters.elements.namedItem("state").addEventListener("change", () => {
      if (customerId() !== null) deploys.reload();
    });
  },
  async show() {
    if (loads.wanted({ customer_id: customerId() })) await load();
  },
  reset() {
    loads.forget();
    for (const table of [projects, deploys, jobs, invoices]) table.reset();
    fillProject(null);
    forgetBilling();
    deployFilters.reset();
    $("#push-project-options").replaceChildren();
  },
};
