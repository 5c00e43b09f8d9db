// Integration: copyable examples for client developers, and a "try it" form that streams
// a reply through gateway-stream with a Kaixu key (fetch + ReadableStream + SSE frames).

import { FUNCTIONS_PATH, request, streamBase } from "../api.js";
import { fillModelOptions, providerNames } from "../allowlist.js";
import { $, $$, fieldValue, fmtCents, h, intValue } from "../dom.js";
import { apiBase } from "../http.js";
import { readEvents } from "../sse.js";
import { pricedModels } from "../state.js";
import { copyText, run, setStatus } from "../ui.js";

const form = $("#try-form");
const status = $(".status", form);
const reply = $("#try-reply");
const meta = $("#try-meta");
const usage = $("#try-usage");
const stopButton = $("[data-try-stop]", form);
let models = [];
let controller = null;

// What "try it" starts on: the first of these that this gateway can call (the demo model runs
// on the dev server with no provider key), else any chat model it can call.
const PREFERRED = ["demo:kaixu-demo-1", "openai:gpt-4o-mini"];

const callable = (m) => m.configured && m.mode !== "embedding";
const id = (m) => `${m.provider}:${m.model}`;

/** The model to start on among `choices`: a preferred one it can call, else any it can call. */
function startingModel(choices) {
  const ready = choices.filter(callable);
  return PREFERRED.map((name) => ready.find((m) => id(m) === name)).find(Boolean) || ready[0] || choices[0] || null;
}

function examples(base, streamOrigin, { provider, model }) {
  const body = JSON.stringify({ provider, model, messages: [{ role: "user", content: "Hello" }], max_tokens: 256, temperature: 0.7 });
  const curl = (fn, stream) =>
    [
      `curl ${stream ? "-N " : ""}-X POST "${stream ? streamOrigin : base}${FUNCTIONS_PATH}${fn}" \\`,
      '  -H "Authorization: Bearer $KAIXU_KEY" \\',
      '  -H "Content-Type: application/json" \\',
      '  -H "x-kaixu-app: my-app" -H "x-kaixu-build: 1.0.0" \\',
      `  -d '${body}'`,
    ].join("\n");
  const fetchExample = `// Stream a reply: fetch + ReadableStream, split into SSE frames.
const res = await fetch("${streamOrigin}${FUNCTIONS_PATH}gateway-stream", {
  method: "POST",
  headers: {
    "Authorization": \`Bearer \${KAIXU_KEY}\`,
    "Content-Type": "application/json",
    "x-kaixu-app": "my-app",
    "x-kaixu-build": "1.0.0",
  },
  body: JSON.stringify({
    provider: ${JSON.stringify(provider)},
    model: ${JSON.stringify(model)},
    messages: [{ role: "user", content: "Hello" }],
    max_tokens: 256,
    temperature: 0.7,
  }),
});
if (!res.ok) throw new Error((await res.json()).error); // {error, code, request_id}

const reader = res.body.getReader();
const decoder = new TextDecoder();
let buffer = "";
let text = "";
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  buffer += decoder.decode(value, { stream: true });
  let end;
  while ((end = buffer.indexOf("\\n\\n")) !== -1) {
    const frame = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    const event = /^event: (.*)$/m.exec(frame)?.[1];
    const data = JSON.parse(/^data: (.*)$/m.exec(frame)?.[1] ?? "null");
    if (event === "meta") console.log("month so far", data.month);
    if (event === "delta") text += data.text; // show it as it arrives
    if (event === "done") console.log(text, data.usage, data.month);
    if (event === "error") console.error(data.code, data.error); // then done when stopped at the cap
  }
}`;
  return { curl: curl("gateway-stream", true), curlChat: curl("gateway-chat", false), fetch: fetchExample };
}

async function renderExamples() {
  const base = apiBase() || window.location.origin;
  const ex = examples(base, await streamBase(), startingModel(models) || { provider: "openai", model: "gpt-4o-mini" });
  $("#example-curl").textContent = ex.curl;
  $("#example-curl-chat").textContent = ex.curlChat;
  $("#example-fetch").textContent = ex.fetch;
}

function tryBody() {
  const temperature = fieldValue(form, "temperature");
  return {
    provider: fieldValue(form, "provider"),
    model: fieldValue(form, "model"),
    messages: [{ role: "user", content: fieldValue(form, "message") }],
    max_tokens: intValue(form, "max_tokens") ?? undefined,
    temperature: temperature === "" ? undefined : Number(temperature),
  };
}

function tryHeaders() {
  const headers = { authorization: `Bearer ${fieldValue(form, "key")}`, "x-kaixu-app": "kaixu-admin-try", "x-kaixu-build": "admin-spa-1" };
  const install = fieldValue(form, "install_id");
  if (install) headers["x-kaixu-install-id"] = install;
  return headers;
}

