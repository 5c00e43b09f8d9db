// The customer portal's calls to the customer-* functions: each carries the customer
// session's Bearer token, and a 401 from any of them ends the session (back to the sign-in
// form with the server's sentence). How a call is made and fails is ../http.js, shared with
// the admin screen.

import { createClient } from "../http.js";
import * as session from "./session.js";

export const { request, api, download } = createClient({ session, ended: "Your session has ended; sign in again." });

/** POST customer-login {key} → start the session; the key itself is not kept anywhere. */
export async function signIn(key) {
  const body = await api("customer-login", { method: "POST", body: { key }, auth: false });
  session.start(body.token, body.expires_at, { customer: body.customer, key: body.key });
  return body;
}
