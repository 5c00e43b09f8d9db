// A customer's Netlify token (used by KaixuPush): set, clear or check, in one form under the
// Customers table (the KaixuPush panel links to it). The token is sent once and never shown
// back; the API only says whether one is stored.

import { api } from "../api.js";
import { $, fieldValue, fmtTime, intValue } from "../dom.js";
import { run } from "../ui.js";

// Without a token of the customer's own, KaixuPush deploys with the operator's
// NETLIFY_AUTH_TOKEN only to projects an admin registered (a key could name anyone's site).
const FALLBACK = "KaixuPush falls back to NETLIFY_AUTH_TOKEN only for projects an admin registered; projects registered with a key cannot deploy";

function describeStatus(item) {
  return item.has_token
    ? `Customer #${item.customer_id} has a Netlify token (updated ${fmtTime(item.updated_at)}); KaixuPush deploys with it.`
    : `Customer #${item.customer_id} has no Netlify token: ${FALLBACK}.`;
}

/** Wire the Netlify token form; onChange runs after a set or clear. */
export function attachNetlifyTokenForm(onChange) {
  const form = $("form[data-netlify-token-form]");
  const status = $(".status", form);
  const customerId = () => intValue(form, "customer_id");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await run(
      { button: $("button[type=submit]", form), status, form, busy: "Saving the token…", success: (r) => describeStatus(r.item) },
      () =>
        api("admin-netlify-token", {
          method: "PUT",
          body: { customer_id: customerId(), token: fieldValue(form, "token") },
        }),
    );
    if (result) {
      form.elements.namedItem("token").value = "";
      onChange();
    }
  });

  $("[data-clear-token]", form).addEventListener("click", async (event) => {
    const id = customerId();
    if (id !== null && !window.confirm(`Clear the Netlify token of customer #${id}? ${FALLBACK} until a new token is set.`)) return;
    const result = await run(
      { button: event.currentTarget, status, form, busy: "Clearing…", success: (r) => describeStatus(r.item) },
      () => api("admin-netlify-token", { method: "DELETE", query: { customer_id: id } }),
    );
    if (result) onChange();
  });

  $("[data-check-token]", form).addEventListener("click", (event) =>
    run({ button: event.currentTarget, status, form, busy: "Checking…", success: (r) => describeStatus(r.item) }, () =>
      api("admin-netlify-token", { query: { customer_id: customerId() } }),
    ),
  );

  // The KaixuPush panel's link: once Customers is shown, put the cursor in the token field.
  $("[data-netlify-token-link]").addEventListener("click", () => {
    window.addEventListener("hashchange", () => form.elements.namedItem("token").focus(), { once: true });
  });
}
