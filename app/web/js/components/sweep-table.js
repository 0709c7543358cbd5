// @ts-check
// A sweep's rows (GET /v1/sweeps/{id}/results): sorted by the server on any column
// (click a header), paged with its limit/offset and X-Total-Count; "Open as backtest"
// runs a row as a normal backtest and goes to it.

import { totalCount } from "../api.js";
import { h } from "../dom.js";
import { num } from "../format.js";
import { BY_KEY, formatMetric, metricTone } from "../metrics.js";
import { navigate } from "../router.js";
import { sweepApi } from "../sweep-api.js";
import { createPagedTable } from "./paged-table.js";

/** @typedef {{index: number, params: Record<string, unknown>, metrics: Record<string, number | null>, psr?: number | null}} SweepRow */

export const LOWER_IS_BETTER = new Set(["volatility", "max_drawdown_duration_days", "turnover", "tracking_error"]);
export const TABLE_METRICS = ["total_return", "cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown", "volatility", "calmar_ratio", "turnover"];

/** The best-first sort of a metric: "-sharpe_ratio", "volatility". @param {string} key */
export const bestFirst = (key) => (LOWER_IS_BETTER.has(key) ? key : `-${key}`);

/**
 * POST /results/{index}/backtest, then the new backtest's page.
 * @param {string} id @param {number} index @param {(message: string) => void} onError
 */
export async function openAsBacktest(id, index, onError) {
  try {
    const { data } = await sweepApi.backtestRow(id, index);
    navigate(`backtest/${data.task_id}`);
  } catch (err) {
    if (err.status !== 401) onError(err.message);
  }
}

/** @param {SweepRow} row @param {string[]} keys @param {(index: number, button: HTMLButtonElement) => void} onOpen */
function tableRow(row, keys, onOpen) {
  const open = h("button", { type: "button", class: "btn btn-s open-row", "aria-label": `Open combination ${row.index} as a backtest` }, "Open as backtest");
  open.addEventListener("click", () => onOpen(row.index, open));
  return h("tr", { dataset: { index: row.index } },
    h("td", { class: "num" }, row.index),
    keys.map((k) => h("td", { class: "num", dataset: { param: k } }, String(row.params[k]))),
    TABLE_METRICS.map((m) => h("td", { class: `num r ${metricTone(m, row.metrics[m])}`, dataset: { metric: m, value: row.metrics[m] ?? "" } },
      formatMetric(m, row.metrics[m]))),
    h("td", { class: "num r", dataset: { metric: "psr", value: row.psr ?? "" } }, num(row.psr, 3)),
    h("td", { class: "r" }, open));
}

/** Header buttons that sort; `paint(sort)` marks the active one (aria-sort). @param {string[]} keys @param {(key: string) => void} onSort */
function sortHeads(keys, onSort) {
  const label = (/** @type {string} */ k) => (k === "index" ? "#" : k === "psr" ? "PSR" : BY_KEY[k]?.label ?? k.replace(/^.*\./, ""));
  const cols = ["index", ...keys, ...TABLE_METRICS, "psr"];
  const heads = cols.map((k) => h("th", { scope: "col", class: keys.includes(k) || k === "index" ? null : "r", dataset: { sortKey: k } },
    keys.includes(k) ? label(k) : h("button", { type: "button", class: "btn-link sort-button", onclick: () => onSort(k) }, label(k))));
  const paint = (/** @type {string} */ sort) => {
    for (const th of heads) {
      const key = th.dataset.sortKey;
      const state = sort === key ? "ascending" : sort === `-${key}` ? "descending" : null;
      if (state) th.setAttribute("aria-sort", state);
      else th.removeAttribute("aria-sort");
    }
  };
  return { heads: [...heads, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions"))], paint };
}

/**
 * @param {string} id @param {string[]} keys the grid keys (params columns)
 * @param {string} objective the default sort, best first
 */
export function sweepTable(id, keys, objective) {
  let sort = bestFirst(objective);
  const alert = h("div", { class: "alert alert-error", role: "alert", id: "sweep-table-error" });
  const onOpen = (/** @type {number} */ index, /** @type {HTMLButtonElement} */ button) => {
    button.disabled = true;
    openAsBacktest(id, index, (message) => { alert.textContent = message; button.disabled = false; });
  };
  const head = sortHeads(keys, (key) => {
    sort = sort === bestFirst(key) ? (sort.startsWith("-") ? key : `-${key}`) : bestFirst(key);
    head.paint(sort);
    paged.restart();
  });
  const paged = createPagedTable({
    id: "sweep-results", caption: "Sweep results, one row per combination", head: head.heads,
    pager: { prefix: "results", sizes: [10, 25, 50, 100], size: 25, sizeId: "results-size", sizeLabel: "Rows per page", noun: "combinations" },
    fetchPage: async (limit, offset) => {
      const result = await sweepApi.results(id, { sort, limit, offset });
      return { items: result.data || [], total: totalCount(result) };
    },
    row: (row) => tableRow(row, keys, onOpen),
    empty: () => h("tr", {}, h("td", { colspan: keys.length + TABLE_METRICS.length + 3, class: "empty-state" }, "No finished combinations.")),
    onStart: () => { alert.textContent = ""; },
    onError: (err) => { alert.textContent = err.message; },
  });
  head.paint(sort);
  const element = h("section", { class: "card", "aria-labelledby": "sweep-results-title" },
    h("h2", { id: "sweep-results-title" }, "Results"),
    h("p", { class: "muted small" }, "Click a column to sort by it (best first, click again to reverse). PSR: the probability that the true Sharpe ratio is above 0, given the length, skew and tails of the returns."),
    alert, h("div", { class: "table-wrap" }, paged.table), paged.pager);
  return { element, load: paged.load, destroy: paged.destroy };
}
