// The admin screen's calls: each carries the admin session's Bearer token, and any 401 ends
// the session (back to the login screen). How a call is made and fails is http.js, shared
// with the customer portal.

import { createClient } from "./http.js";
import * as session from "./session.js";

export { FUNCTIONS_PATH, idempotencyKey, streamBase } from "./http.js";

export const { request, api, download } = createClient({
  session,
  ended: "Your admin session has ended; log in again.",
});

/** POST admin-login {password} → start the session. */
export async function login(password) {
  const body = await api("admin-login", { method: "POST", body: { password }, auth: false });
  session.start(body.token, body.expires_at);
  return body;
}
