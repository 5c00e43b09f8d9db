// Talking to the API: admin calls carry the session's Bearer token; any 401 ends the
// session (back to the login screen); failures become ApiError with the envelope's own
// human sentence, which the screen shows next to the action that failed.

import * as session from "./session.js";

export const FUNCTIONS_PATH = "/.netlify/functions/";

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

// Where this deployment serves streams, from config.json (written by the Netlify build): the
// monitor's live tail, CSV exports and the "try it" stream go there, because Netlify's proxy
// cuts a request at 26 s. Empty, or no file, means this site's own origin.
const deployment = fetch("config.json", { cache: "no-store" })
  .then((response) => (response.ok ? response.json() : {}))
  .catch(() => ({}));

/** The origin streams are opened on: the API base chosen on the login screen, else the deployment's. */
export async function streamBase() {
  const configured = (await deployment).stream_origin || "";
  return session.apiBase() || configured.replace(/\/+$/, "") || window.location.origin;
}

/** The absolute URL of a function, with the non-empty query parameters. */
export function functionUrl(name, query, base = session.apiBase() || window.location.origin) {
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
export async function errorFrom(response) {
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

/**
 * One request. Admin calls (the default) send the Bearer token; a 401 ends the session.
 * ``stream`` sends it to the stream origin. Returns the Response when it is a success;
 * throws ApiError otherwise.
 */
export async function request(
  name,
  { method = "GET", query, body, headers = {}, signal, admin = true, stream = false } = {},
) {
  const finalHeaders = { ...headers };
  if (admin) {
    const current = session.token();
    if (!current) {
      session.end(session.hadExpiredToken() ? "expired" : "unauthorized");
      throw new ApiError("Your admin session has ended; log in again.", { status: 401, code: "UNAUTHORIZED" });
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
  if (admin && response.status === 401) session.end("unauthorized");
  throw error;
}

/** A JSON call: the parsed body of a successful response. */
export async function api(name, options) {
  const response = await request(name, options);
  if (response.status === 204) return null;
  return response.json();
}

/** POST admin-login {password} → start the session. */
export async function login(password) {
  const body = await api("admin-login", { method: "POST", body: { password }, admin: false });
  session.start(body.token, body.expires_at);
  return body;
}

function filenameFrom(response, fallback) {
  const disposition = response.headers.get("content-disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : fallback;
}

/**
 * Fetch a file with the admin credential and save it through a Blob + object URL
 * (a plain link could not carry the Authorization header). onProgress(bytesSoFar).
 */
export async function download(name, query, { onProgress, fallbackName = "download.csv" } = {}) {
  const response = await request(name, { query, stream: true });
  const chunks = [];
  let received = 0;
  if (response.body && response.body.getReader) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.byteLength;
      if (onProgress) onProgress(received);
    }
  } else {
    const buffer = await response.arrayBuffer();
    chunks.push(new Uint8Array(buffer));
    received = buffer.byteLength;
  }
  const type = response.headers.get("content-type") || "application/octet-stream";
  const blob = new Blob(chunks, { type });
  const filename = filenameFrom(response, fallbackName);
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
  return { filename, size: received };
}
