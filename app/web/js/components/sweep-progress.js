// @ts-check
// A running sweep's card: progress over WS /v1/sweeps/{id}/progress (combinations
// done, time left, the best row so far), polling while the socket is down, Cancel.

import { h, replace } from "../dom.js";
import { duration, int, pct } from "../format.js";
import { formatMetric } from "../metrics.js";
import { sweepApi, sweepSocketUrl } from "../sweep-api.js";
import { reconnectDelay } from "../views/backtest.js";
import { statusBadge } from "./status-badge.js";

/**
 * @typedef {{index: number, params: Record<string, unknown>, objective?: number | null,
 *   metrics?: Record<string, number | null>}} BestRow
 * @typedef {{status?: string, progress?: number, eta_seconds?: number | null, combinations_done?: number,
 *   trades_executed?: number, combinations?: number, best?: BestRow | null, message?: string}} SweepFrame
 */

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 2000;

/** "lookback 40 · skip 0" @param {Record<string, unknown>} params */
export function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => `${k.replace(/^.*\./, "")} ${v}`).join(" · ");
}

/** The best row's objective value, from a frame (`objective`) or a status (`metrics`). @param {BestRow} best @param {string} objective */
function bestValue(best, objective) {
  return best.objective ?? best.metrics?.[objective] ?? null;
}

/**
 * WebSocket frames, or polled status while it is down; `onTerminal` once.
 * @param {string} id @param {{onFrame: (f: SweepFrame) => void, onTerminal: () => void, onConn: (text: string) => void}} handlers
 */
function sweepFeed(id, { onFrame, onTerminal, onConn }) {
  let stopped = false;
  let attempts = 0;
  /** @type {WebSocket | null} */
  let socket = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const deliver = (/** @type {SweepFrame} */ f) => {
    if (stopped) return;
    onFrame(f);
    if (f.status && TERMINAL.has(f.status)) { stop(); onTerminal(); }
  };
  const poll = () => sweepApi.status(id).then((r) => deliver(r.data), () => {});
  const connect = () => {
    if (stopped) return;
    onConn(attempts ? "Reconnecting…" : "Connecting…");
    socket = new WebSocket(sweepSocketUrl(id));
    socket.onopen = () => { attempts = 0; onConn("Live"); };
    socket.onmessage = (event) => { try { deliver(JSON.parse(event.data)); } catch { /* not JSON */ } };
    socket.onclose = () => {
      if (stopped) return;
      attempts += 1;
      onConn("Connection lost. Reconnecting…");
      poll();
      timer = setTimeout(connect, Math.max(POLL_MS, reconnectDelay(attempts)));
    };
  };
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    if (socket) { socket.onclose = null; socket.onmessage = null; if (socket.readyState <= 1) socket.close(1000); }
  };
  return { connect, stop, poll };
}

/** The figures; `update(frame)` repaints. @param {string} objective @param {number} total */
function progressFigures(objective, total) {
  const fill = h("div", { class: "progress-fill" });
  const bar = h("div", { class: "progress", role: "progressbar", id: "sweep-progress", "aria-label": "Sweep progress",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" }, fill);
  const stat = (/** @type {string} */ label, /** @type {string} */ key) => h("div", { class: "stat-value", dataset: { stat: key } }, "—");
  const done = stat("Combinations done", "done");
  const eta = stat("Time left", "eta");
  const best = stat("Best so far", "best");
  const badge = h("span", {});
  const box = (/** @type {string} */ label, /** @type {HTMLElement} */ el) => h("div", {}, h("div", { class: "stat-label" }, label), el);
  const update = (/** @type {SweepFrame} */ f) => {
    const value = Math.max(0, Math.min(100, Number(f.progress) || 0));
    fill.style.width = `${value}%`;
    bar.setAttribute("aria-valuenow", String(Math.round(value)));
    const n = f.combinations_done ?? f.trades_executed ?? 0;
    done.textContent = `${int(n)} of ${int(f.combinations ?? total)} (${pct(value / 100, { digits: 0 })})`;
    eta.textContent = f.status === "pending" ? "Queued" : duration(f.eta_seconds);
    if (f.best) best.textContent = `#${f.best.index}: ${paramsText(f.best.params)} → ${formatMetric(objective, bestValue(f.best, objective))}`;
    if (f.status) replace(badge, statusBadge(f.status));
  };
  const stats = h("div", { class: "progress-stats" }, box("Combinations done", done), box("Time left", eta), box("Best so far", best));
  return { bar, stats, badge, update };
}

/**
 * @param {{sweep_id: string, objective: string, combinations: number} & SweepFrame} status
 * @param {() => void} onTerminal
 */
export function sweepProgress(status, onTerminal) {
  const figures = progressFigures(status.objective, status.combinations);
  const conn = h("span", { class: "conn-state", id: "conn-state", "aria-live": "polite" }, "Connecting…");
  const message = h("p", { class: "muted small", id: "sweep-message" });
  const feed = sweepFeed(status.sweep_id, { onFrame: figures.update, onTerminal, onConn: (t) => { conn.textContent = t; } });
  const cancel = h("button", { type: "button", class: "btn btn-danger", id: "cancel-sweep" }, "Cancel sweep");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const { data } = await sweepApi.remove(status.sweep_id);
      message.textContent = data.message || "Cancelled.";
      feed.poll();
    } catch (err) {
      if (err.status !== 401) { message.textContent = err.message; cancel.disabled = false; }
    }
  });
  const element = h("section", { class: "card", "aria-labelledby": "sweep-progress-title" },
    h("div", { class: "card-head" }, h("h2", { id: "sweep-progress-title" }, "Running the sweep ", figures.badge), conn),
    figures.bar, figures.stats, message, h("div", { class: "form-actions" }, cancel));
  figures.update(status);
  feed.connect();
  return { element, stop: feed.stop };
}
