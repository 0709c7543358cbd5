// @ts-check
// Entry point: the shell (nav, log out), the hash router and the view lifecycle.

import { setUnauthorizedHandler } from "./js/api.js";
import { clear, h, replace } from "./js/dom.js";
import { navigate, parseHash } from "./js/router.js";
import { clearSession, getSession, setFlash } from "./js/session.js";
import { renderBacktest } from "./js/views/backtest.js";
import { renderCompare } from "./js/views/compare.js";
import { renderHistory } from "./js/views/history.js";
import { renderAuth } from "./js/views/login.js";
import { renderNewBacktest } from "./js/views/new-backtest.js";
import { renderSweep } from "./js/views/sweep.js";
import { renderSweeps } from "./js/views/sweep-new.js";
import { renderSchedules } from "./js/views/schedules.js";
import { renderTemplates } from "./js/views/templates.js";
import { renderWebhooks } from "./js/views/webhooks.js";

/**
 * @typedef {{view: (el: HTMLElement, route: import("./js/router.js").Route) => unknown,
 *   title: string, public?: boolean, nav?: string}} RouteDef
 */

/** @type {Record<string, RouteDef>} */
const ROUTES = {
  login: { view: (el, r) => renderAuth(el, r, "login"), title: "Log in", public: true },
  register: { view: (el, r) => renderAuth(el, r, "register"), title: "Create account", public: true },
  new: { view: renderNewBacktest, title: "New backtest", nav: "new" },
  // A result page is none of the nav's pages (it is reached from several of them).
  backtest: { view: renderBacktest, title: "Backtest" },
  history: { view: renderHistory, title: "History", nav: "history" },
  compare: { view: renderCompare, title: "Compare", nav: "compare" },
  templates: { view: renderTemplates, title: "Templates", nav: "templates" },
  sweeps: { view: renderSweeps, title: "Parameter sweep", nav: "sweeps" },
  sweep: { view: renderSweep, title: "Sweep", nav: "sweeps" },
  schedules: { view: renderSchedules, title: "Schedules", nav: "schedules" },
  webhooks: { view: renderWebhooks, title: "Webhooks", nav: "webhooks" },
};

/** The shell's element with this id (index.html has them all). @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const main = byId("main");
/** @type {(() => void) | null} */
let cleanup = null;
let renderSeq = 0;
let firstRender = true;

/** @param {RouteDef} route */
function updateShell(route) {
  const session = getSession();
  const signedIn = Boolean(session);
  byId("nav").hidden = !signedIn;
  byId("user-box").hidden = !signedIn;
  byId("who").textContent = session?.username ? `Signed in as ${session.username}` : "";
  for (const link of /** @type {NodeListOf<HTMLAnchorElement>} */ (document.querySelectorAll("#nav a"))) {
    if (link.dataset.route === route?.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function render() {
  const seq = ++renderSeq;
  const route = parseHash();
  const def = ROUTES[route.name];
  if (!def) {
    navigate(getSession() ? "new" : "login", undefined, { replace: true });
    return;
  }
  if (!def.public && !getSession()) {
    navigate("login", { next: route.path.slice(2) }, { replace: true });
    return;
  }
  if (def.public && getSession()) {
    navigate("new", undefined, { replace: true });
    return;
  }
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.warn("view cleanup failed", err);
    }
    cleanup = null;
  }
  updateShell(def);
  document.title = `${def.title} · Backtest`;
  clear(main);
  const container = h("div", { class: "view", "data-view": route.name });
  main.append(container);
  if (!firstRender) main.focus({ preventScroll: true });
  firstRender = false;
  window.scrollTo(0, 0);
  try {
    const result = await def.view(container, route);
    if (seq !== renderSeq) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = typeof result === "function" ? /** @type {() => void} */ (result) : null;
  } catch (err) {
    if (seq !== renderSeq || err?.status === 401) return;
    console.warn("view failed", err);
    replace(
      container,
      h("div", { class: "alert alert-error", role: "alert" }, err?.message || "Something went wrong."),
    );
  }
}

setUnauthorizedHandler(() => {
  const route = parseHash();
  if (ROUTES[route.name]?.public) return;
  navigate("login", { next: route.path.slice(2) }, { replace: true });
});

byId("logout").addEventListener("click", () => {
  clearSession();
  setFlash("You have been logged out.", "info");
  navigate("login");
});

window.addEventListener("hashchange", render);
render();
