// The customer session: the short-lived token from customer-login, kept in sessionStorage
// under the portal's own names (never the admin's, never the key itself), so it is gone when
// the tab closes and a customer tab never carries an operator's token or the other way round.

const TOKEN_KEY = "KAIXU_PORTAL_TOKEN";
const EXPIRES_KEY = "KAIXU_PORTAL_TOKEN_EXPIRES_AT";
const WHO_KEY = "KAIXU_PORTAL_WHO";

const listeners = new Set();
let expiryTimer = null;

export function expiresAt() {
  const raw = sessionStorage.getItem(EXPIRES_KEY);
  return raw ? new Date(raw) : null;
}

function isExpired() {
  const at = expiresAt();
  return at !== null && at.getTime() <= Date.now();
}

export function token() {
  const value = sessionStorage.getItem(TOKEN_KEY);
  return value && !isExpired() ? value : null;
}

/** True when a token was stored but has run out (the sign-in form says so). */
export function hadExpiredToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY)) && isExpired();
}

/** Who signed in ({customer: {id, email}, key: {id, key_last4, role}}), for the top bar. */
export function who() {
  try {
    return JSON.parse(sessionStorage.getItem(WHO_KEY) || "null");
  } catch {
    return null;
  }
}

/** Keep the answer of customer-login: the token, its expiry, and who it names (no secret). */
export function start({ token: newToken, expires_at: expires, customer, key }) {
  sessionStorage.setItem(TOKEN_KEY, newToken);
  if (expires) sessionStorage.setItem(EXPIRES_KEY, expires);
  else sessionStorage.removeItem(EXPIRES_KEY);
  sessionStorage.setItem(WHO_KEY, JSON.stringify({ customer, key }));
  scheduleExpiry();
}

/**
 * Forget the session and tell the page why: "signout", "expired" or "unauthorized" (then
 * `message` is the server's own sentence, e.g. that the signing-in key was revoked).
 */
export function end(reason, message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  sessionStorage.removeItem(WHO_KEY);
  clearTimeout(expiryTimer);
  for (const listener of listeners) listener(reason, message);
}

export function onEnd(listener) {
  listeners.add(listener);
}

/** Sign out by itself when the token expires, so no request is sent with a dead token. */
export function scheduleExpiry() {
  clearTimeout(expiryTimer);
  const at = expiresAt();
  if (!at) return;
  const wait = Math.max(0, at.getTime() - Date.now());
  expiryTimer = setTimeout(() => end("expired"), Math.min(wait, 2 ** 31 - 1));
}
