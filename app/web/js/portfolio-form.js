// @ts-check
// The investor-portfolio parts of the new-backtest form, pure (tests/web/portfolio-form.test.mjs):
// the allocation's weights (typed in percent, sent as fractions), the cash flows and the
// benchmarks, checked in the user's terms before anything is posted. Conventions are the
// API's (POST /v1/backtest): weights in (0, 1] summing to at most 1 (the rest stays cash),
// at most MAX_BENCHMARKS benchmarks, cash flows positive = contribution, negative = withdrawal.

import { fromPercent } from "./labels.js";
import { isIsoDate } from "./form-checks.js";

/** @typedef {import("./api-errors.js").FieldError} FieldError */
/** @typedef {{symbol: string, weight: unknown}} WeightRow  weight: percent as typed (number, null, or the text) */
/**
 * @typedef {{kind: "symbol", symbol: string} |
 *   {kind: "allocation", name: string, rows: WeightRow[], rebalancing: string}} BenchmarkDraft
 */

/** The fallback when GET /v1/symbols does not say (limits.max_benchmarks). */
export const MAX_BENCHMARKS = 3;
export const FREQUENCIES = /** @type {const} */ (["monthly", "quarterly", "yearly"]);
/** Sums within this many percentage points of 100 count as fully invested (typing 33.33 three times). */
const SUM_TOLERANCE = 0.005;

/** The typed weights added up, in percent; rows without a number count zero. @param {WeightRow[]} rows */
export function weightSum(rows) {
  let sum = 0;
  for (const row of rows) if (typeof row.weight === "number" && Number.isFinite(row.weight)) sum += row.weight;
  return Number(sum.toPrecision(12));
}

/**
 * The live-sum line under the builder, and whether it is an error.
 * @param {WeightRow[]} rows @returns {{text: string, state: "ok" | "cash" | "over" | "empty"}}
 */
export function sumStatus(rows) {
  const sum = weightSum(rows);
  const shown = `${sum.toFixed(2).replace(/\.?0+$/, "")}%`;
  if (!rows.some((r) => r.symbol)) return { text: "Total 0% — add at least one symbol.", state: "empty" };
  if (sum > 100 + SUM_TOLERANCE) return { text: `Total ${shown} — the weights add up to more than 100%.`, state: "over" };
  if (sum < 100 - SUM_TOLERANCE) {
    return { text: `Total ${shown} — ${(100 - sum).toFixed(2).replace(/\.?0+$/, "")}% stays in cash.`, state: "cash" };
  }
  return { text: `Total ${shown} — fully invested.`, state: "ok" };
}

/**
 * Pure: what is wrong with an allocation, each error naming `field` (the request path) and,
 * for one row, `row` (its index). `known`: the dataset's symbols.
 * @param {WeightRow[]} rows @param {Set<string>} known @param {string} [field]
 * @returns {(FieldError & {row?: number})[]}
 */
export function allocationErrors(rows, known, field = "allocation") {
  /** @type {(FieldError & {row?: number})[]} */
  const errors = [];
  const seen = new Set();
  rows.forEach((row, i) => {
    const symbol = row.symbol.trim().toUpperCase();
    const w = row.weight;
    if (!symbol) errors.push({ field, row: i, message: `Row ${i + 1}: choose a symbol.` });
    else if (!known.has(symbol)) errors.push({ field, row: i, message: `${symbol} is not in the dataset.` });
    else if (seen.has(symbol)) errors.push({ field, row: i, message: `${symbol} is listed twice.` });
    seen.add(symbol);
    if (typeof w !== "number" || !(w > 0) || w > 100) {
      errors.push({ field, row: i, message: `${symbol || `Row ${i + 1}`}: the weight must be more than 0% and at most 100%.` });
    }
  });
  if (!rows.length) errors.push({ field, message: "Add at least one symbol with its weight." });
  else if (weightSum(rows) > 100 + SUM_TOLERANCE) {
    errors.push({ field, message: `The weights add up to ${weightSum(rows)}%; they must add up to at most 100%.` });
  }
  return errors;
}

/** Pure: rows → {"SPY": 0.6, ...} (fractions; the API's `allocation`). @param {WeightRow[]} rows */
export function allocationBody(rows) {
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const row of rows) {
    const symbol = row.symbol.trim().toUpperCase();
    if (symbol) out[symbol] = fromPercent(row.weight);
  }
  return out;
}

/** Pure: {"SPY": 0.6} → rows in percent (starting a form from an earlier run). @param {Record<string, number> | null | undefined} allocation */
export function rowsOf(allocation) {
  return Object.entries(allocation || {}).map(([symbol, w]) => ({ symbol, weight: Number((w * 100).toPrecision(12)) }));
}

/**
 * Pure: the cash-flow fields' errors. `amount` is what the box holds (null when empty: no flows);
 * `range` the backtest's start and end dates (the API refuses flow dates outside them).
 * @param {{amount: unknown, frequency: string, start: string, end: string}} flow
 * @param {{first?: string, last?: string}} range
 * @returns {FieldError[]}
 */
