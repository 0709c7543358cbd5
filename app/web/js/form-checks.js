// @ts-check
// The new-backtest form's own checks, made before anything is posted and worded in
// the user's terms (dollars, percent, ISO dates). The bounds are the API's
// (GET /v1/symbols: `limits`, first_date, last_date), never copied here. Pure
// (tests/web/form-checks.test.mjs).

import { money } from "./format.js";
import { shiftYears } from "./labels.js";

/** @typedef {import("./api-errors.js").FieldError} FieldError */
/** @typedef {{min_capital: number, max_capital: number, max_span_years: number}} PeriodLimits */

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Is `text` a real calendar date written YYYY-MM-DD? @param {string} text */
export function isIsoDate(text) {
  if (!ISO_DATE.test(text)) return false;
  const d = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === text;
}

/**
 * What is wrong with one date box, or null: empty, not YYYY-MM-DD, outside the data.
 * @param {string} text @param {string} label @param {{first?: string, last?: string}} range
 */
export function dateError(text, label, { first, last }) {
  const value = text.trim();
  if (!value) return `Enter the ${label} as YYYY-MM-DD.`;
  if (!isIsoDate(value)) return `Enter the ${label} as YYYY-MM-DD, e.g. ${last || "2019-12-31"}.`;
  if ((first && value < first) || (last && value > last)) return `The data runs from ${first} to ${last}.`;
  return null;
}

/**
 * Pure: the dates' and the capital's errors. `capital` is what the box holds
 * (a number, null when empty, the text when it is no number).
 * @param {{start: string, end: string, capital: unknown}} values
 * @param {{first_date: string, last_date: string, limits: PeriodLimits}} universe
 * @returns {FieldError[]}
 */
export function periodErrors({ start, end, capital }, { first_date: first, last_date: last, limits }) {
  /** @type {FieldError[]} */
  const errors = [];
  const startError = dateError(start, "start date", { first, last });
  const endError = dateError(end, "end date", { first, last });
  if (startError) errors.push({ field: "start_date", message: startError });
  if (endError) errors.push({ field: "end_date", message: endError });
  if (!startError && !endError) {
    if (end.trim() <= start.trim()) errors.push({ field: "end_date", message: "The end date must be after the start date." });
    else if (end.trim() > shiftYears(start.trim(), limits.max_span_years)) {
      errors.push({ field: "end_date", message: `The period can be at most ${limits.max_span_years} years.` });
    }
  }
  const range = `${money(limits.min_capital, 0)} and ${money(limits.max_capital, 0)}`;
  if (typeof capital !== "number" || capital < limits.min_capital || capital > limits.max_capital) {
    errors.push({ field: "initial_capital", message: `Initial capital must be between ${range}.` });
  }
  return errors;
}
