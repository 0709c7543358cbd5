// @ts-check
// One backtest (#/backtest/<id>): live progress while it runs, results once completed.

import { api, progressSocketUrl } from "../api.js";
import { deleteBacktestButton } from "../components/delete-button.js";
import { pageHead } from "../components/page-head.js";
import { statusBadge } from "../components/status-badge.js";
import { h, replace } from "../dom.js";
import { date, dateTime, duration, int, pct } from "../format.js";
import { navigate } from "../router.js";
import { renderResults } from "./results.js";

export { statusBadge };

/**
 * @typedef {{status?: string, progress?: number, current_date?: string | null,
 *   eta_seconds?: number | null, trades_executed?: number, fills_executed?: number, message?: string,
 *   queue_position?: number | null}} ProgressMessage
 * @typedef {ProgressMessage & {task_id: string, name?: string | null, created_at?: string,
 *   completed_at?: string | null, error?: string | null, config?: Record<string, any>,
 *   metrics?: Record<string, number | null>}} BacktestStatus
 */

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
/** @param {string | undefined} status */
const isTerminal = (status) => status !== undefined && TERMINAL.has(status);
const RECONNECT_MAX_MS = 10000;
const POLL_MS = 4000;

/**
 * Pure: the "Time left" text. Queued: the place in the queue and the estimated wait
 * before it starts (the API's queue_position / eta_seconds); pending: about to start.
 * @param {ProgressMessage} msg
 */
export function etaText(msg) {
  if (msg.status === "queued") {
    const place = msg.queue_position ? `#${msg.queue_position} in queue` : "Queued";
    return msg.eta_seconds ? `${place}, starts in ~${duration(msg.eta_seconds)}` : place;
  }
  if (msg.status === "pending") return "Starting";
  return duration(msg.eta_seconds);
}

/**
 * Pure: the percent the bar shows for `msg` after showing `shown`. Completed is 100;
 * otherwise the bar never goes down: a cancelled or failed frame (or the 0 % of a
 * job that vanished) keeps the progress reached, and a stale frame (a poll behind
 * the live feed) does not pull it back.
 * @param {number} shown @param {ProgressMessage} msg
 */
export function shownProgress(shown, msg) {
  if (msg.status === "completed") return 100;
  return Math.max(shown, Math.max(0, Math.min(100, Number(msg.progress) || 0)));
}

/** Pure: the wait before reconnect attempt `attempts` (1, 2, ...): 0.5 s doubling, ≤ 10 s. */
export function reconnectDelay(/** @type {number} */ attempts) {
  return Math.min(RECONNECT_MAX_MS, 500 * 2 ** Math.min(attempts - 1, 5));
}

/**
 * Progress over the WebSocket, with polling and back-off reconnects while it is down.
 * Calls `onUpdate` for every message, `onTerminal` once a terminal status is seen.
 */
class ProgressFeed {
  /**
   * @param {string} id
   * @param {{onUpdate: (msg: ProgressMessage) => void, onTerminal: (msg: ProgressMessage) => void,
   *   onConn: (state: string, text: string) => void}} handlers
   */
  constructor(id, handlers) {
    this.id = id;
    this.handlers = handlers;
    this.attempts = 0;
    this.stopped = false;
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.reconnectTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pollTimer = undefined;
  }

  connect() {
    if (this.stopped) return;
    this.handlers.onConn(this.attempts ? "reconnecting" : "connecting", this.attempts ? "Reconnecting…" : "Connecting…");
    const ws = new WebSocket(progressSocketUrl(this.id));
    this.socket = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.handlers.onConn("live", "Live");
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      this.deliver(msg);
    };
    ws.onerror = () => {};
    ws.onclose = (event) => this.closed(event.code);
  }

  /** @param {ProgressMessage} msg */
  deliver(msg) {
    this.handlers.onUpdate(msg);
    if (isTerminal(msg.status)) this.handlers.onTerminal(msg);
  }

  /** @param {number} code */
  closed(code) {
    this.socket = null;
    if (this.stopped) return;
    if (code === 4001) {
      this.poll(); // the API answers 401 too, which sends the user to the login page
      return;
    }
    if (code === 4004) {
      this.handlers.onTerminal({ status: "cancelled", progress: 0 });
      return;
    }
    // Dropped (or closed after a terminal state we missed): check, then reconnect.
    this.attempts += 1;
    this.handlers.onConn("reconnecting", "Connection lost. Reconnecting…");
    this.poll();
    if (!this.pollTimer) this.pollTimer = setInterval(() => this.poll(), POLL_MS);
    this.reconnectTimer = setTimeout(() => this.connect(), reconnectDelay(this.attempts));
  }

  async poll() {
    try {
      const current = (await api.status(this.id)).data;
      if (!this.stopped) this.deliver(current);
    } catch (err) {
      if (err.status === 404 && !this.stopped) this.handlers.onTerminal({ status: "cancelled", progress: 0 });
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pollTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.onerror = null;
      if (socket.readyState <= 1) socket.close(1000);
    }
  }
}

