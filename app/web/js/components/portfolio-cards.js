// @ts-check
// Result-page cards of an investor portfolio: the "portfolio emptied" warning, the
// portfolio and cash-flow metrics, and every benchmark's relative metrics side by side
// (chart data `benchmarks[].metrics`).

import { h, replace } from "../dom.js";
import { date, pct, signedMoney } from "../format.js";
import { emptiedOn, PORTFOLIO, RELATIVE, relativeMetrics } from "../portfolio-results.js";

/** The warning, or nothing. @param {string | true | null} when */
function emptiedAlert(when) {
  if (!when) return [];
  return [h("div", { class: "alert alert-error", role: "alert", id: "portfolio-emptied" },
    h("strong", {}, "The portfolio was emptied. "),
    `Withdrawals used up all of it${typeof when === "string" ? ` on ${date(when)}` : ""}; it stays at zero from then on.`)];
}

/** @param {Record<string, any>} m */
function portfolioCard(m) {
  const present = PORTFOLIO.filter(([key]) => m[key] !== undefined && m[key] !== null);
  if (!present.length) return null;
  return h("section", { class: "card", "aria-labelledby": "portfolio-title" },
    h("h2", { id: "portfolio-title" }, "Portfolio and cash flows"),
    h("dl", { class: "kv-grid", id: "portfolio-metrics" }, present.map(([key, label, format, help]) =>
      h("div", { class: "kv", dataset: { metric: key, value: m[key] }, title: help }, h("dt", {}, label), h("dd", {}, format(m[key]))))));
}

/** @param {[string, Record<string, unknown>][]} rows */
function relativeTable(rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id: "benchmark-table" },
    h("caption", { class: "visually-hidden" }, "Relative metrics of the strategy against each benchmark"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Benchmark"), RELATIVE.map(([, label]) => h("th", { scope: "col", class: "num" }, label)))),
    h("tbody", {}, rows.map(([name, values]) => h("tr", { dataset: { benchmark: name } },
      h("th", { scope: "row" }, name),
      RELATIVE.map(([key, , format]) => h("td", { class: "num", dataset: { rel: key, value: values[key] ?? "" } }, format(values[key]))))))));
}

/** The relative metrics card's content, or nothing without benchmarks. @param {Record<string, any>} chart */
function benchmarksContent(chart) {
  const rows = relativeMetrics(chart);
  if (!rows.length) return [];
  return [h("h2", { id: "benchmarks-title" }, rows.length > 1 ? "Against each benchmark" : "Against the benchmark, in detail"),
    h("p", { class: "muted small" }, "Alpha and tracking error annualised; up/down capture: the strategy's return over the benchmark's on the benchmark's up/down days."),
    relativeTable(rows)];
}

/**
 * createPortfolioCards(metrics) → {elements, load(chart)}: the emptied warning and the
 * portfolio metrics at once, the per-benchmark table once the chart data is in.
 * Cards without data stay hidden, so other runs look as before.
 * @param {Record<string, any> | null | undefined} metrics
 */
export function createPortfolioCards(metrics) {
  const m = metrics || {};
  const alert = h("div", { id: "portfolio-alert" }, emptiedAlert(emptiedOn(m)));
  const bench = h("section", { class: "card", "aria-labelledby": "benchmarks-title", id: "benchmarks-card", hidden: true });
  return {
    elements: [alert, portfolioCard(m), bench],
    load(/** @type {Record<string, any>} */ chart) {
      replace(alert, emptiedAlert(emptiedOn(m, chart)));
      replace(bench, benchmarksContent(chart));
      bench.hidden = !bench.childElementCount;
    },
  };
}

/**
 * Pure: the settings an investor portfolio adds to the run's summary, as [label, value].
 * @param {Record<string, any>} c the run's config @returns {[string, string][]}
 */
export function portfolioConfigItems(c) {
  /** @type {[string, string][]} */
  const items = [];
  if (c.allocation && typeof c.allocation === "object") {
    items.push(["Allocation", Object.entries(c.allocation).map(([s, w]) => `${s} ${pct(w, { digits: 0 })}`).join(", ")]);
  }
  if (typeof c.rebalance_band === "number") items.push(["Band", pct(c.rebalance_band, { digits: 1 })]);
  const f = c.cash_flows;
  if (f && typeof f.amount === "number") {
    const span = f.start_date || f.end_date ? ` (${f.start_date ? date(f.start_date) : "start"} → ${f.end_date ? date(f.end_date) : "end"})` : "";
    items.push(["Cash flows", `${signedMoney(f.amount)} ${f.frequency}${span}`]);
  }
  if (c.reinvest_dividends === false) items.push(["Dividends", "kept as cash"]);
  else if (c.reinvest_dividends === true) items.push(["Dividends", "reinvested"]);
  return items;
}

/** Pure: the run's benchmarks by name (["SPY", "60/40"]), [] without any. @param {Record<string, any>} c the run's config */
export function benchmarkNames(c) {
  if (Array.isArray(c.benchmarks) && c.benchmarks.length) {
    return c.benchmarks.map((b) => (typeof b === "string" ? b : String(b?.name ?? "allocation")));
  }
  return c.benchmark ? [String(c.benchmark)] : [];
}
