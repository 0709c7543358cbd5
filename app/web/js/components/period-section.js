// @ts-check
// The "Period, capital and costs" card of the new-backtest form. Bounds come from the
// API (GET /v1/symbols: `limits`); percent inputs are checked here, in the unit the user
// typed, before the API sees fractions.

import { field, h } from "../dom.js";
import { money } from "../format.js";
import { fromPercent, shiftYears, toPercent } from "../labels.js";
import { periodErrors } from "../form-checks.js";
import { dateInput, numberInput, readNumber, selectOf } from "./form-controls.js";

/** @typedef {import("../views/new-backtest.js").RequestLimits} RequestLimits */

const REBALANCING = /** @type {[string, string][]} */ ([...["daily", "weekly", "monthly", "quarterly"].map((v) => [v, v[0].toUpperCase() + v.slice(1)]),
  ["never", "Never (buy and hold)"]]);

/**
 * Pure: the percent fields' local errors. `values` are what the user typed (percent).
 * @param {Record<"commission" | "slippage" | "risk_free_rate", unknown>} values @param {RequestLimits} limits
 * @returns {import("../api-errors.js").FieldError[]}
 */
export function percentErrors(values, limits) {
  /** @type {["commission" | "slippage" | "risk_free_rate", string, number][]} */
  const rules = [
    ["commission", "Commission", limits.max_commission],
    ["slippage", "Slippage", limits.max_slippage],
    ["risk_free_rate", "Risk-free rate", limits.max_risk_free_rate],
  ];
  const errors = [];
  for (const [key, label, maxFraction] of rules) {
    const v = values[key];
    const max = toPercent(maxFraction);
    if (v === null && key === "risk_free_rate") continue;
    if (typeof v !== "number" || v < 0 || v > /** @type {number} */ (max)) {
      errors.push({ field: key, message: `${label} must be between 0% and ${max}%.` });
    }
  }
  return errors;
}

/** The controls, valued from an earlier run's config `cfg` or the defaults. */
function controls(/** @type {import("../views/new-backtest.js").Universe} */ universe, /** @type {Record<string, any>} */ cfg, /** @type {string} */ name) {
  const { first_date: first, last_date: last, limits } = universe;
  const pctInput = (/** @type {string} */ key, /** @type {number} */ max, /** @type {number} */ step, /** @type {unknown} */ value) =>
    numberInput({ name: key, min: 0, max: toPercent(max), step, value: toPercent(value) });
  const fiveYearsBack = shiftYears(last, -5) < first ? first : shiftYears(last, -5);
  const defaultBench = universe.benchmarks.includes("SPY") ? "SPY" : "";
  const nameOf = (/** @type {string} */ symbol) => universe.symbols.find((s) => s.symbol === symbol)?.name;
  return {
    start: dateInput({ name: "start_date", min: first, max: last, value: cfg.start_date || fiveYearsBack }),
    end: dateInput({ name: "end_date", min: first, max: last, value: cfg.end_date || last }),
    capital: numberInput({ name: "initial_capital", min: limits.min_capital, max: limits.max_capital, step: 1000, value: cfg.initial_capital ?? 100000 }),
    rebalancing: selectOf({ name: "rebalancing" }, REBALANCING, cfg.rebalancing ?? "monthly"),
    commission: pctInput("commission", limits.max_commission, 0.01, cfg.commission ?? cfg.commission_rate ?? 0.001),
    slippage: pctInput("slippage", limits.max_slippage, 0.01, cfg.slippage ?? cfg.slippage_rate ?? 0.0005),
    execution: selectOf({ name: "execution" }, [["next_open", "Next day's open"], ["close", "Same day's close"]], cfg.execution === "close" ? "close" : "next_open"),
    dividends: h("input", { type: "checkbox", name: "dividends", checked: cfg.dividends ?? true }),
    benchmark: selectOf({ name: "benchmark" }, [["", "None"], ...(universe.benchmarks || []).map((b) => /** @type {[string, string]} */ ([b, `${b}${nameOf(b) ? ` — ${nameOf(b)}` : ""}`]))], cfg.benchmark ?? defaultBench),
    riskFree: pctInput("risk_free_rate", limits.max_risk_free_rate, 0.1, cfg.risk_free_rate ?? 0),
    name: h("input", { type: "text", name: "name", maxlength: 200, value: name, placeholder: "e.g. Momentum top 20, 2019–2024" }),
  };
}

/** @param {ReturnType<typeof controls>} c @param {import("../views/new-backtest.js").Universe} universe */
function layout(c, universe) {
  const { first_date: first, last_date: last, limits } = universe;
  const row = (/** @type {HTMLElement[]} */ ...fields) => h("div", { class: "grid-4", style: { marginTop: "16px" } }, fields);
  return h("section", { class: "card" },
    h("h2", {}, "Period, capital and costs"),
    h("div", { class: "grid-4" },
      field({ label: "Start date", control: c.start, name: "start_date", hint: `YYYY-MM-DD · data from ${first}` }),
      field({ label: "End date", control: c.end, name: "end_date", hint: `YYYY-MM-DD · data until ${last} · span ≤ ${limits.max_span_years} years` }),
      field({ label: "Initial capital ($)", control: c.capital, name: "initial_capital", hint: `${money(limits.min_capital, 0)} – ${money(limits.max_capital, 0)}` }),
      field({ label: "Rebalancing", control: c.rebalancing, name: "rebalancing" })),
    row(field({ label: "Commission (%)", control: c.commission, name: "commission", hint: "Of traded notional; 0.10% = 10 bp" }),
      field({ label: "Slippage (%)", control: c.slippage, name: "slippage", hint: "Added to buys, taken off sells" }),
      field({ label: "Execution", control: c.execution, name: "execution", hint: "When orders decided at a close are filled" }),
      field({ label: "Benchmark", control: c.benchmark, name: "benchmark" })),
    row(field({ label: "Risk-free rate (%/year)", control: c.riskFree, name: "risk_free_rate", hint: "For Sharpe, Sortino and alpha" }),
      h("div", { class: "field", dataset: { field: "dividends" } },
        h("span", { class: "label" }, "Dividends"),
        h("label", { class: "choice", style: { minHeight: "36px" } }, c.dividends, "Include cash dividends (total return)"),
        h("div", { class: "field-error" })),
      field({ label: "Name (optional)", control: c.name, name: "name", className: "span-2" })));
}

/**
 * @param {import("../views/new-backtest.js").Universe} universe @param {Record<string, any>} cfg @param {string} name
 */
export function periodSection(universe, cfg, name) {
  const c = controls(universe, cfg, name);
  return {
    element: layout(c, universe),
    nameField: () => (c.name.value.trim() ? { name: c.name.value.trim() } : {}),
    body() {
      /** @type {Record<string, any>} */
      const out = { start_date: c.start.value || null, end_date: c.end.value || null, initial_capital: readNumber(c.capital),
        rebalancing: c.rebalancing.value, commission: fromPercent(readNumber(c.commission)), slippage: fromPercent(readNumber(c.slippage)),
        execution: c.execution.value, dividends: c.dividends.checked };
      if (c.benchmark.value) out.benchmark = c.benchmark.value;
      const rf = fromPercent(readNumber(c.riskFree));
      if (rf !== null && rf !== 0) out.risk_free_rate = rf;
      return out;
    },
    localErrors: () => [
      ...periodErrors({ start: c.start.value, end: c.end.value, capital: readNumber(c.capital) }, universe),
      ...percentErrors({ commission: readNumber(c.commission), slippage: readNumber(c.slippage), risk_free_rate: readNumber(c.riskFree) }, universe.limits),
    ],
  };
}