export function cashFlowErrors({ amount, frequency, start, end }, { first, last }) {
  /** @type {FieldError[]} */
  const errors = [];
  if (amount === null) return errors;
  if (typeof amount !== "number" || amount === 0) {
    errors.push({ field: "cash_flows.amount", message: "Enter an amount other than 0 (negative for a withdrawal)." });
  }
  if (!FREQUENCIES.includes(/** @type {any} */ (frequency))) {
    errors.push({ field: "cash_flows.frequency", message: "Choose monthly, quarterly or yearly." });
  }
  for (const [key, text, label] of [["start_date", start.trim(), "first flow"], ["end_date", end.trim(), "last flow"]]) {
    if (!text) continue;
    if (!isIsoDate(text)) errors.push({ field: `cash_flows.${key}`, message: `Enter the ${label} date as YYYY-MM-DD.` });
    else if ((first && text < first) || (last && text > last)) {
      errors.push({ field: `cash_flows.${key}`, message: `Flows must fall inside the backtest's period, ${first} to ${last}.` });
    }
  }
  if (isIsoDate(start.trim()) && isIsoDate(end.trim()) && end.trim() < start.trim()) {
    errors.push({ field: "cash_flows.end_date", message: "The last flow date must not be before the first." });
  }
  return errors;
}

/**
 * Pure: the request's `cash_flows`, or null without an amount.
 * @param {{amount: unknown, frequency: string, start: string, end: string}} flow
 */
export function cashFlowBody({ amount, frequency, start, end }) {
  if (amount === null) return null;
  /** @type {Record<string, unknown>} */
  const out = { amount, frequency };
  if (start.trim()) out.start_date = start.trim();
  if (end.trim()) out.end_date = end.trim();
  return out;
}

/**
 * Pure: one benchmark draft → the request entry ("SPY" or {name, allocation, rebalancing}).
 * @param {BenchmarkDraft} draft
 */
export function benchmarkEntry(draft) {
  if (draft.kind === "symbol") return draft.symbol;
  return { name: draft.name.trim(), allocation: allocationBody(draft.rows), rebalancing: draft.rebalancing };
}

/**
 * Pure: the benchmarks' errors, named `benchmarks[i]` (the request path, the primary being
 * entry 0 when there is one; an allocation's own as `benchmarks[i].allocation`). `primary` is the
 * one-symbol Benchmark select of the form ("" for none); it counts towards the limit.
 * @param {BenchmarkDraft[]} drafts @param {string} primary @param {Set<string>} known
 * @param {number} [max] the API's limit (GET /v1/symbols: limits.max_benchmarks)
 * @returns {FieldError[]}
 */
export function benchmarkErrors(drafts, primary, known, max = MAX_BENCHMARKS) {
  /** @type {FieldError[]} */
  const errors = [];
  const total = drafts.length + (primary ? 1 : 0);
  if (total > max) errors.push({ field: "benchmarks", message: `At most ${max} benchmarks in all (${total} chosen).` });
  const names = new Set(primary ? [primary] : []);
  drafts.forEach((d, j) => {
    const field = `benchmarks[${j + (primary ? 1 : 0)}]`;
    const name = d.kind === "symbol" ? d.symbol : d.name.trim();
    if (!name) errors.push({ field, message: d.kind === "symbol" ? "Choose a symbol." : "Give the allocation a name." });
    else if (names.has(name)) errors.push({ field, message: `${name} is already a benchmark.` });
    names.add(name);
    if (d.kind === "allocation") errors.push(...allocationErrors(d.rows, known, `${field}.allocation`).map(({ field: f, message }) => ({ field: f, message })));
  });
  return errors;
}

/**
 * Pure: the request's benchmark fields. Without extra benchmarks the one-symbol `benchmark`
 * stays as it is; with some, every benchmark goes in `benchmarks` (the primary first).
 * @param {string} primary @param {BenchmarkDraft[]} drafts
 * (`benchmark: undefined` then overrides the select's value: JSON leaves it out.)
 * @returns {{benchmark?: string, benchmarks?: (string | object)[]}}
 */
export function benchmarkFields(primary, drafts) {
  if (!drafts.length) return primary ? { benchmark: primary } : {};
  return { benchmark: undefined, benchmarks: [...(primary ? [primary] : []), ...drafts.map(benchmarkEntry)] };
}

/**
 * Pure: an earlier run's benchmarks → [primary, the other drafts] (for "Run again with changes").
 * @param {Record<string, any>} cfg @returns {[string, BenchmarkDraft[]]}
 */
export function benchmarkDrafts(cfg) {
  const list = Array.isArray(cfg.benchmarks) ? cfg.benchmarks : [];
  const primary = typeof cfg.benchmark === "string" ? cfg.benchmark : typeof list[0] === "string" ? list[0] : "";
  const rest = list.filter((b, i) => !(typeof b === "string" && b === primary && i === list.indexOf(primary)));
  return [primary, rest.map((b) => (typeof b === "string" ? { kind: "symbol", symbol: b }
    : { kind: "allocation", name: String(b.name || ""), rows: rowsOf(b.allocation), rebalancing: String(b.rebalancing || "monthly") }))];
}
