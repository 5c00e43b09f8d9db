// How both pages talk to the API: where it is, how a failure becomes an ApiError with the
// envelope's own human sentence (shown next to the action that failed), and a client bound
// to one page's session (api.js for the admin screen, portal/api.js for the customer portal).

export const FUNCTIONS_PATH = "/.netlify/functions/";
const API_BASE_KEY = "KAIXU_API_BASE";

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", field = null, requestId = null, body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.requestId = requestId;
    this.body = body;
  }
}

/** The API base chosen on the admin login screen (kept by this browser), "" for this site. */
export function apiBase() {
  let base = "";
  try {
    base = localStorage.getItem(API_BASE_KEY) || "";
  } catch {
    base = "";
  }
  return base.replace(/\/+$/, "");
}

export function setApiBase(value) {
  const clean = (value || "").trim().replace(/\/+$/, "");
  if (clean && !/^https?:\/\/[^\s/]+/i.test(clean)) {
    throw new Error("The API base must start with https:// (or http:// for a local server).");
  }
  if (clean) localStorage.setItem(API_BASE_KEY, clean);
  else localStorage.removeItem(API_BASE_KEY);
  return clean;
}

// Where this deployment serves streams, from config.json (written by the Netlify build): the
// monitor's live tail, CSV exports and the "try it" stream go there, because Netlify's proxy
// cuts a request at 26 s. Empty, or no file, means this site's own origin.
const deployment = fetch("config.json", { cache: "no-store" })
  .then((response) => (response.ok ? response.json() : {}))
  .catch(() => ({}));

/** The origin streams are opened on: the API base chosen on the login screen, else the deployment's. */
export async function streamBase() {
  const configured = (await deployment).stream_origin || "";
  return apiBase() || configured.replace(/\/+$/, "") || window.location.origin;
}

/** The absolute URL of a function, with the non-empty query parameters. */
export function functionUrl(name, query, base = apiBase() || window.location.origin) {
  const url = new URL(`${base}${FUNCTIONS_PATH}${name}`);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  return url.toString();
}

/** A fresh Idempotency-Key: one per click, so a retried request cannot act twice. */
export function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The ApiError for a non-2xx response, from its JSON envelope when it has one. */
async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const requestId = (body && body.request_id) || response.headers.get("x-kaixu-request-id");
  const message =
    body && typeof body.error === "string" && body.error
      ? body.error
      : `The server answered ${response.status} ${response.statusText || ""}`.trim() + ".";
  return new ApiError(message, {
    status: response.status,
    code: (body && body.code) || "",
    field: (body && body.field) || null,
    requestId,
    body,
  });
}

function networkError(error) {
  if (error && error.name === "AbortError") return error;
  return new ApiError("Could not reach the server; check the connection and try again.", { code: "NETWORK" });
}

function filenameFrom(response, fallback) {
  const disposition = response.headers.get("content-disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : fallback;
}

/** Save a Blob under `filename` through a temporary link (the only way to name a download). */
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

/** The whole body of a response, reported to onProgress(bytesSoFar) as it arrives. */
async function readAll(response, onProgress) {
  if (!response.body || !response.body.getReader) return [new Uint8Array(await response.arrayBuffer())];
  const chunks = [];
  let received = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    if (onProgress) onProgress(received);
  }
  return chunks;
}

/**
 * The calls of one page, carrying `session`'s Bearer token ({token, hadExpiredToken, end}).
 * No token, or a 401 answer, ends that session: `ended` is the sentence when there was no
 * token to send; after a 401 the server's own sentence goes to the session's listeners.
 */
export function createClient({ session, ended }) {
  /**
   * One request: the Response when it is a success, else ApiError. `auth: false` for calls that
   * carry no session (the sign-in itself, whose 401 must not "end" anything, or a Kaixu key in
   * `headers`). `stream` sends it to the stream origin (long downloads outlive the site's proxy).
   */
  async function request(name, { method = "GET", query, body, headers = {}, signal, auth = true, stream = false } = {}) {
    const finalHeaders = { ...headers };
    if (auth) {
      const current = session.token();
      if (!current) {
        session.end(session.hadExpiredToken() ? "expired" : "unauthorized", ended);
        throw new ApiError(ended, { status: 401, code: "UNAUTHORIZED" });
      }
      finalHeaders.authorization = `Bearer ${current}`;
    }
    let payload;
    if (body !== undefined) {
      finalHeaders["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      const url = functionUrl(name, query, stream ? await streamBase() : undefined);
      response = await fetch(url, { method, headers: finalHeaders, body: payload, signal });
    } catch (error) {
      throw networkError(error);
    }
    if (response.ok) return response;
    const error = await errorFrom(response);
    if (auth && response.status === 401) session.end("unauthorized", error.message);
    throw error;
  }

  /** A JSON call: the parsed body of a successful response (null for 204 or an empty body). */
  async function api(name, options) {
    const response = await request(name, options);
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  /**
   * Fetch a file with the session's Bearer header and save it (a plain link could not carry
   * the header). onProgress(bytesSoFar). Returns {filename, size}.
   */
  async function download(name, query, { onProgress, fallbackName = "download.csv" } = {}) {
    const response = await request(name, { query, stream: true });
    const chunks = await readAll(response, onProgress);
    const type = response.headers.get("content-type") || "application/octet-stream";
    const blob = new Blob(chunks, { type });
    const filename = filenameFrom(response, fallbackName);
    saveBlob(blob, filename);
    return { filename, size: blob.size };
  }

  return { request, api, download };
}
