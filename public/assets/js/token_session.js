// A signed-in session as both pages keep it: a short-lived token and its expiry in
// sessionStorage (gone when the tab closes), never the password or key it was exchanged for.
// Each page has its own storage names, so a customer tab never carries an operator's token
// or the other way round.

/**
 * @param {{token: string, expires: string, who?: string}} keys the sessionStorage names; `who`
 *   also keeps who signed in (no secret), for the top bar
 */
export function tokenSession(keys) {
  const listeners = new Set();
  let expiryTimer = null;

  function expiresAt() {
    const raw = sessionStorage.getItem(keys.expires);
    return raw ? new Date(raw) : null;
  }

  function isExpired() {
    const at = expiresAt();
    return at !== null && at.getTime() <= Date.now();
  }

  function token() {
    const value = sessionStorage.getItem(keys.token);
    return value && !isExpired() ? value : null;
  }

  /** True when a token was stored but has run out (the sign-in form says so). */
  function hadExpiredToken() {
    return Boolean(sessionStorage.getItem(keys.token)) && isExpired();
  }

  function who() {
    if (!keys.who) return null;
    try {
      return JSON.parse(sessionStorage.getItem(keys.who) || "null");
    } catch {
      return null;
    }
  }

  function start(newToken, expires, signedIn = null) {
    sessionStorage.setItem(keys.token, newToken);
    if (expires) sessionStorage.setItem(keys.expires, expires);
    else sessionStorage.removeItem(keys.expires);
    if (keys.who) sessionStorage.setItem(keys.who, JSON.stringify(signedIn));
    scheduleExpiry();
  }

  /**
   * Forget the token and tell the page why: "logout"/"signout", "expired" or "unauthorized"
   * (then `message` is the server's own sentence, e.g. that the signing-in key was revoked).
   */
  function end(reason, message = "") {
    sessionStorage.removeItem(keys.token);
    sessionStorage.removeItem(keys.expires);
    if (keys.who) sessionStorage.removeItem(keys.who);
    clearTimeout(expiryTimer);
    for (const listener of listeners) listener(reason, message);
  }

  function onEnd(listener) {
    listeners.add(listener);
  }

  /** End by itself when the token expires, so no request is sent with a dead token. */
  function scheduleExpiry() {
    clearTimeout(expiryTimer);
    const at = expiresAt();
    if (!at) return;
    const wait = Math.max(0, at.getTime() - Date.now());
    // setTimeout overflows past ~24.8 days; tokens live hours.
    expiryTimer = setTimeout(() => end("expired"), Math.min(wait, 2 ** 31 - 1));
  }

  return { token, expiresAt, hadExpiredToken, who, start, end, onEnd, scheduleExpiry };
}
