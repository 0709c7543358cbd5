// @ts-check
// Compare 2–4 completed backtests (#/compare?ids=a,b,c): overlaid equity, metrics side by side.

import { api } from "../api.js";
import { compareChart, PALETTE } from "../charts.js";
import { ALIGNED_KEYS, benchmarkColumn, clip, commonPeriod, periodMetrics, periodsDiffer } from "../compare-period.js";
import { pageHead } from "../components/page-head.js";
import { scaleToggle } from "../components/toggle-group.js";
import { h, replace } from "../dom.js";
import { date, dateTime, pct, tone } from "../format.js";
import { BY_KEY, METRICS, formatMetric, metricTone } from "../metrics.js";
import { navigate } from "../router.js";
import { MAX_COMPARE } from "./history.js";

/**
 * @typedef {import("./history.js").HistoryItem} HistoryItem
 * @typedef {import("./backtest.js").BacktestStatus} BacktestStatus
 * @typedef {import("../compare-period.js").EquityRow} EquityRow
 * @typedef {import("../compare-period.js").Period} Period
 * @typedef {{id: string, status: BacktestStatus, chart: import("../charts.js").ChartData, label: string,
 *   rows: EquityRow[] | null, period: Period}} Run
 * @typedef {{common: Period | null, differ: boolean, aligned: boolean, canAlign: boolean}} View
 */

const PICK_LIMIT = 100;

/**
 * Pure: the index of the best of `values` for a metric whose better side is `better`,
 * or -1 when there is no better side or fewer than two numbers to compare.
 * @param {unknown[]} values @param {"high" | "low" | null} better
 */
export function bestIndex(values, better) {
  if (!better) return -1;
  let best = -1;
  values.forEach((v, i) => {
    if (typeof v !== "number") return;
    if (best < 0 || (better === "high" ? v > /** @type {number} */ (values[best]) : v < /** @type {number} */ (values[best]))) best = i;
  });
  return values.filter((v) => typeof v === "number").length > 1 ? best : -1;
}

/** Pure: "Name", "Name (2)", ... so that a legend never shows one label twice. @param {string[]} labels */
export function uniqueLabels(labels) {
  const seen = new Map();
  return labels.map((label) => {
    const n = (seen.get(label) || 0) + 1;
    seen.set(label, n);
    return n > 1 ? `${label} (${n})` : label;
  });
}

/** One completed run the user may tick. @param {HistoryItem} item @param {Set<string>} chosen @param {() => void} sync */
function pickerRow(item, chosen, sync) {
  const box = h("input", {
    type: "checkbox",
    id: `pick-${item.task_id}`,
    checked: chosen.has(item.task_id),
    onchange: () => {
      if (box.checked) chosen.add(item.task_id);
      else chosen.delete(item.task_id);
      sync();
    },
  });
  return h("tr", { dataset: { taskId: item.task_id } },
    h("td", {}, box),
    h("td", { class: "name-cell" }, h("label", { for: `pick-${item.task_id}` }, item.name || "Untitled backtest")),
    h("td", { class: "num" }, dateTime(item.completed_at)),
    h("td", { class: `num r ${tone(item.total_return)}` }, pct(item.total_return, { signed: true })));
}

/** @param {HistoryItem[]} completed @param {Set<string>} chosen @param {() => void} sync */
function pickerTable(completed, chosen, sync) {
  if (!completed.length) return h("p", { class: "muted" }, "No completed backtests yet. ", h("a", { href: "#/new" }, "Run one"), " first.");
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id: "compare-picker" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Select")),
      h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Completed"), h("th", { scope: "col", class: "r" }, "Total return"))),
    h("tbody", {}, completed.map((item) => pickerRow(item, chosen, sync)))));
}

/** Tick 2–4 completed runs, then Compare. @param {string[]} ids @param {HistoryItem[]} completed */
function pickerCard(ids, completed, { bare = false } = {}) {
  const chosen = new Set(ids);
  const go = h("button", { type: "submit", class: "btn btn-primary", id: "compare-go" }, "Compare");
  const note = h("span", { class: "hint", "aria-live": "polite" });
  const sync = () => {
    const n = chosen.size;
    go.disabled = n < 2 || n > MAX_COMPARE;
    note.textContent = n > MAX_COMPARE ? `Choose at most ${MAX_COMPARE}.` : `${n} selected · choose 2 to ${MAX_COMPARE}.`;
  };
  const form = h("form", { class: bare ? "" : "card", id: "compare-form", "aria-labelledby": "pick-title" },
    h("div", { class: "card-head" }, h("h2", { id: "pick-title" }, "Choose backtests"), h("div", { class: "row", style: { alignItems: "center" } }, note, go)),
    pickerTable(completed, chosen, sync));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    navigate("compare", { ids: [...chosen].join(",") });
  });
  sync();
  return form;
}

