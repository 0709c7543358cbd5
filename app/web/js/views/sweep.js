// @ts-check
// One sweep (#/sweep/<id>): live progress while it runs; then the best row, the
// overfitting panel, walk-forward, the results table and the heatmap.

import { downloadFile } from "../api.js";
import { pageHead } from "../components/page-head.js";
import { statusBadge } from "../components/status-badge.js";
import { heatmapOrNote } from "../components/sweep-heatmap.js";
import { overfittingPanel } from "../components/sweep-overfitting.js";
import { paramsText, sweepProgress } from "../components/sweep-progress.js";
import { openAsBacktest, sweepTable } from "../components/sweep-table.js";
import { walkForwardCard } from "../components/sweep-walk-forward.js";
import { confirmDialog, h, replace } from "../dom.js";
import { dateTime, int } from "../format.js";
import { BY_KEY, formatMetric } from "../metrics.js";
import { navigate } from "../router.js";
import { sweepApi } from "../sweep-api.js";

/**
 * @typedef {{sweep_id: string, name?: string | null, status: string, progress: number, combinations: number,
 *   skipped_combinations: number, combinations_done: number, objective: string, request: Record<string, any>,
 *   created_at: string, error?: string | null, best?: import("../components/sweep-table.js").SweepRow | null,
 *   overfitting?: any, walk_forward?: any, eta_seconds?: number | null}} SweepStatus
 */

const BEST_METRICS = ["total_return", "cagr", "sharpe_ratio", "max_drawdown", "volatility"];

/** The status, or null when there is no such sweep for this user. @param {string} id */
async function fetchSweep(id) {
  try {
    return /** @type {SweepStatus} */ ((await sweepApi.status(id)).data);
  } catch (err) {
    if (err.status === 404 || err.status === 400 || err.status === 422) return null;
    throw err;
  }
}

/** @param {SweepStatus} s */
function head(s) {
  const download = h("button", { type: "button", class: "btn", id: "download-returns", disabled: s.status !== "completed",
    onclick: () => downloadFile(`/v1/sweeps/${s.sweep_id}/returns`, { format: "csv" }, `sweep-${s.sweep_id}-returns.csv`).catch((e) => window.alert?.(e.message)) },
  "Download returns (CSV)");
  const remove = h("button", { type: "button", class: "btn btn-danger", id: "delete-sweep", onclick: async () => {
    const ok = await confirmDialog({ title: "Delete this sweep?", message: "Its rows and diagnostics are removed for good.", confirmLabel: "Delete", danger: true });
    if (ok) await sweepApi.remove(s.sweep_id).then(() => navigate("sweeps"), (e) => window.alert?.(e.message));
  } }, "Delete");
  const skipped = s.skipped_combinations ? ` (${int(s.skipped_combinations)} skipped as invalid)` : "";
  const finished = ["completed", "failed", "cancelled"].includes(s.status);
  return pageHead({ title: h("span", {}, s.name || "Sweep", " ", statusBadge(s.status)),
    sub: `${int(s.combinations)} combinations${skipped} · objective ${BY_KEY[s.objective]?.label ?? s.objective} · submitted ${dateTime(s.created_at)}`,
    actions: h("div", { class: "row" }, finished ? download : null,
      h("a", { class: "btn", href: `#/sweeps?from=${encodeURIComponent(s.sweep_id)}` }, "New sweep from these settings"), finished ? remove : null) });
}

/** The best row by the objective, with "Open as backtest". @param {SweepStatus} s */
function bestCard(s) {
  const best = s.best;
  if (!best) return null;
  const alert = h("div", { class: "alert alert-error", role: "alert" });
  const open = h("button", { type: "button", class: "btn btn-primary", id: "open-best",
    onclick: () => { open.disabled = true; openAsBacktest(s.sweep_id, best.index, (m) => { alert.textContent = m; open.disabled = false; }); } },
  "Open as backtest");
  return h("section", { class: "card", id: "sweep-best", dataset: { index: best.index } },
    h("div", { class: "card-head" }, h("h2", {}, `Best by ${BY_KEY[s.objective]?.label ?? s.objective}: #${best.index}`), open),
    h("p", { id: "sweep-best-params" }, paramsText(best.params)),
    h("dl", { class: "overfit-list" }, BEST_METRICS.map((m) => h("div", { class: "overfit-item" },
      h("dt", {}, BY_KEY[m]?.label ?? m), h("dd", { class: "num overfit-value" }, formatMetric(m, best.metrics?.[m]))))),
    alert);
}

/** The finished page; returns its cleanup. @param {HTMLElement} container @param {SweepStatus} s */
function renderFinished(container, s) {
  const keys = Object.keys(s.request?.grid || {});
  const table = sweepTable(s.sweep_id, keys, s.objective);
  const heatmap = heatmapOrNote(s.sweep_id, keys, s.objective);
  const wf = s.walk_forward ? walkForwardCard(s.sweep_id, s.walk_forward, s.objective) : null;
  const failed = s.status === "failed" ? h("div", { class: "alert alert-error", role: "alert" }, s.error || "The sweep failed.") : null;
  const cancelled = s.status === "cancelled"
    ? h("div", { class: "alert alert-warn", role: "status" }, `Cancelled after ${int(s.combinations_done)} of ${int(s.combinations)} combinations; the finished rows are kept.`) : null;
  container.replaceChildren(head(s), ...[failed, cancelled, bestCard(s),
    s.status === "completed" ? overfittingPanel(s.overfitting) : null, wf?.element ?? null, table.element, heatmap.element].filter((e) => e !== null));
  table.load();
  heatmap.load();
  wf?.load();
  return () => { table.destroy(); wf?.destroy(); };
}

function notFound() {
  return h("section", { class: "card" }, h("h1", {}, "Sweep not found"),
    h("p", { class: "muted" }, "It may have been deleted, or it belongs to another account."),
    h("div", { class: "form-actions" }, h("a", { class: "btn btn-primary", href: "#/sweeps" }, "Go to sweeps")));
}

/** @param {HTMLElement} container @param {import("../router.js").Route} route */
export async function renderSweep(container, route) {
  const id = route.params[0];
  container.append(h("div", { class: "loading" }, "Loading sweep…"));
  const status = id ? await fetchSweep(id) : null;
  if (!status) return void replace(container, notFound());
  let disposed = false;
  /** @type {() => void} */
  let cleanup = () => {};
  const finish = async () => {
    const full = await fetchSweep(status.sweep_id).catch(() => null);
    if (disposed) return;
    if (!full) return void replace(container, notFound());
    cleanup = renderFinished(container, full);
  };
  if (["completed", "failed", "cancelled"].includes(status.status)) {
    cleanup = renderFinished(container, status);
  } else {
    const progress = sweepProgress(status, finish);
    replace(container, head(status), progress.element);
    cleanup = progress.stop;
  }
  return () => { disposed = true; cleanup(); };
}
