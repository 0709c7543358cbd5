// @ts-check
// A metric over two grid keys (GET /v1/sweeps/{id}/heatmap): rows are the y key's
// values, columns the x key's; with more keys a cell holds the best over the others
// (its combination named in the tooltip). Clicking a cell runs it as a backtest.

import { h, replace } from "../dom.js";
import { BY_KEY, formatMetric } from "../metrics.js";
import { cellColor } from "../sweep-grid.js";
import { sweepApi } from "../sweep-api.js";
import { selectOf } from "./form-controls.js";
import { LOWER_IS_BETTER, TABLE_METRICS, openAsBacktest } from "./sweep-table.js";

/**
 * @typedef {{x: string, y: string, metric: string, x_values: unknown[], y_values: unknown[],
 *   values: (number | null)[][], indexes: (number | null)[][]}} Heatmap
 */

const short = (/** @type {string} */ key) => key.replace(/^.*\./, "");

/** @param {Heatmap} map @param {(index: number) => void} onOpen */
function heatmapTable(map, onOpen) {
  const finite = /** @type {number[]} */ (map.values.flat().filter((v) => v !== null && Number.isFinite(v)));
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const lower = LOWER_IS_BETTER.has(map.metric);
  const cell = (/** @type {number | null} */ v, /** @type {number | null} */ index, /** @type {string} */ where) => {
    if (v === null || index === null) return h("td", { class: "empty" }, "—");
    return h("td", { style: { background: cellColor(v, lo, hi, lower) } },
      h("button", { type: "button", class: "hm-cell", dataset: { index, value: v }, title: `Combination ${index} (${where}): open as a backtest`,
        "aria-label": `${where}: ${formatMetric(map.metric, v)}, open combination ${index} as a backtest`, onclick: () => onOpen(index) },
      formatMetric(map.metric, v)));
  };
  return h("table", { class: "heatmap", id: "sweep-heatmap-table" },
    h("caption", { class: "visually-hidden" }, `${BY_KEY[map.metric]?.label ?? map.metric} by ${short(map.y)} (rows) and ${short(map.x)} (columns)`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, `${short(map.y)} \\ ${short(map.x)}`),
      map.x_values.map((x) => h("th", { scope: "col" }, String(x))))),
    h("tbody", {}, map.y_values.map((y, i) => h("tr", {}, h("th", { scope: "row" }, String(y)),
      map.x_values.map((x, j) => cell(map.values[i][j], map.indexes[i][j], `${short(map.y)} ${y}, ${short(map.x)} ${x}`))))));
}

/**
 * The card with its x, y and metric choices. Needs at least two grid keys.
 * @param {string} id @param {string[]} keys @param {string} objective
 */
export function sweepHeatmap(id, keys, objective) {
  const options = keys.map((k) => /** @type {[string, string]} */ ([k, short(k)]));
  const x = selectOf({ id: "heatmap-x" }, options, keys[keys.length - 1]);
  const y = selectOf({ id: "heatmap-y" }, options, keys[0]);
  const metrics = [...new Set([objective, ...TABLE_METRICS, "psr"])];
  const metric = selectOf({ id: "heatmap-metric" }, metrics.map((m) => /** @type {[string, string]} */ ([m, BY_KEY[m]?.label ?? m.toUpperCase()])), objective);
  const body = h("div", { class: "heatmap-wrap", id: "sweep-heatmap", "aria-live": "polite" });
  const alert = h("div", { class: "alert alert-error", role: "alert" });
  const onOpen = (/** @type {number} */ index) => openAsBacktest(id, index, (m) => { alert.textContent = m; });
  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    alert.textContent = "";
    if (x.value === y.value) return void replace(body, h("p", { class: "muted" }, "Choose two different parameters."));
    try {
      const { data } = await sweepApi.heatmap(id, { x: x.value, y: y.value, metric: metric.value });
      if (mine === seq) replace(body, heatmapTable(data, onOpen));
    } catch (err) {
      if (mine === seq && err.status !== 401) alert.textContent = err.message;
    }
  };
  for (const s of [x, y, metric]) s.addEventListener("change", load);
  const label = (/** @type {string} */ text, /** @type {HTMLElement} */ control) => h("div", { class: "field" }, h("label", { for: control.id }, text), control);
  const element = h("section", { class: "card", "aria-labelledby": "heatmap-title" },
    h("h2", { id: "heatmap-title" }, "Heatmap"),
    h("p", { class: "muted small" }, "Green is better, red worse. With more than two parameters each cell shows the best value over the others. Click a cell to run that combination as a full backtest."),
    h("div", { class: "filters" }, label("Columns (x)", x), label("Rows (y)", y), label("Metric", metric)),
    alert, body);
  return { element, load };
}

/** The heatmap, or a note when the grid has one key. @param {string} id @param {string[]} keys @param {string} objective */
export function heatmapOrNote(id, keys, objective) {
  if (keys.length >= 2) return sweepHeatmap(id, keys, objective);
  const element = h("section", { class: "card", "aria-labelledby": "heatmap-title" }, h("h2", { id: "heatmap-title" }, "Heatmap"),
    h("p", { class: "muted" }, "A heatmap needs two varied parameters; this sweep varies one. Sort the table instead."));
  return { element, load: async () => {} };
}
