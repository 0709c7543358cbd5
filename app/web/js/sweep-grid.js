// @ts-check
// A sweep's grid as the form edits it: rows of {key, mode, list | range} → the API's
// `grid` object, the number of combinations, and the cap message. Pure (no DOM), so
// Node's test runner covers it (tests/web/sweep-grid.test.mjs).
//
// Conventions (the API's, app/sweeps/grid.py): a range {start, stop, step} includes
// `stop`; its length is floor((stop - start) / step + 1e-9) + 1. The grid's size is
// the product of every key's length (invalid combinations are dropped by the server
// and reported as `skipped_combinations`). Commission and slippage are typed in percent
// like the backtest form and sent as fractions.

import { fromPercent } from "./labels.js";

/** @typedef {{key: string, mode: "list" | "range", list: string, start: string, stop: string, step: string}} GridRow */
/** @typedef {{values: number, error: string}} RowSize */

export const PERCENT_KEYS = new Set(["commission", "slippage"]);
export const CHOICE_KEYS = /** @type {Record<string, string[]>} */ ({
  rebalancing: ["daily", "weekly", "monthly", "quarterly"],
  execution: ["next_open", "close"],
});

/** "5, 10 20" → [5, 10, 20]; words stay strings ("weekly, monthly"). @param {string} text */
export function parseList(text) {
  return text.split(/[\s,;]+/).filter(Boolean).map((t) => {
    const n = Number(t);
    return Number.isFinite(n) ? n : t;
  });
}

/** The length of a range, or an error text. @param {unknown} start @param {unknown} stop @param {unknown} step */
export function rangeLength(start, stop, step) {
  const nums = [start, stop, step].map((v) => (v === "" || v === null || v === undefined ? NaN : Number(v)));
  if (nums.some((n) => !Number.isFinite(n))) return { values: 0, error: "Start, stop and step must be numbers." };
  const [a, b, s] = nums;
  if (s <= 0 || b < a) return { values: 0, error: "Needs step > 0 and start ≤ stop." };
  return { values: Math.floor((b - a) / s + 1e-9) + 1, error: "" };
}

/** How many values a row gives, or why it gives none. @param {GridRow} row @returns {RowSize} */
export function rowSize(row) {
  if (!row.key) return { values: 0, error: "Choose a parameter." };
  if (row.mode === "range") return rangeLength(row.start, row.stop, row.step);
  const values = parseList(row.list);
  if (!values.length) return { values: 0, error: "Give at least one value." };
  if (new Set(values.map(String)).size !== values.length) return { values: 0, error: "A value is repeated." };
  return { values: values.length, error: "" };
}

/** The product of the rows' lengths (0 when a row is invalid or there is none). @param {GridRow[]} rows */
export function combinationCount(rows) {
  if (!rows.length) return 0;
  return rows.reduce((total, row) => total * rowSize(row).values, 1);
}

/** One row's value for the API: a list, or {start, stop, step}; percent keys as fractions. @param {GridRow} row */
function rowValue(row) {
  const scale = PERCENT_KEYS.has(row.key) ? fromPercent : (/** @type {unknown} */ v) => v;
  if (row.mode === "range") {
    return { start: scale(Number(row.start)), stop: scale(Number(row.stop)), step: scale(Number(row.step)) };
  }
  return parseList(row.list).map(scale);
}

/** The API's `grid` object, in row order (the last key varies fastest). @param {GridRow[]} rows */
export function gridBody(rows) {
  return Object.fromEntries(rows.filter((r) => r.key).map((r) => [r.key, rowValue(r)]));
}

/**
 * The line under the grid: "12 combinations · the free tier allows up to 100 per sweep".
 * @param {number} count @param {{tier: string, max_combinations: number} | null} limits
 */
export function capMessage(count, limits) {
  const n = count.toLocaleString("en-US");
  const noun = count === 1 ? "combination" : "combinations";
  if (!limits) return { text: `${n} ${noun}`, over: false };
  const cap = limits.max_combinations.toLocaleString("en-US");
  const over = count > limits.max_combinations;
  const text = over
    ? `${n} ${noun}: over the ${limits.tier} tier's cap of ${cap} per sweep. Narrow the grid.`
    : `${n} ${noun} · the ${limits.tier} tier allows up to ${cap} per sweep`;
  return { text, over };
}

/**
 * What the form refuses before posting: unusable rows (on their field), no row, a key
 * twice, a grid over the cap (on the grid).
 * @param {GridRow[]} rows @param {{tier: string, max_combinations: number} | null} limits
 * @returns {{field: string, message: string}[]}
 */
export function gridErrors(rows, limits) {
  const out = rows.flatMap((v) => {
    const size = rowSize(v);
    return size.error ? [{ field: `grid.${v.key}`, message: size.error }] : [];
  });
  const keys = rows.map((v) => v.key);
  if (!rows.length) out.push({ field: "grid", message: "Add at least one parameter to vary." });
  if (new Set(keys).size !== keys.length) out.push({ field: "grid", message: "Each parameter may appear once." });
  const cap = capMessage(combinationCount(rows), limits);
  if (cap.over) out.push({ field: "grid", message: cap.text });
  return out;
}

/** Rows valued from an earlier sweep's `grid` (lists and ranges as given). @param {Record<string, any>} grid @returns {GridRow[]} */
export function rowsFromGrid(grid) {
  return Object.entries(grid || {}).map(([key, spec]) => {
    const pctScale = (/** @type {unknown} */ v) => (PERCENT_KEYS.has(key) && typeof v === "number" ? Number((v * 100).toPrecision(12)) : v);
    if (Array.isArray(spec)) return { key, mode: "list", list: spec.map(pctScale).join(", "), start: "", stop: "", step: "" };
    return { key, mode: "range", list: "", start: String(pctScale(spec.start)), stop: String(pctScale(spec.stop)), step: String(pctScale(spec.step)) };
  });
}

/**
 * A heatmap cell's colour from its value's place between the lowest and highest:
 * red (worst) → white → green (best); `lowerIsBetter` flips it. Null → "".
 * @param {number | null} value @param {number} lo @param {number} hi @param {boolean} lowerIsBetter
 */
export function cellColor(value, lo, hi, lowerIsBetter) {
  if (value === null || !Number.isFinite(value)) return "";
  let t = hi > lo ? (value - lo) / (hi - lo) : 0.5;
  if (lowerIsBetter) t = 1 - t;
  const [r, g, b] = t < 0.5 ? [220, 60 + 390 * t, 60 + 390 * t] : [450 - 390 * t, 200, 450 - 390 * t];
  return `rgb(${Math.round(r)}, ${Math.round(Math.min(g, 255))}, ${Math.round(Math.min(b, 255))})`;
}
