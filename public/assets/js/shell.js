// The frame both pages share: the sign-in view or the app, one panel of the app shown at a
// time (named by the URL's hash), the phone menu, and the session line in the top bar.

import { $, $$, fmtTime } from "./dom.js";
import { run, setStatus } from "./ui.js";

/**
 * @param {{panels: Array<{name: string, init(): void, show(): any, reset(): void}>, first: string,
 *          allowed?: (name: string) => boolean}} options `allowed` may refuse a panel the hash
 *          names (then the current one stays), e.g. one the account's plan does not offer
 */
export function createShell({ panels, first, allowed = () => true }) {
  const byName = new Map(panels.map((panel) => [panel.name, panel]));
  const loginView = $("#login-view");
  const appView = $("#app-view");
  const loginForm = $("#login-form");
  const loginStatus = $(".status", loginForm);
  const nav = $("#sidenav");
  const navToggle = $(".nav-toggle");
  let current = first;

  /** The panel named by the hash; other hashes (e.g. the skip link's #main) keep the current one. */
  function currentName() {
    const name = window.location.hash.replace(/^#/, "");
    if (byName.has(name) && allowed(name)) current = name;
    return current;
  }

  function showPanel() {
    if (appView.hidden) return;
    const name = currentName();
    for (const section of $$("section.panel")) section.hidden = section.dataset.panel !== name;
    for (const link of $$("a", nav)) {
      if (link.getAttribute("href") === `#${name}`) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    nav.classList.remove("open");
    navToggle.setAttribute("aria-expanded", "false");
    const panel = byName.get(name);
    Promise.resolve(panel.show()).catch((error) => setStatus($(".status", $(`#panel-${name}`)), error.message, "error"));
  }

  return {
    loginStatus,
    showPanel,
    current: () => current,
    /** Show `name` from now on, whatever the hash (the hashed one is no longer offered). */
    fallBack(name) {
      current = name;
    },

    /** Every panel's init, then the menu and the hash wired up. */
    init() {
      for (const panel of panels) panel.init();
      navToggle.addEventListener("click", () => {
        const open = nav.classList.toggle("open");
        navToggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
      window.addEventListener("hashchange", showPanel);
    },

    /** Run the sign-in `action` with the form's progress and error; its result, or undefined. */
    async signIn(action) {
      const result = await run(
        { button: $("button[type=submit]", loginForm), status: loginStatus, form: loginForm, busy: "Checking…" },
        action,
      );
      if (result) setStatus(loginStatus, "");
      return result;
    },

    /** From the sign-in view to the app, with the session's end time in the top bar. */
    enter(session) {
      loginView.hidden = true;
      appView.hidden = false;
      const at = session.expiresAt();
      $("#session-expiry").textContent = at ? `Session until ${fmtTime(at.toISOString())}` : "";
      session.scheduleExpiry();
    },

    /** Back to the sign-in view, every panel emptied (nothing of the account stays on screen). */
    leave() {
      for (const panel of panels) panel.reset();
      appView.hidden = true;
      loginView.hidden = false;
    },
  };
}

/**
 * For a panel whose content stays put once loaded: `show()` runs `load` the first time only,
 * until `forget()` (on sign-out, so the next account loads its own).
 */
export function loadOnce(load) {
  let loaded = false;
  return {
    async show() {
      if (loaded) return;
      loaded = true;
      await load();
    },
    forget() {
      loaded = false;
    },
  };
}
