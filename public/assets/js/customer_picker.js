// The customer picker on each panel's "Customer ID" field: type an email fragment (or an ID)
// and choose from the matches. The field's value stays the customer's ID, so the panels read
// it as before; a choice becomes the selected customer everywhere (state.js).

import { api } from "./api.js";
import { $$, h } from "./dom.js";
import { selectCustomer, selectedCustomer } from "./state.js";

const LIMIT = 8;
const WAIT_MS = 200; // typing pauses this long before a search goes out
let count = 0;

/** Up to LIMIT customers for what was typed (an email fragment, or an ID: that one first). */
async function matches(text) {
  const page = await api("admin-customers", { query: { q: text, limit: LIMIT } });
  const items = page.items || [];
  const exact = items.filter((item) => String(item.id) === text);
  return [...exact, ...items.filter((item) => String(item.id) !== text)];
}

/**
 * Make `input` a picker. With `data-customer-picker="load"` a choice also submits the
 * field's form (the panel's Load); elsewhere it only fills the field.
 */
export function attachCustomerPicker(input) {
  const id = `customer-picker-${++count}`;
  const list = h("ul", { id: `${id}-list`, class: "picker-list", role: "listbox", hidden: true });
  const wrap = h("span", { class: "customer-picker" });
  input.replaceWith(wrap);
  wrap.append(input, list);
  input.type = "text";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");
  if (!input.placeholder) input.placeholder = "email or ID";
  input.removeAttribute("min");
  const submits = input.dataset.customerPicker === "load";
  let items = [];
  let active = -1;
  let timer = null;
  let generation = 0;

  function close() {
    generation += 1; // a search still on its way is no longer wanted
    list.hidden = true;
    list.replaceChildren();
    items = [];
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    active = index;
    [...list.children].forEach((option, i) => option.setAttribute("aria-selected", i === index ? "true" : "false"));
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", `${id}-opt-${index}`);
      list.children[index].scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  }

  function choose(customer) {
    close();
    input.value = String(customer.id);
    input.removeAttribute("aria-invalid");
    selectCustomer(customer);
    if (submits && input.form) input.form.requestSubmit();
  }

  function show(found, text) {
    list.replaceChildren(
      ...(found.length
        ? found.map((customer, i) => {
            const option = h(
              "li",
              { id: `${id}-opt-${i}`, role: "option", "aria-selected": "false" },
              h("strong", {}, `#${customer.id}`),
              " ",
              customer.email,
            );
            // mousedown, not click: the field keeps focus, so no blur closes the list first
            option.addEventListener("mousedown", (event) => {
              event.preventDefault();
              choose(customer);
            });
            return option;
          })
        : [h("li", { class: "muted", role: "presentation" }, `No customer matches “${text}”.`)]),
    );
    items = found;
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(found.length ? 0 : -1);
  }

  async function search() {
    const text = input.value.trim();
    if (!text) {
      close();
      return;
    }
    const mine = ++generation;
    try {
      const found = await matches(text);
      if (mine === generation && document.activeElement === input) show(found, text);
    } catch {
      if (mine === generation) close(); // the panel's own Load says what is wrong
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, WAIT_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (list.hidden) {
      if (event.key === "ArrowDown" && input.value.trim()) {
        event.preventDefault();
        search();
      }
      return;
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!items.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + items.length) % items.length);
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault(); // choosing submits by itself where the field loads a panel
      choose(items[active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", () => {
    clearTimeout(timer);
    close();
  });
  // An ID typed by hand (no choice made) still becomes the selected customer once found,
  // without making the panels start afresh.
  input.addEventListener("change", async () => {
    const text = input.value.trim();
    if (!/^\d+$/.test(text) || selectedCustomer()?.id === Number(text)) return;
    const customer = (await matches(text).catch(() => []))[0];
    if (customer && String(customer.id) === text && input.value.trim() === text) {
      selectCustomer(customer, { fresh: false });
    }
  });
}

/** Every field marked data-customer-picker. */
export function attachCustomerPickers(root = document) {
  for (const input of $$("input[data-customer-picker]", root)) attachCustomerPicker(input);
}
