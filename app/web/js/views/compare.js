// @ts-check
// Compare 2–4 completed backtests (#/compare?ids=a,b,c): overlaid equity, metrics side by side.

import { api } from "../api.js";
import { compareChart, PALETTE } from "../charts.js";
import { pageHead } from "../components/page-head.js";
import { scaleToggle } from "../components/toggle-group.js";
import { h } from "../dom.js";
import { date, dateTime, pct, tone } from "../format.js";
import { BY_KEY, METRICS, formatMetric, metricTone } from "../metrics.js";
import { navigate } from "../router.js";
import { MAX_COMPARE } from "./history.js";

/**
 * @typedef {import("./history.js").HistoryItem} HistoryItem
 * @typedef {import("./backtest.js").BacktestStatus} BacktestStatus
 * @typedef {{id: string, status: BacktestStatus, chart: import("../charts.js").ChartData, label: string}} Run
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

/** @param {Run[]} runs */
function metricsTable(runs) {
  const metricRow = (/** @type {import("../metrics.js").MetricDef} */ def) => {
    const values = runs.map((r) => r.status.metrics?.[def.key]);
    const best = bestIndex(values, BY_KEY[def.key].better);
    return h("tr", { dataset: { metric: def.key } }, h("th", { scope: "row", title: def.help }, def.label),
      values.map((v, i) => h("td", { class: `num r ${metricTone(def.key, v)} ${i === best ? "best" : ""}`.trim(), dataset: { value: v ?? "" } }, formatMetric(def.key, v))));
  };
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id: "compare-metrics" },
    h("caption", { class: "visually-hidden" }, "Metrics side by side; the best value of each row is in bold."),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Metric"),
      runs.map((r, i) => h("th", { scope: "col", class: "r" }, h("span", { class: "swatch", style: { background: PALETTE[i] } }),
        h("a", { href: `#/backtest/${r.id}` }, r.label))))),
    h("tbody", {},
      h("tr", {}, h("th", { scope: "row" }, "Period"), runs.map((r) => h("td", { class: "num r" }, `${date(r.status.config?.start_date)} → ${date(r.status.config?.end_date)}`))),
      METRICS.map(metricRow))));
}

/** The overlaid equity card; `mount()` draws once it is in the page. @param {Run[]} runs */
function compareChartCard(runs) {
  const chartEl = h("div", { class: "chart", id: "compare-chart", role: "img", "aria-label": "Cumulative return of the compared backtests" });
  /** @type {import("../charts.js").ChartController | null} */
  let chart = null;
  const element = h("section", { class: "card", "aria-labelledby": "cmp-chart-title" },
    h("div", { class: "card-head" }, h("h2", { id: "cmp-chart-title" }, "Cumulative return"),
      h("div", { class: "chart-toolbar" }, scaleToggle((log) => chart?.setLog(log)),
        h("button", { type: "button", class: "btn btn-s", onclick: () => chart?.resetZoom() }, "Reset zoom"))),
    chartEl,
    h("div", { class: "legend-note" }, "Each curve starts at 0% on its own first day, so runs with different capital compare fairly. Drag to zoom."));
  return {
    element,
    mount: () => { chart = compareChart(chartEl, runs); },
    destroy: () => chart?.destroy(),
  };
}

/** Status and chart of each id; the runs that are completed, and why the others are not shown. @param {string[]} ids */
async function loadRuns(ids) {
  const loaded = await Promise.allSettled(ids.map(async (id) => {
    const status = (await api.status(id)).data;
    if (status.status !== "completed") throw new Error(`“${status.name || id}” is ${status.status}, not completed.`);
    const chartData = (await api.chart(id, 1000)).data;
    return { id, status, chart: chartData, label: status.name || `Backtest ${id.slice(0, 8)}` };
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
  const chart = enough ? compareChartCard(runs) : null;
  container.replaceChildren(
    head,
    problems.length ? h("div", { class: "alert alert-warn", role: "alert" }, problems.join(" ")) : "",
    chart ? chart.element : "",
    enough ? h("section", { class: "card", "aria-labelledby": "cmp-metrics-title" }, h("h2", { id: "cmp-metrics-title" }, "Metrics"), metricsTable(runs)) : "",
    h("details", { class: "card", open: !enough }, h("summary", {}, "Change the selection"), h("div", { style: { marginTop: "12px" } }, pickerCard(ids, completed, { bare: true }))),
  );
  chart?.mount();
  return () => chart?.destroy();
}
