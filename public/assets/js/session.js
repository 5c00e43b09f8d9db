// The admin session: the token from admin-login under the admin's own storage names (how a
// session is kept is token_session.js, shared with the customer portal).

import { tokenSession } from "./token_session.js";

const LEGACY_PASSWORD_KEY = "KAIXU_ADMIN_PASSWORD";

export const { token, expiresAt, hadExpiredToken, start, end, onEnd, scheduleExpiry } = tokenSession({
  token: "KAIXU_ADMIN_TOKEN",
  expires: "KAIXU_ADMIN_TOKEN_EXPIRES_AT",
});

/** Older admin screens kept the password in localStorage; never leave it there. */
export function forgetLegacyPassword() {
  try {
    localStorage.removeItem(LEGACY_PASSWORD_KEY);
  } catch {
    /* storage disabled: nothing to forget */
  }
}