function monthLine(month) {
  if (!month) return "";
  const hasKeyCap = month.key_cap_cents !== null && month.key_cap_cents !== undefined;
  const keyPart = hasKeyCap ? `; this key ${fmtCents(month.key_spent_cents)} of ${fmtCents(month.key_cap_cents)}` : "";
  return `Month ${month.month}: ${fmtCents(month.spent_cents)} of ${fmtCents(month.cap_cents)} spent${keyPart}.`;
}

function showUsage(data) {
  const u = data.usage || {};
  usage.textContent = `Usage: ${u.input_tokens} input + ${u.output_tokens} output tokens, ${u.cost_cents}¢. ${monthLine(data.month)}`;
}

function startTry() {
  reply.textContent = "";
  meta.textContent = "";
  usage.textContent = "";
  controller = new AbortController();
  stopButton.disabled = false;
}

function endTry() {
  controller = null;
  stopButton.disabled = true;
}

async function streamReply(event) {
  event.preventDefault();
  startTry();
  await run({ button: $("button[type=submit]", form), status, form, busy: "Streaming…" }, async () => {
    const response = await request("gateway-stream", {
      method: "POST",
      auth: false,
      body: tryBody(),
      headers: tryHeaders(),
      signal: controller.signal,
      stream: true,
    });
    let finished = false;
    let failed = null; // an error frame: the end, or (stopped at the cap, a revoked key) before done
    for await (const frame of readEvents(response)) {
      if (frame.event === "meta") meta.textContent = `${frame.data.provider} · ${frame.data.model}. ${monthLine(frame.data.month)}`;
      else if (frame.event === "delta") reply.append(frame.data.text);
      else if (frame.event === "done") {
        showUsage(frame.data);
        finished = true;
      } else if (frame.event === "error") failed = frame.data.error;
    }
    if (failed) setStatus(status, finished ? `Stopped: ${failed}` : `The stream failed: ${failed}`, "error");
    else setStatus(status, finished ? "Done." : "The stream ended without a done event.", finished ? "ok" : "error");
  });
  endTry();
}

async function sendChat(event) {
  startTry();
  const result = await run({ button: event.currentTarget, status, form, busy: "Waiting for the reply…", success: "Done." }, async () => {
    const response = await request("gateway-chat", {
      method: "POST",
      auth: false,
      body: tryBody(),
      headers: tryHeaders(),
      signal: controller.signal,
    });
    return response.json();
  });
  endTry();
  if (!result) return;
  meta.textContent = `${result.provider} · ${result.model}`;
  reply.textContent = result.output_text || "";
  showUsage(result);
}

function fillProviders() {
  const select = $("select[name=provider]", form);
  const names = providerNames(models);
  if (names.length) select.replaceChildren(...names.map((name) => h("option", { value: name }, name)));
  const start = startingModel(models);
  if (start) select.value = start.provider;
}

/** The provider's models, the ones this gateway cannot call marked so; keep the choice made. */
function syncModels() {
  const provider = fieldValue(form, "provider");
  const current = fieldValue(form, "model");
  const select = $("select[name=model]", form);
  fillModelOptions(select, models, { provider });
  for (const option of select.options) {
    const model = models.find((m) => m.provider === provider && m.model === option.value);
    if (model && !model.configured) option.textContent = `${model.model} (no provider key here)`;
  }
  const start = startingModel(models.filter((m) => m.provider === provider));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
  else if (start) select.value = start.model;
}

export default {
  name: "integration",
  init() {
    renderExamples();
    for (const button of $$("button[data-copy]")) {
      button.addEventListener("click", async () => {
        const node = document.getElementById(button.dataset.copy);
        const copied = await copyText(node.textContent, node);
        setStatus($("#copy-status"), copied ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C) to copy.", "ok");
      });
    }
    form.addEventListener("submit", streamReply);
    $("[data-try-chat]", form).addEventListener("click", sendChat);
    stopButton.addEventListener("click", () => controller && controller.abort());
    $("select[name=provider]", form).addEventListener("change", syncModels);
  },
  async show() {
    if (!models.length) {
      try {
        models = await pricedModels();
        fillProviders();
        syncModels();
      } catch (error) {
        setStatus(status, `Could not load the model list: ${error.message}`, "error");
      }
    }
    await renderExamples(); // with the model "try it" starts on, so a copied example works here
  },
  reset() {
    if (controller) controller.abort();
    form.elements.namedItem("key").value = "";
    reply.textContent = "";
    meta.textContent = "";
    usage.textContent = "";
  },
};
