// @ts-check
// Results of a completed backtest: metric cards, charts, monthly heatmap, trades.

import { api, cached } from "../api.js";
import { drawdownChart } from "../charts.js";
import { equityChart } from "../portfolio-charts.js";
import { benchmarkNames, createPortfolioCards, portfolioConfigItems } from "../components/portfolio-cards.js";
import { coverageNote } from "../components/coverage-note.js";
import { deleteBacktestButton } from "../components/delete-button.js";
import { metricGrid, metricRow } from "../components/metric-card.js";
import { pageHead } from "../components/page-head.js";
import { scaleToggle } from "../components/toggle-group.js";
import { toCsv } from "../csv.js";
import { append, downloadText, h, replace } from "../dom.js";
import { date, dateTime, money, pct } from "../format.js";
import { BENCHMARK, DETAIL, HEADLINE } from "../metrics.js";
import { describeScreen } from "../screen-text.js";
import { createAnalysisPanel } from "./analysis.js";
import { createHoldingsPanel } from "./holdings.js";
import { strategyLabel } from "./new-backtest.js";
import { saveTemplateButton, shareControl } from "./share.js";
import { createTradesTable } from "./trades.js";

/**
 * @typedef {import("./backtest.js").BacktestStatus} BacktestStatus
 * @typedef {import("../charts.js").ChartData} ChartData
 * @typedef {import("../charts.js").ChartController} ChartController
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * Pure: the settings of a run as [label, value] pairs, in reading order.
 * @param {Record<string, any>} c the run's config
 * @param {{id: number, name: string}[]} strategies
 * @returns {[string, string][]}
 */
export function configItems(c, strategies) {
  const strategy = c.allocation ? "Fixed allocation" : c.filter_criteria
    ? "Custom screen"
    : strategyLabel(strategies.find((s) => s.id === Number(c.strategy_id))) || (c.strategy_id ? `Strategy ${c.strategy_id}` : "—");
  const params = c.strategy_params && Object.keys(c.strategy_params).length
    ? ` (${Object.entries(c.strategy_params).map(([k, v]) => `${k} ${v}`).join(", ")})` : "";
  const symbols = Array.isArray(c.symbols) && c.symbols.length
    ? (c.symbols.length <= 6 ? c.symbols.join(", ") : `${c.symbols.length} symbols`) : "All stocks";
  const costs = `${pct(c.commission ?? c.commission_rate, { digits: 2 })} commission, ${pct(c.slippage ?? c.slippage_rate, { digits: 2 })} slippage`;
  const screen = c.filter_criteria ? [/** @type {[string, string]} */ (["Rules", describeScreen(c.filter_criteria).join("; ")])] : [];
  return [
    ["Strategy", strategy + params],
    ...screen,
    ["Period", `${date(c.start_date)} → ${date(c.end_date)}`],
    ["Universe", c.allocation ? "the allocation's symbols" : c.universe === "sp500_pit" ? `${symbols}, S&P 500 members on each date` : symbols],
    ["Capital", money(c.initial_capital, 0)],
    ["Rebalancing", c.rebalancing || "—"],
    ["Costs", costs],
    ["Execution", c.execution === "close" ? "same-day close" : "next open"],
    ["Benchmark", benchmarkNames(c).join(", ") || "none"],
    ...portfolioConfigItems(c),
  ];
}

/** @param {BacktestStatus} status @param {{id: number, name: string}[]} strategies */
function configSummary(status, strategies) {
  return h("div", { class: "config-summary", id: "config-summary" },
    configItems(status.config || {}, strategies).map(([label, value]) =>
      h("span", { dataset: { item: label.toLowerCase() } }, `${label} `, h("b", {}, value))));
}

/**
 * Pure: {"2024-01": 0.02, ...} → [[year, [12 monthly returns or null], compounded year]].
 * @param {Record<string, number | null> | undefined} monthly
 * @returns {[string, (number | null)[], number][]}
 */
export function monthlyTable(monthly) {
  /** @type {Map<string, (number | null)[]>} */
  const byYear = new Map();
  for (const [key, value] of Object.entries(monthly || {})) {
    if (typeof value !== "number") continue;
    const [year, month] = key.split("-");
    const months = byYear.get(year) ?? new Array(12).fill(null);
    months[Number(month) - 1] = value;
    byYear.set(year, months);
  }
  return [...byYear.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([year, months]) => {
    let growth = 1;
    for (const v of months) if (v !== null) growth *= 1 + v;
    return [year, months, growth - 1];
  });
}

