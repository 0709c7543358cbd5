// @ts-check
// Walk-forward: each window's chosen combination (train vs test objective), the
// out-of-sample metrics and efficiency, and the stitched curve (GET /chart).

import { equityChart } from "../charts.js";
import { h } from "../dom.js";
import { num } from "../format.js";
import { BY_KEY, formatMetric } from "../metrics.js";
import { sweepApi } from "../sweep-api.js";
import { paramsText } from "./sweep-progress.js";

/**
 * @typedef {{train_start: string, train_end: string, test_start: string, test_end: string,
 *   chosen: {index: number, params: Record<string, unknown>}, train_metric: number | null,
 *   test_metric: number | null}} WfWindow
 * @typedef {{windows: WfWindow[], oos_metrics: Record<string, number | null>, efficiency: number | null, objective?: string}} WalkForward
 */

const OOS = ["total_return", "cagr", "sharpe_ratio", "max_drawdown", "volatility"];

/** @param {WalkForward} wf @param {string} objective */
function windowsTable(wf, objective) {
  const label = BY_KEY[objective]?.label ?? objective;
  const col = (/** @type {string} */ t, right = false) => h("th", { scope: "col", class: right ? "r" : null }, t);
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id: "wf-windows" },
    h("caption", { class: "visually-hidden" }, "Walk-forward windows"),
    h("thead", {}, h("tr", {}, col("Train"), col("Test"), col("Chosen"), col(`Train ${label}`, true), col(`Test ${label}`, true))),
    h("tbody", {}, wf.windows.map((w) => h("tr", {},
      h("td", { class: "num" }, `${w.train_start} – ${w.train_end}`),
      h("td", { class: "num" }, `${w.test_start} – ${w.test_end}`),
      h("td", {}, `#${w.chosen.index}: ${paramsText(w.chosen.params)}`),
      h("td", { class: "num r" }, formatMetric(objective, w.train_metric)),
      h("td", { class: "num r" }, formatMetric(objective, w.test_metric)))))));
}

/**
 * The card; `load()` draws the chart once it is on the page, `destroy()` removes it.
 * @param {string} id @param {WalkForward} wf @param {string} objective
 */
export function walkForwardCard(id, wf, objective) {
  const chartEl = h("div", { class: "chart", id: "wf-chart", role: "img", "aria-label": "Stitched out-of-sample equity and benchmark" });
  const alert = h("div", { class: "alert alert-error", role: "alert" });
  /** @type {{destroy: () => void} | null} */
  let chart = null;
  const oos = h("dl", { class: "overfit-list", id: "wf-oos" },
    OOS.map((m) => h("div", { class: "overfit-item", dataset: { metric: m } }, h("dt", {}, `Out-of-sample ${BY_KEY[m]?.label ?? m}`),
      h("dd", { class: "num overfit-value" }, formatMetric(m, wf.oos_metrics?.[m])))),
    h("div", { class: "overfit-item", dataset: { metric: "efficiency" } }, h("dt", {}, "Efficiency"),
      h("dd", { class: "num overfit-value" }, num(wf.efficiency, 2)),
      h("dd", { class: "muted small" }, "Mean test objective / mean train objective: near 1, the choice held up out of sample; near 0 or below, it did not.")));
  const element = h("section", { class: "card", id: "walk-forward", "aria-labelledby": "wf-title" },
    h("h2", { id: "wf-title" }, "Walk-forward"),
    h("p", { class: "muted small" }, "In each window the grid runs on the train span, the best combination by the objective is chosen, and it runs alone on the test span. The curve chains the test spans."),
    windowsTable(wf, objective), oos, alert, chartEl);
  return {
    element,
    async load() {
      try {
        const { data } = await sweepApi.chart(id);
        chart = equityChart(chartEl, data);
      } catch (err) {
        if (err.status !== 401) alert.textContent = err.message;
      }
    },
    destroy: () => chart?.destroy(),
  };
}
