// Errors of the page itself go to the monitor through client-error-report, tagged with the
// page's own x-kaixu-app ("kaixu-admin", "kaixu-portal"), so a broken screen shows up where
// operators look, under its own name. Each page names itself in installErrorHooks.

import { functionUrl } from "./http.js";

const MAX_REPORTS_PER_MINUTE = 5;
let tags = {}; // x-kaixu-app and x-kaixu-build of this page
let sentAt = [];

function text(value, limit) {
  return value === undefined || value === null ? null : String(value).slice(0, limit);
}

/** Report one error (never throws, never reports its own failure, at most 5 a minute). */
export function reportError(error, context = {}) {
  const now = Date.now();
  sentAt = sentAt.filter((t) => now - t < 60_000);
  if (sentAt.length >= MAX_REPORTS_PER_MINUTE) return;
  sentAt.push(now);
  const payload = {
    client: {
      url: window.location.origin + window.location.pathname, // never the query (a Stripe session id)
      route: window.location.hash || "#",
      user_agent: navigator.userAgent,
      language: navigator.language,
      viewport: `${window.innerWidth}x${window.innerHeight}`,
      source: text(context.source, 500),
      lineno: context.lineno ?? null,
      colno: context.colno ?? null,
    },
    error: {
      name: text(error && error.name, 200) || "Error",
      message: text(error && error.message ? error.message : error, 4000) || "Unknown error",
      stack: text(error && error.stack, 12000),
    },
    context: { where: context.where || "window" },
  };
  fetch(functionUrl("client-error-report"), {
    method: "POST",
    keepalive: true,
    headers: { "content-type": "application/json", ...tags },
    body: JSON.stringify(payload),
  }).catch(() => {
    /* the reporter must never cause another report */
  });
}

/** Name this page (`app`, `build`) in every report, and report its uncaught errors. */
export function installErrorHooks({ app, build }) {
  tags = { "x-kaixu-app": app, "x-kaixu-build": build };
  window.onerror = (message, source, lineno, colno, error) => {
    reportError(error || message, { where: "window.onerror", source, lineno, colno });
    return false; // keep the browser's own console message
  };
  window.onunhandledrejection = (event) => {
    reportError(event.reason, { where: "unhandledrejection" });
  };
}
