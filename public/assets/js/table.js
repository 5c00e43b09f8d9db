// A table filled page by page from a list endpoint ({items, next_cursor}): "More" loads
// the next page; load errors are shown under the table. And a small table of fixed rows
// (an invoice's statement).

import { h } from "./dom.js";
import { run, setStatus, showError } from "./ui.js";

function cell(value) {
  if (value instanceof Node && value.nodeName === "TD") return value;
  return h("td", {}, value);
}

/** A table of `rows` (arrays of cell text) under `headers`; columns in `numeric` align as numbers. */
export function staticTable(headers, rows, numeric = new Set()) {
  const align = (i) => (numeric.has(i) ? "num" : "");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map((text, i) => h("th", { class: align(i) }, text)))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((cells) => h("tr", {}, cells.map((text, i) => h("td", { class: align(i) }, text))))
          : h("tr", {}, h("td", { class: "empty", colspan: headers.length }, "None.")),
      ),
    ),
  );
}

export class PagedTable {
  /**
   * @param {HTMLTableElement} table
   * @param {{columns: Array<(row: object) => any>, fetchPage?: (cursor: string|null) => Promise<{items: object[], next_cursor: string|null}>,
   *          onRowClick?: (row: object, tr: HTMLTableRowElement) => void, rowClass?: (row: object) => string,
   *          decorate?: (tr: HTMLTableRowElement, row: object) => void,
   *          empty?: string, idle?: string}} options
   */
  constructor(table, options) {
    this.table = table;
    this.body = table.tBodies[0];
    this.options = options;
    this.cursor = null;
    this.generation = 0;
    this.moreButton = h("button", { type: "button", hidden: true }, "More");
    this.status = h("p", { class: "status", role: "status", "aria-live": "polite" });
    this.moreButton.addEventListener("click", () => this.more());
    const footer = h("div", { class: "table-more" }, this.moreButton, this.status);
    const wrap = table.closest(".table-wrap") || table;
    wrap.after(footer);
    this.showMessage(options.idle || options.empty || "Nothing to show yet.");
  }

  get columnCount() {
    return this.table.tHead.rows[0].cells.length;
  }

  showMessage(text) {
    this.body.replaceChildren(h("tr", {}, h("td", { class: "empty", colspan: this.columnCount }, text)));
  }

  row(item) {
    const tr = h("tr", {}, this.options.columns.map((column) => cell(column(item))));
    const extra = this.options.rowClass ? this.options.rowClass(item) : "";
    if (extra) tr.className = extra;
    if (this.options.decorate) this.options.decorate(tr, item);
    if (this.options.onRowClick) {
      tr.dataset.row = "";
      tr.tabIndex = 0;
      const activate = (event) => {
        if (event.target.closest("button, a, input, select, textarea")) return;
        if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
        this.options.onRowClick(item, tr);
      };
      tr.addEventListener("click", activate);
      tr.addEventListener("keydown", activate);
    }
    return tr;
  }

  /** Replace the rows with `items` (for lists that are not paged). */
  setItems(items, nextCursor = null) {
    this.cursor = nextCursor;
    if (!items.length) this.showMessage(this.options.empty || "Nothing here yet.");
    else this.body.replaceChildren(...items.map((item) => this.row(item)));
    this.moreButton.hidden = !nextCursor;
  }

  appendItems(items, nextCursor) {
    if (this.body.querySelector("td.empty")) this.body.replaceChildren();
    this.body.append(...items.map((item) => this.row(item)));
    this.cursor = nextCursor;
    this.moreButton.hidden = !nextCursor;
  }

  /** Put one new item at the top (live tail), keeping at most `limit` rows. */
  prepend(item, limit = 500) {
    if (this.body.querySelector("td.empty")) this.body.replaceChildren();
    this.body.prepend(this.row(item));
    while (this.body.rows.length > limit) this.body.deleteRow(-1);
  }

  /** Load the first page again (e.g. after a filter change or a write). */
  async reload() {
    const generation = ++this.generation;
    this.moreButton.hidden = true;
    setStatus(this.status, "Loading…", "busy");
    try {
      const page = await this.options.fetchPage(null);
      if (generation !== this.generation) return;
      this.setItems(page.items || [], page.next_cursor || null);
      setStatus(this.status, "");
    } catch (error) {
      if (generation !== this.generation) return;
      this.showMessage("Could not load this list.");
      showError(this.status, error);
    }
  }

  async more() {
    if (!this.cursor) return;
    const generation = this.generation;
    await run({ button: this.moreButton, status: this.status, busy: "Loading more…" }, async () => {
      const page = await this.options.fetchPage(this.cursor);
      if (generation !== this.generation) return;
      this.appendItems(page.items || [], page.next_cursor || null);
    });
  }

  /** Back to the idle message (e.g. after logout). */
  reset() {
    this.generation += 1;
    this.cursor = null;
    this.moreButton.hidden = true;
    setStatus(this.status, "");
    this.showMessage(this.options.idle || this.options.empty || "Nothing to show yet.");
  }
}