/** One figure of the progress panel; returns [box, value element]. */
function stat(/** @type {string} */ label, /** @type {string} */ key) {
  const value = h("div", { class: "stat-value", dataset: { stat: key } }, "—");
  return { box: h("div", {}, h("div", { class: "stat-label" }, label), value), value };
}

/** The bar, the four figures and the status badge; `update(msg)` repaints them. */
function progressBar(/** @type {string | undefined} */ initialStatus) {
  const fill = h("div", { class: "progress-fill" });
  const bar = h("div", { class: "progress", role: "progressbar", "aria-label": "Backtest progress",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", id: "progress" }, fill);
  const stats = { percent: stat("Progress", "percent"), date: stat("Simulated date", "current_date"),
    eta: stat("Time left", "eta"), trades: stat("Fills so far", "trades") };
  const badge = h("span", {}, statusBadge(initialStatus));
  const message = h("p", { class: "muted small", id: "progress-message" });
  let shown = 0;
  /** @param {ProgressMessage} msg */
  const update = (msg) => {
    const value = (shown = shownProgress(shown, msg));
    fill.style.width = `${value}%`;
    bar.setAttribute("aria-valuenow", String(Math.round(value)));
    bar.setAttribute("aria-valuetext", `${Math.round(value)} percent`);
    stats.percent.value.textContent = pct(value / 100, { digits: 0 });
    stats.date.value.textContent = date(msg.current_date);
    stats.eta.value.textContent = etaText(msg);
    stats.trades.value.textContent = int(msg.fills_executed ?? msg.trades_executed ?? 0);
    if (msg.message) message.textContent = msg.message;
    if (msg.status) replace(badge, statusBadge(msg.status));
  };
  const statsRow = h("div", { class: "progress-stats" }, Object.values(stats).map((s) => s.box));
  return { bar, statsRow, badge, message, update, percent: () => shown };
}

/**
 * "Cancel backtest": DELETE while running; a terminal answer finishes the page.
 * @param {string} id
 * @param {{message: HTMLElement, percent: () => number, onTerminal: (msg: ProgressMessage) => void, recheck: () => void}} ctx
 */
function cancelButton(id, { message, percent, onTerminal, recheck }) {
  const button = h("button", { type: "button", class: "btn btn-danger", id: "cancel-backtest" }, "Cancel backtest");
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Cancelling…";
    try {
      const { data } = await api.remove(id);
      message.textContent = data?.message || "Cancelling…";
      if (isTerminal(data?.status)) onTerminal({ status: data.status, progress: percent() });
    } catch (err) {
      if (err.status === 401) return;
      if (err.status === 409) {
        recheck();
        return;
      }
      message.textContent = err.message;
      button.disabled = false;
      button.textContent = "Cancel backtest";
    }
  });
  return button;
}

/**
 * The running-state card; `update`, `setConn` repaint it.
 * @param {BacktestStatus} status
 * @param {{onTerminal: (msg: ProgressMessage) => void, recheck: () => void}} ctx
 */
function progressCard(status, { onTerminal, recheck }) {
  const progress = progressBar(status.status);
  const connState = h("span", { class: "conn-state", id: "conn-state", "aria-live": "polite" }, "Connecting…");
  const cancel = cancelButton(status.task_id, { message: progress.message, percent: progress.percent, onTerminal, recheck });
  const element = h("section", { class: "card", "aria-labelledby": "progress-title" },
    h("div", { class: "card-head" },
      h("h2", { id: "progress-title" }, "Running the simulation ", progress.badge), connState),
    progress.bar,
    progress.statsRow,
    progress.message,
    h("div", { class: "form-actions" }, cancel, h("a", { class: "btn", href: "#/history" }, "Back to history")));
  /** @param {string} state @param {string} text */
  const setConn = (state, text) => {
    connState.dataset.state = state;
    connState.textContent = text;
  };
  return { element, update: progress.update, setConn, percent: progress.percent };
}

