// The customer session: the token from customer-login under the portal's own storage names
// (never the admin's, never the key itself), with who signed in for the top bar. How a
// session is kept is ../token_session.js, shared with the admin screen.

import { tokenSession } from "../token_session.js";

export const { token, expiresAt, hadExpiredToken, who, start, end, onEnd, scheduleExpiry } = tokenSession({
  token: "KAIXU_PORTAL_TOKEN",
  expires: "KAIXU_PORTAL_TOKEN_EXPIRES_AT",
  who: "KAIXU_PORTAL_WHO",
});
