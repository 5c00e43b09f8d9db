// Talking to the customer-* functions: every call carries the customer session's Bearer
// token; a 401 from any of them ends the session (back to the sign-in form with the server's
// sentence). Failures are the admin screen's ApiError, so ../ui.js shows them the same way.

import { ApiError, errorFrom, functionUrl, streamBase } from "../api.js";
import * as session from "./session.js";

const SESSION_ENDED = "Your session has ended; sign in again.";

function networkError(error) {
  if (error && error.name === "AbortError") return error;
  return new ApiError("Could not reach the server; check the connection and try again.", { code: "NETWORK" });
}

/**
 * One request; the Response when it is a success, else ApiError. `auth: false` only for
 * customer-login (a wrong key there is a 401 that must not "end" anything). `stream` sends
 * it to the deployment's stream origin (long CSV downloads outlive the site's proxy).
 */
export async function request(name, { method = "GET", query, body, signal, auth = true, stream = false } = {}) {
  const headers = {};
  if (auth) {
    const current = session.token();
    if (!current) {
      session.end(session.hadExpiredToken() ? "expired" : "unauthorized", SESSION_ENDED);
      throw new ApiError(SESSION_ENDED, { status: 401, code: "UNAUTHORIZED" });
    }
    headers.authorization = `Bearer ${current}`;
  }
  let payload;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    const url = stream ? functionUrl(name, query, await streamBase()) : functionUrl(name, query);
    response = await fetch(url, { method, headers, body: payload, signal });
  } catch (error) {
    throw networkError(error);
  }
  if (response.ok) return response;
  const error = await errorFrom(response);
  if (auth && response.status === 401) session.end("unauthorized", error.message);
  throw error;
}

/** A JSON call: the parsed body of a successful response (null for 204). */
export async function api(name, options) {
  const response = await request(name, options);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** POST customer-login {key} → start the session; the key itself is not kept anywhere. */
export async function signIn(key) {
  const body = await api("customer-login", { method: "POST", body: { key }, auth: false });
  session.start(body);
  return body;
}

function filenameFrom(response, fallback) {
  const disposition = response.headers.get("content-disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : fallback;
}

/** Save a Blob under `filename` through a temporary link (the only way to name a download). */
export function saveBlob(blob, filename) {
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

/**
 * Fetch a file with the session's Bearer header and save it (a plain link could not carry
 * the header). Returns {filename, size}.
 */
export async function download(name, query, fallbackName) {
  const response = await request(name, { query, stream: true });
  const blob = await response.blob();
  const filename = filenameFrom(response, fallbackName);
  saveBlob(blob, filename);
  return { filename, size: blob.size };
}