/**
 * Pure: each run's metrics as the table shows them. Aligned: the return and risk
 * metrics recomputed over the common period (the rest are each run's whole period);
 * otherwise the stored ones.
 * @param {Run[]} runs @param {View} view @returns {Record<string, unknown>[]}
 */
export function shownMetrics(runs, view) {
  return runs.map((r) => {
    const stored = r.status.metrics || {};
    if (!view.aligned || !view.common || !r.rows) return stored;
    const rows = clip(r.rows, view.common);
    const recomputed = periodMetrics(rows, { riskFreeRate: Number(r.status.config?.risk_free_rate) || 0, benchmarkColumn: benchmarkColumn(r.rows[0]) });
    return { ...stored, ...recomputed };
  });
}

/**
 * Pure: whether a metric's values may be ranked: the runs cover the same dates, or the
 * metric was recomputed over the common period.
 * @param {string} key @param {View} view
 */
export function comparable(key, view) {
  return !view.differ || (view.aligned && view.common !== null && ALIGNED_KEYS.includes(key));
}

/** @param {Run} r @param {View} view */
function periodText(r, view) {
  const p = view.aligned && view.common ? view.common : r.period;
  return `${date(p.start)} → ${date(p.end)}`;
}

/** @param {Run[]} runs @param {View} view */
function metricsTable(runs, view) {
  const shown = shownMetrics(runs, view);
  const metricRow = (/** @type {import("../metrics.js").MetricDef} */ def) => {
    const values = shown.map((m) => m[def.key]);
    const ranked = comparable(def.key, view);
    const best = ranked ? bestIndex(values, BY_KEY[def.key].better) : -1;
    const scope = ranked ? "" : " (own period)";
    return h("tr", { dataset: { metric: def.key, comparable: String(ranked) } }, h("th", { scope: "row", title: def.help }, def.label + (view.differ ? scope : "")),
      values.map((v, i) => h("td", { class: `num r ${metricTone(def.key, v)} ${i === best ? "best" : ""}`.trim(), dataset: { value: v ?? "" } }, formatMetric(def.key, v))));
  };
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id: "compare-metrics" },
    h("caption", { class: "visually-hidden" }, "Metrics side by side; the best value of each comparable row is in bold."),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Metric"),
      runs.map((r, i) => h("th", { scope: "col", class: "r" }, h("span", { class: "swatch", style: { background: PALETTE[i] } }),
        h("a", { href: `#/backtest/${r.id}` }, r.label))))),
    h("tbody", {},
      h("tr", { dataset: { metric: "period" } }, h("th", { scope: "row" }, "Period"), runs.map((r) => h("td", { class: "num r period" }, periodText(r, view)))),
      METRICS.map(metricRow))));
}

/** The note and switch above the metrics when the runs cover different dates. @param {View} view @param {(aligned: boolean) => void} onSwitch */
function periodNote(view, onSwitch) {
  if (!view.differ) return h("p", { class: "muted small", id: "compare-period-note" }, "All runs cover the same period.");
  if (!view.common) {
    return h("div", { class: "alert alert-warn", id: "compare-period-note" }, "These backtests do not overlap in time: each metric covers its own run's period, and no best value is marked.");
  }
  if (!view.canAlign) {
    return h("div", { class: "alert alert-warn", id: "compare-period-note" }, "These backtests cover different periods, and one of them completed before daily series were stored, so they cannot be aligned: each metric covers its own run's period, and no best value is marked.");
  }
  const box = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "compare-align", checked: view.aligned, onchange: () => onSwitch(box.checked) }));
  const text = view.aligned
    ? `These backtests cover different periods. Returns and risk are recomputed over the common period ${date(view.common.start)} → ${date(view.common.end)}; the other rows cover each run's own period and are not ranked.`
    : "These backtests cover different periods: each metric covers its own run's period, so no best value is marked.";
  return h("div", { class: "alert alert-info", id: "compare-period-note", role: "status" },
    h("p", {}, text),
    h("label", { for: "compare-align" }, box, " Align to the common period"));
}

/**
 * The metrics card: note, switch and table; re-drawn when the switch changes.
 * @param {Run[]} runs @param {View} view @param {(aligned: boolean) => void} onAlign
 */
function metricsCard(runs, view, onAlign) {
  const slot = h("div", {});
  const draw = () => replace(slot, periodNote(view, (aligned) => {
    view.aligned = aligned;
    draw();
    onAlign(aligned);
  }), metricsTable(runs, view));
  draw();
  return h("section", { class: "card", "aria-labelledby": "cmp-metrics-title" }, h("h2", { id: "cmp-metrics-title" }, "Metrics"), slot);
}

/** Pure: the chart data of a run limited to `period` (null: all of it). @param {Run} run @param {Period | null} period */
export function clippedChart(run, period) {
  if (!period) return run.chart;
  const inside = (/** @type {{date: string}} */ p) => p.date >= period.start && p.date <= period.end;
  return { ...run.chart, equity_curve: (run.chart.equity_curve || []).filter(inside), drawdown_series: (run.chart.drawdown_series || []).filter(inside) };
}

