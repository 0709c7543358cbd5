// @ts-check
// Result-page cards of an investor portfolio: the "portfolio emptied" warning, the
// portfolio and cash-flow metrics, and every benchmark's relative metrics side by side.
// Cards without data are left out, so other runs look as before.

import { h } from "../dom.js";
import { date, pct, signedMoney } from "../format.js";
import { emptiedOn, PORTFOLIO, RELATIVE, relativeMetrics } from "../portfolio-results.js";

/** @param {Record<string, any>} m */
function emptiedAlert(m) {
  const when = emptiedOn(m);
  if (!when) return null;
  return h("div", { class: "alert alert-error", role: "alert", id: "portfolio-emptied" },
    h("strong", {}, "The portfolio was emptied. "),
    `Withdrawals used up all of it${typeof when === "string" ? ` on ${date(when)}` : ""}; the run ends at zero from then on.`);
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
      RELATIVE.map(([key, , format]) => h("td", { class: "num", dataset: { metric: key, value: values[key] ?? "" } }, format(values[key]))))))));
}

/** @param {Record<string, any>} m */
function benchmarksCard(m) {
  const rows = relativeMetrics(m, null);
  if (!rows.length) return null;
  return h("section", { class: "card", "aria-labelledby": "benchmarks-title" },
    h("h2", { id: "benchmarks-title" }, rows.length > 1 ? "Against each benchmark" : "Against the benchmarks"),
    h("p", { class: "muted small" }, "Alpha and tracking error annualised; up/down capture: the strategy's mean return on the benchmark's up/down days over the benchmark's."),
    relativeTable(rows));
}

/** The cards, in reading order (nulls for those without data). @param {Record<string, any>} metrics */
export function portfolioCards(metrics) {
  const m = metrics || {};
  return [emptiedAlert(m), portfolioCard(m), benchmarksCard(m)];
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
  if (Array.isArray(c.benchmarks) && c.benchmarks.length) {
    items.push(["Benchmarks", c.benchmarks.map((b) => (typeof b === "string" ? b : String(b?.name ?? "allocation"))).join(", ")]);
  }
  return items;
}