/** One heatmap cell, green for gains and red for losses, deeper as |v| nears 8%. */
function heatCell(/** @type {number | null} */ v, extra = "") {
  if (v === null) return h("td", { class: `empty ${extra}`.trim() }, "");
  const intensity = Math.min(1, Math.abs(v) / 0.08);
  const alpha = 0.1 + 0.75 * intensity;
  const bg = v >= 0 ? `rgba(11, 122, 62, ${alpha.toFixed(3)})` : `rgba(193, 39, 45, ${alpha.toFixed(3)})`;
  return h("td", {
    class: extra,
    style: { background: bg, color: intensity > 0.55 ? "#fff" : "#17202b" },
    dataset: { value: v },
  }, pct(v, { digits: 1 }));
}

/** @param {Record<string, number | null> | undefined} monthly */
function heatmap(monthly) {
  const rows = monthlyTable(monthly);
  if (!rows.length) return h("p", { class: "muted" }, "No monthly returns.");
  const col = (/** @type {string} */ text) => h("th", { scope: "col" }, text);
  return h("div", { class: "heatmap-wrap" },
    h("table", { class: "heatmap", id: "monthly-heatmap" },
      h("caption", { class: "visually-hidden" }, "Monthly returns by year and month; the last column compounds the year."),
      h("thead", {}, h("tr", {}, col("Year"), MONTHS.map(col), col("Full year"))),
      h("tbody", {}, rows.map(([year, months, compounded]) => h("tr", { dataset: { year } },
        h("th", { scope: "row" }, year), months.map((v) => heatCell(v)), heatCell(compounded, "year-total"))))));
}

/** "Download equity CSV": the full-resolution curve with benchmark and drawdown. */
function equityCsvButton(/** @type {string} */ id, /** @type {HTMLElement} */ note) {
  const button = h("button", { type: "button", class: "btn btn-s", id: "download-equity" }, "Download equity CSV");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      /** @type {ChartData} */
      const full = (await api.chart(id, 10000)).data;
      const dd = new Map((full.drawdown_series || []).map((p) => [p.date, p.drawdown]));
      const rows = (full.equity_curve || []).map((p) => [p.date, p.equity, p.benchmark ?? "", dd.get(p.date) ?? ""]);
      downloadText(`backtest-${id}-equity.csv`, toCsv(["date", "equity", "benchmark", "drawdown"], rows));
    } catch (err) {
      note.textContent = `Download failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/**
 * Equity and drawdown cards; `load(data)` mounts the charts (they share cursor and zoom).
 * @param {string} id @param {HTMLElement} note
 */
function chartCards(id, note) {
  const equityEl = h("div", { class: "chart", id: "equity-chart", "aria-label": "Equity curve chart", role: "img" });
  const drawdownEl = h("div", { class: "chart", id: "drawdown-chart", "aria-label": "Drawdown chart", role: "img" });
  /** @type {ChartController | null} */
  let equity = null;
  /** @type {ChartController | null} */
  let drawdown = null;
  const resetZoom = h("button", { type: "button", class: "btn btn-s", id: "reset-zoom",
    onclick: () => { equity?.resetZoom(); drawdown?.resetZoom(); } }, "Reset zoom");
  const elements = [
    h("section", { class: "card", "aria-labelledby": "equity-title" },
      h("div", { class: "card-head" },
        h("h2", { id: "equity-title" }, "Equity curve"),
        h("div", { class: "chart-toolbar" }, scaleToggle((log) => equity?.setLog(log)), resetZoom, equityCsvButton(id, note))),
      equityEl,
      note),
    h("section", { class: "card", "aria-labelledby": "dd-title" },
      h("div", { class: "card-head" }, h("h2", { id: "dd-title" }, "Drawdown")),
      drawdownEl),
  ];
  return {
    elements,
    load(/** @type {ChartData} */ data) {
      equity = equityChart(equityEl, data, { syncKey: `bt-${id}`, onZoom: (min, max) => drawdown?.setRange(min, max) });
      drawdown = drawdownChart(drawdownEl, data, { syncKey: `bt-${id}`, onZoom: (min, max) => equity?.setRange(min, max) });
    },
    destroy() {
      equity?.destroy();
      drawdown?.destroy();
    },
  };
}

/** @param {BacktestStatus} status @param {HTMLElement} note */
function resultsHead(status, note) {
  const id = status.task_id;
  return pageHead({
    title: status.name || "Backtest results",
    titleId: "result-title",
    sub: [h("span", { class: "badge badge-completed", dataset: { status: "completed" } }, "completed"), " ",
      h("time", { id: "completed-at", datetime: status.completed_at || "" }, dateTime(status.completed_at))],
    actions: h("div", { class: "row" },
      h("a", { class: "btn", href: `#/new?from=${encodeURIComponent(id)}` }, "Run again with changes"),
      h("a", { class: "btn", href: `#/compare?ids=${encodeURIComponent(id)}` }, "Compare…"),
      saveTemplateButton(status),
      deleteBacktestButton(id, { id: "delete-backtest", onError: (message) => { note.textContent = message; } })),
  });
}