/** A failed or cancelled run: what happened, and what to do next. @param {BacktestStatus} full */
function terminalCard(full) {
  const failed = full.status === "failed";
  const id = full.task_id;
  const reached = `Progress reached ${pct((full.progress || 0) / 100, { digits: 0 })}${full.current_date ? ` (simulated date ${full.current_date})` : ""}.`;
  return h("section", { class: "card", id: "terminal-state" },
    h("div", { class: "card-head" }, h("h2", {}, failed ? "The backtest failed " : "The backtest was cancelled ", statusBadge(full.status))),
    h("div", { class: `alert ${failed ? "alert-error" : "alert-warn"}`, role: "alert" },
      failed ? full.error || "The engine reported an error." : "It was stopped before it finished; no results were kept."),
    h("p", { class: "muted small" }, reached),
    h("div", { class: "form-actions" },
      h("a", { class: "btn btn-primary", href: `#/new?from=${encodeURIComponent(id)}` }, "Start again from these settings"),
      deleteBacktestButton(id, { onError: (message) => window.alert?.(message) }),
      h("a", { class: "btn", href: "#/history" }, "Back to history")));
}

function notFound() {
  return h("section", { class: "card" },
    h("h1", {}, "Backtest not found"),
    h("p", { class: "muted", style: { marginTop: "8px" } }, "It may have been deleted, or it belongs to another account."),
    h("div", { class: "form-actions" }, h("a", { class: "btn btn-primary", href: "#/history" }, "Go to history")));
}

/** The status, or null when there is no such backtest (404/400). @param {string} id */
async function fetchStatus(id) {
  try {
    return /** @type {BacktestStatus} */ ((await api.status(id)).data);
  } catch (err) {
    if (err.status === 404 || err.status === 400) return null;
    throw err;
  }
}

/**
 * The page's life: progress card until a terminal state, then results or the terminal card.
 * @param {HTMLElement} container @param {BacktestStatus} status
 */
function backtestPage(container, status) {
  const id = status.task_id;
  let disposed = false;
  let finished = false;
  /** @type {(() => void) | null} */
  let resultsCleanup = null;
  const head = pageHead({ title: status.name || "Backtest", sub: `Submitted ${dateTime(status.created_at)} · ${id}` });
  const show = (/** @type {BacktestStatus} */ full) => {
    if (full.status === "completed") {
      container.replaceChildren();
      resultsCleanup = renderResults(container, full);
    } else {
      replace(container, head, terminalCard(full));
    }
  };
  /** @param {ProgressMessage} last @returns {Promise<void>} */
  const finish = async (last) => {
    if (finished || disposed) return;
    finished = true;
    feed.stop();
    card.update({ ...last, progress: last.status === "completed" ? 100 : last.progress });
    const full = await fetchStatus(id).catch((err) => (err.status === 401 ? undefined : { ...status, ...last }));
    if (disposed || full === undefined) return;
    if (full === null) return void replace(container, notFound());
    // The terminal card says the progress the bar showed (never less).
    if (full.status !== "completed") full.progress = Math.max(Number(full.progress) || 0, card.percent());
    if (full.status === "completed") {
      card.setConn("done", "Completed");
      // Let the bar be seen at 100% before the results replace it.
      await new Promise((r) => setTimeout(r, 500));
    }
    if (!disposed) show(full);
  };
  const card = progressCard(status, { onTerminal: finish, recheck: () => feed.poll() });
  const feed = new ProgressFeed(id, { onUpdate: card.update, onTerminal: finish, onConn: card.setConn });
  if (isTerminal(status.status)) {
    show(status);
  } else {
    replace(container, head, card.element);
    card.update(status);
    feed.connect();
  }
  return () => {
    disposed = true;
    feed.stop();
    if (resultsCleanup) resultsCleanup();
  };
}

/** @param {HTMLElement} container @param {import("../router.js").Route} route */
export async function renderBacktest(container, route) {
  const id = route.params[0];
  if (!id) {
    navigate("history", undefined, { replace: true });
    return undefined;
  }
  container.append(h("div", { class: "loading" }, "Loading backtest…"));
  const status = await fetchStatus(id);
  if (!status) {
    replace(container, notFound());
    return undefined;
  }
  return backtestPage(container, status);
}
