// The admin session: a short-lived token from admin-login, kept in sessionStorage (gone
// when the tab closes), never the password itself.

const TOKEN_KEY = "KAIXU_ADMIN_TOKEN";
const EXPIRES_KEY = "KAIXU_ADMIN_TOKEN_EXPIRES_AT";
const LEGACY_PASSWORD_KEY = "KAIXU_ADMIN_PASSWORD";
const API_BASE_KEY = "KAIXU_API_BASE";

const listeners = new Set();
let expiryTimer = null;

/** Older admin screens kept the password in localStorage; never leave it there. */
export function forgetLegacyPassword() {
  try {
    localStorage.removeItem(LEGACY_PASSWORD_KEY);
  } catch {
    /* storage disabled: nothing to forget */
  }
}

export function token() {
  const value = sessionStorage.getItem(TOKEN_KEY);
  if (!value) return null;
  if (isExpired()) return null;
  return value;
}

export function expiresAt() {
  const raw = sessionStorage.getItem(EXPIRES_KEY);
  return raw ? new Date(raw) : null;
}

export function isExpired() {
  const at = expiresAt();
  return at !== null && at.getTime() <= Date.now();
}

/** True when a token was stored but has run out (the login screen says so). */
export function hadExpiredToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY)) && isExpired();
}

export function start(newToken, expires) {
  sessionStorage.setItem(TOKEN_KEY, newToken);
  if (expires) sessionStorage.setItem(EXPIRES_KEY, expires);
  else sessionStorage.removeItem(EXPIRES_KEY);
  scheduleExpiry();
}

/** Forget the token and tell the screen why ("logout", "expired" or "unauthorized"). */
export function end(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  clearTimeout(expiryTimer);
  for (const listener of listeners) listener(reason);
}

export function onEnd(listener) {
  listeners.add(listener);
}

/** Log out by itself when the token expires, so no request is sent with a dead token. */
export function scheduleExpiry() {
  clearTimeout(expiryTimer);
  const at = expiresAt();
  if (!at) return;
  const wait = Math.max(0, at.getTime() - Date.now());
  // setTimeout overflows past ~24.8 days; admin tokens live hours.
  expiryTimer = setTimeout(() => end("expired"), Math.min(wait, 2 ** 31 - 1));
}

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