/** @param {string | null | undefined} benchName @param {Record<string, number | null>} m */
function benchmarkCard(benchName, m) {
  return h("section", { class: "card", "aria-labelledby": "bench-title" },
    h("h2", { id: "bench-title" }, benchName ? `Against the benchmark (${benchName})` : "Against the benchmark"),
    benchName ? null : h("p", { class: "muted small" }, "No benchmark was chosen for this run."),
    metricGrid(BENCHMARK, m, { id: "benchmark-cards", className: "metric-grid metric-grid-7" }));
}

/** Renders synchronously, loads charts and trades in the background; returns cleanup. */
export function renderResults(/** @type {HTMLElement} */ container, /** @type {BacktestStatus} */ status) {
  const id = status.task_id;
  const m = status.metrics || {};
  let disposed = false;
  const summarySlot = h("div", {});
  const heatSlot = h("div", { id: "heatmap-slot" }, h("div", { class: "loading" }, "Loading…"));
  const note = h("div", { class: "legend-note", id: "chart-note" }, "Drag across a chart to zoom; double-click to reset.");
  const charts = chartCards(id, note);
  const trades = createTradesTable(id, status.config || {});
  const analysis = createAnalysisPanel(id, status.config || {});
  const holdings = createHoldingsPanel(id, status.config || {});
  const portfolio = createPortfolioCards(m);
  append(container, [
    resultsHead(status, note),
    shareControl(id),
    coverageNote(m),
    h("section", { class: "card", "aria-label": "Settings" }, summarySlot),
    h("h2", { class: "visually-hidden" }, "Key metrics"),
    metricGrid(HEADLINE, m, { id: "metric-cards" }),
    ...charts.elements,
    benchmarkCard(benchmarkNames(status.config || {})[0], m),
    ...portfolio.elements,
    h("section", { class: "card", "aria-labelledby": "risk-title" },
      h("h2", { id: "risk-title" }, "Risk and trading"),
      h("dl", { class: "kv-grid", id: "detail-metrics" }, DETAIL.map((k) => metricRow(k, m[k])))),
    h("section", { class: "card", "aria-labelledby": "heat-title" }, h("h2", { id: "heat-title" }, "Monthly returns"), heatSlot),
    analysis.element,
    holdings.element,
    trades.element,
  ]);
  cached("strategies", api.strategies)
    .then((r) => !disposed && replace(summarySlot, configSummary(status, r.data || [])))
    .catch(() => !disposed && replace(summarySlot, configSummary(status, [])));
  api.chart(id, 1000).then(({ data }) => {
    if (disposed) return;
    charts.load(data);
    portfolio.load(data);
    replace(heatSlot, heatmap(data.monthly_returns));
  }).catch((err) => {
    if (disposed || err.status === 401) return;
    replace(heatSlot, h("div", { class: "alert alert-error" }, `Charts could not be loaded: ${err.message}`));
  });
  return () => {
    disposed = true;
    charts.destroy();
    trades.destroy();
    analysis.destroy();
    holdings.destroy();
  };
}
