// @ts-check
// The "Cash flows, dividends and benchmarks" card of the new-backtest form (every
// strategy, not only allocations): a recurring contribution (positive amount) or
// withdrawal (negative) on the first session of each month/quarter/year between optional
// dates (request `cash_flows`), dividend reinvestment (`reinvest_dividends`, default on),
// and more benchmarks (`benchmarks`, at most 3 with the form's Benchmark select).

import { field, h } from "../dom.js";
import { benchmarkDrafts, benchmarkErrors, benchmarkFields, cashFlowBody, cashFlowErrors, MAX_BENCHMARKS } from "../portfolio-form.js";
import { isIsoDate } from "../form-checks.js";
import { createBenchmarkList } from "./benchmark-list.js";
import { dateInput, numberInput, readNumber, selectOf } from "./form-controls.js";

/** @typedef {import("../views/new-backtest.js").Universe} Universe */

/** The cash-flow controls, valued from an earlier run's `cash_flows`. @param {Universe} universe @param {Record<string, any>} flows */
function flowControls(universe, flows) {
  const { first_date: min, last_date: max } = universe;
  return {
    amount: numberInput({ name: "cash_flows.amount", step: 100, value: flows.amount ?? "", placeholder: "none", id: "cash-flow-amount" }),
    frequency: selectOf({ name: "cash_flows.frequency", id: "cash-flow-frequency" },
      [["monthly", "Monthly"], ["quarterly", "Quarterly"], ["yearly", "Yearly"]], flows.frequency ?? "monthly"),
    start: dateInput({ name: "cash_flows.start_date", min, max, value: flows.start_date ?? "" }),
    end: dateInput({ name: "cash_flows.end_date", min, max, value: flows.end_date ?? "" }),
  };
}

/** @param {ReturnType<typeof flowControls>} c */
function flowValues(c) {
  return { amount: readNumber(c.amount), frequency: c.frequency.value, start: c.start.value, end: c.end.value };
}

/**
 * The dates flows may fall on: the backtest's period where its boxes hold real dates, else the data's.
 * @param {{start?: string | null, end?: string | null}} span @param {Universe} universe
 */
function inside({ start, end }, universe) {
  return { first: start && isIsoDate(start) ? start : universe.first_date, last: end && isIsoDate(end) ? end : universe.last_date };
}

/**
 * @param {Universe} universe @param {Record<string, any>} cfg
 * @param {{primary: () => string, onChange: () => void, period: () => {start?: string | null, end?: string | null}}} hooks
 *   primary: the form's Benchmark select; period: the backtest's dates as typed
 */
export function portfolioSection(universe, cfg, { primary, onChange, period }) {
  let ready = false;
  const changed = () => ready && onChange();
  const c = flowControls(universe, cfg.cash_flows || {});
  const reinvest = h("input", { type: "checkbox", name: "reinvest_dividends", id: "reinvest-dividends", checked: cfg.reinvest_dividends ?? true });
  const known = new Set(universe.symbols.map((s) => s.symbol));
  const max = /** @type {{max_benchmarks?: number}} */ (universe.limits).max_benchmarks ?? MAX_BENCHMARKS;
  const benchmarks = createBenchmarkList({ symbols: universe.symbols, initial: benchmarkDrafts(cfg)[1], primary, onChange: changed, max });
  ready = true;
  const element = h("section", { class: "card", id: "portfolio-card" },
    h("h2", {}, "Cash flows, dividends and benchmarks"),
    h("div", { class: "field", dataset: { field: "cash_flows" } }, h("div", { class: "grid-4" },
      field({ label: "Cash flow ($ per period)", control: c.amount, name: "cash_flows.amount", hint: "Optional: positive adds money, negative withdraws" }),
      field({ label: "Frequency", control: c.frequency, name: "cash_flows.frequency", hint: "On the first session of each period" }),
      field({ label: "First flow (optional)", control: c.start, name: "cash_flows.start_date", hint: "YYYY-MM-DD · default: the start" }),
      field({ label: "Last flow (optional)", control: c.end, name: "cash_flows.end_date", hint: "YYYY-MM-DD · default: the end" })),
    h("div", { class: "field-error" })),
    h("div", { class: "field", dataset: { field: "reinvest_dividends" }, style: { marginTop: "16px" } },
      h("span", { class: "label" }, "Dividend reinvestment"),
      h("label", { class: "choice" }, reinvest, "Reinvest dividends in the holding that paid them (off: kept as cash until the next rebalance)"),
      h("div", { class: "field-error" })),
    benchmarks.element);
  return {
    element,
    sync: benchmarks.refresh,
    /** The fields this card adds to the request, the benchmark ones given the primary. */
    body() {
      const flows = cashFlowBody(flowValues(c));
      return { reinvest_dividends: reinvest.checked, ...(flows ? { cash_flows: flows } : {}), ...benchmarkFields(primary(), benchmarks.drafts()) };
    },
    localErrors: () => [
      ...cashFlowErrors(flowValues(c), inside(period(), universe)),
      ...benchmarkErrors(benchmarks.drafts(), primary(), known, max),
    ],
  };
}
