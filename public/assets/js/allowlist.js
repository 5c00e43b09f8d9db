// The allowed-models editor: JSON like {"openai": ["gpt-4o-mini"], "anthropic": ["*"]},
// with a picker of priced models and a warning for names the price book does not know
// (the gateway refuses unpriced models, so such an entry would allow nothing).

import { $, $$, h } from "./dom.js";
import { pricedModels } from "./state.js";

const PROVIDERS = ["openai", "anthropic", "gemini"];

/** Compact, readable JSON for the textarea ("" for null). */
export function modelsText(value) {
  if (!value || typeof value !== "object") return "";
  const parts = Object.entries(value).map(
    ([provider, models]) => `${JSON.stringify(provider)}: [${(models || []).map((m) => JSON.stringify(m)).join(", ")}]`,
  );
  return `{${parts.join(", ")}}`;
}

/** The textarea's object, null when empty; throws an Error in plain words when malformed. */
export function parseModels(text) {
  const trimmed = (text || "").trim();
  if (!trimmed) return null;
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch {
    throw new Error('Allowed models must be JSON like {"openai": ["gpt-4o-mini"]}; check quotes and brackets.');
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new Error('Allowed models must be an object like {"openai": ["gpt-4o-mini"]}.');
  }
  return value;
}

function knownNames(models) {
  const names = new Set();
  for (const m of models) {
    names.add(`${m.provider}:${m.model}`);
    for (const alias of m.aliases || []) names.add(`${m.provider}:${alias}`);
  }
  return names;
}

function unpriced(value, names) {
  const missing = [];
  for (const [provider, list] of Object.entries(value || {})) {
    if (provider === "*" || !Array.isArray(list)) continue;
    for (const model of list) if (model !== "*" && !names.has(`${provider}:${model}`)) missing.push(`${provider}:${model}`);
  }
  return missing;
}

/** The providers of `models`: the three upstreams first, then any other the price book lists
 * (the dev server's demo provider), each once. */
export function providerNames(models) {
  return [...new Set([...PROVIDERS, ...models.map((m) => m.provider)])].filter((name) =>
    models.some((m) => m.provider === name),
  );
}

/**
 * Give every provider the price book lists beyond the three written in the page (the dev
 * server's demo provider) its checkbox in each allowed-providers fieldset and its option in
 * each provider filter, so its allowlists are set like any provider's.
 */
export function addProviderChoices(models) {
  for (const name of providerNames(models)) {
    for (const fieldset of $$("fieldset[name=allowed_providers]")) {
      if ([...fieldset.elements].some((input) => input.value === name)) continue;
      const input = h("input", { type: "checkbox", name: "allowed_providers", value: name });
      fieldset.append(h("label", { class: "check" }, input, ` ${name}`));
    }
    for (const select of $$("select[data-provider-filter]")) {
      if (![...select.options].some((option) => option.value === name)) select.append(h("option", { value: name }, name));
    }
  }
}

/** Fill a <select> with the priced models, grouped by provider (value "provider:model"). */
export function fillModelOptions(select, models, { provider = null } = {}) {
  const groups = [];
  for (const name of providerNames(models)) {
    if (provider && provider !== name) continue;
    const options = models
      .filter((m) => m.provider === name)
      .map((m) => h("option", { value: provider ? m.model : `${m.provider}:${m.model}` }, m.model));
    if (!options.length) continue;
    groups.push(provider ? options : h("optgroup", { label: name }, options));
  }
  select.replaceChildren(...groups.flat());
}

/** Wire one `.models-editor` block (textarea + picker + warning). */
export function attachModelsEditor(container) {
  const textarea = $("textarea", container);
  const select = $("select[data-model-picker]", container);
  const warning = $("[data-models-warning]", container);
  let names = new Set();

  const check = () => {
    try {
      const value = parseModels(textarea.value);
      const missing = unpriced(value, names);
      warning.textContent =
        names.size && missing.length
          ? `Not in the price book, so calls to it would be refused: ${missing.join(", ")}.`
          : "";
      textarea.removeAttribute("aria-invalid");
    } catch (error) {
      warning.textContent = error.message;
    }
  };

  const edit = (change) => {
    let value;
    try {
      value = parseModels(textarea.value) || {};
    } catch (error) {
      warning.textContent = error.message;
      textarea.focus();
      return;
    }
    const [provider, ...rest] = select.value.split(":");
    if (!provider) return;
    change(value, provider, rest.join(":"));
    textarea.value = modelsText(value);
    check();
  };

  $("[data-add-model]", container).addEventListener("click", () =>
    edit((value, provider, model) => {
      const list = value[provider] || [];
      if (!list.includes("*") && !list.includes(model)) list.push(model);
      value[provider] = list;
    }),
  );
  $("[data-add-any]", container).addEventListener("click", () =>
    edit((value, provider) => {
      value[provider] = ["*"];
    }),
  );
  textarea.addEventListener("input", check);

  return {
    /** Load the price book into the picker (after login). */
    async load() {
      const models = await pricedModels();
      names = knownNames(models);
      fillModelOptions(select, models);
      check();
    },
    check,
  };
}