/** The overlaid equity card; `mount()` draws once it is in the page, `setPeriod` re-draws.
 * @param {Run[]} runs @param {Period | null} period */
function compareChartCard(runs, period) {
  const chartEl = h("div", { class: "chart", id: "compare-chart", role: "img", "aria-label": "Cumulative return of the compared backtests" });
  /** @type {import("../charts.js").ChartController | null} */
  let chart = null;
  const element = h("section", { class: "card", "aria-labelledby": "cmp-chart-title" },
    h("div", { class: "card-head" }, h("h2", { id: "cmp-chart-title" }, "Cumulative return"),
      h("div", { class: "chart-toolbar" }, scaleToggle((log) => chart?.setLog(log)),
        h("button", { type: "button", class: "btn btn-s", onclick: () => chart?.resetZoom() }, "Reset zoom"))),
    chartEl,
    h("div", { class: "legend-note" }, "Each curve starts at 0% on its first day shown (the common period's first day when aligned), so runs with different capital compare fairly. Drag to zoom."));
  const draw = (/** @type {Period | null} */ p) => {
    chart?.destroy();
    chart = compareChart(chartEl, runs.map((r) => ({ label: r.label, chart: clippedChart(r, p) })));
    chartEl.dataset.period = p ? `${p.start}..${p.end}` : "own";
  };
  return {
    element,
    mount: () => draw(period),
    /** @param {Period | null} p */
    setPeriod: (p) => draw(p),
    destroy: () => chart?.destroy(),
  };
}

/** Status and chart of each id; the runs that are completed, and why the others are not shown. @param {string[]} ids */
async function loadRuns(ids) {
  const loaded = await Promise.allSettled(ids.map(async (id) => {
    const status = (await api.status(id)).data;
    if (status.status !== "completed") throw new Error(`“${status.name || id}” is ${status.status}, not completed.`);
    const [chartData, rows] = await Promise.all([
      api.chart(id, 1000).then((r) => r.data),
      // results stored before the daily series existed (409): compared unaligned
      api.dailySeries(id).then((r) => /** @type {EquityRow[]} */ (r.data), () => null),
    ]);
    const points = chartData.equity_curve || [];
    const period = rows?.length
      ? { start: rows[0].date, end: rows[rows.length - 1].date }
      : { start: points[0]?.date ?? status.config?.start_date, end: points[points.length - 1]?.date ?? status.config?.end_date };
    return { id, status, chart: chartData, rows, period, label: status.name || `Backtest ${id.slice(0, 8)}` };
  }));
  const problems = loaded.filter((r) => r.status === "rejected").map((r) => r.reason?.status === 404 ? "A backtest was not found (deleted?)." : r.reason?.message);
  /** @type {Run[]} */
  const runs = loaded.filter((r) => r.status === "fulfilled").map((r) => r.value);
  uniqueLabels(runs.map((r) => r.label)).forEach((label, i) => { runs[i].label = label; });
  return { runs, problems };
}

/** @param {HTMLElement} container @param {import("../router.js").Route} route */
export async function renderCompare(container, route) {
  const ids = [...new Set((route.query.ids || "").split(",").map((s) => s.trim()).filter(Boolean))];
  const head = pageHead({ title: "Compare backtests", sub: `Overlay 2 to ${MAX_COMPARE} completed backtests and compare their metrics.` });
  container.append(head, h("div", { class: "loading" }, "Loading…"));
  const completed = (await api.history({ status: "completed", limit: PICK_LIMIT, sort: "-created_at" })).data || [];
  if (ids.length < 2) {
    container.replaceChildren(head, pickerCard(ids, completed));
    return undefined;
  }
  if (ids.length > MAX_COMPARE) {
    container.replaceChildren(head, h("div", { class: "alert alert-warn", role: "alert" }, `Choose at most ${MAX_COMPARE} backtests.`), pickerCard(ids.slice(0, MAX_COMPARE), completed));
    return undefined;
  }
  const { runs, problems } = await loadRuns(ids);
  const enough = runs.length >= 2;
  const periods = runs.map((r) => r.period);
  const differ = periodsDiffer(periods);
  const common = commonPeriod(periods);
  const canAlign = common !== null && runs.every((r) => r.rows);
  /** @type {View} */
  const view = { common, differ, canAlign, aligned: differ && canAlign };
  const chart = enough ? compareChartCard(runs, view.aligned ? common : null) : null;
  container.replaceChildren(
    head,
    problems.length ? h("div", { class: "alert alert-warn", role: "alert" }, problems.join(" ")) : "",
    chart ? chart.element : "",
    enough ? metricsCard(runs, view, (aligned) => chart?.setPeriod(aligned ? common : null)) : "",
    h("details", { class: "card", open: !enough }, h("summary", {}, "Change the selection"), h("div", { style: { marginTop: "12px" } }, pickerCard(ids, completed, { bare: true }))),
  );
  chart?.mount();
  return () => chart?.destroy();
}
