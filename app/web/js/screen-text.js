// @ts-check
// Words for a custom screen (filter_criteria): factor labels and value units for the
// builder, and one line per rule for a result page. The form's convention: values of
// return-like factors are typed in percent and sent as fractions (the API's unit).
// Pure (tests/web/screen-text.test.mjs).

import { fromPercent, toPercent } from "./labels.js";

/**
 * @typedef {{label: string, window: number | null, unit: string, percent?: boolean}} FactorText
 * @typedef {{factor: string, window?: number | string | null}} FactorRef
 * @typedef {FactorRef & {op: string, value?: number | string | null, other?: FactorRef}} Rule
 * @typedef {{filters?: Rule[], rank_by?: FactorRef, ascending?: boolean, top_n?: number | string | null,
 *   weighting?: string, universe?: string[]}} Criteria
 */

/** How the app words each factor the API names: label, default window, value unit. */
/** @type {Record<string, FactorText>} */
export const FACTOR_TEXT = {
  close: { label: "Close price", window: null, unit: "price in $" },
  return: { label: "Return", window: 126, unit: "%, e.g. 10 = +10%", percent: true },
  sma: { label: "Simple moving average", window: 200, unit: "price in $" },
  ema: { label: "Exponential moving average", window: 50, unit: "price in $" },
  volatility: { label: "Volatility (annualised)", window: 63, unit: "% a year, e.g. 25", percent: true },
  rsi: { label: "RSI", window: 14, unit: "0–100" },
  avg_dollar_volume: { label: "Avg dollar volume", window: 20, unit: "$ per day" },
  drawdown_from_high: { label: "Drawdown from high", window: 252, unit: "%, e.g. -20 = 20% below the high", percent: true },
};

/** @type {Record<string, string>} */
export const WEIGHTING_TEXT = { equal: "Equal weight", inverse_volatility: "Inverse volatility" };

/** Does the form show this factor's values in percent? @param {string} factor */
export const isPercentFactor = (factor) => Boolean(FACTOR_TEXT[factor]?.percent);

/** A rule's value as the form shows it (percent for return-like factors). @param {string} factor @param {unknown} value */
export function valueForForm(factor, value) {
  return isPercentFactor(factor) && typeof value === "number" ? toPercent(value) : value;
}

/** What the form's value box holds, in the API's unit (fractions). @param {string} factor @param {unknown} value */
export function valueForApi(factor, value) {
  return isPercentFactor(factor) ? fromPercent(value) : value;
}

/** "Return (126 d)", "Close price". @param {FactorRef | undefined} ref */
export function factorText(ref) {
  if (!ref) return "—";
  const label = FACTOR_TEXT[ref.factor]?.label ?? ref.factor;
  return ref.window ? `${label} (${ref.window} d)` : label;
}

/** "Return (126 d) > 0%", "Close price > Simple moving average (200 d)". @param {Rule} rule */
export function ruleText(rule) {
  if (rule.other) return `${factorText(rule)} ${rule.op} ${factorText(rule.other)}`;
  const shown = valueForForm(rule.factor, rule.value);
  const unit = isPercentFactor(rule.factor) && typeof rule.value === "number" ? "%" : "";
  return `${factorText(rule)} ${rule.op} ${shown ?? "—"}${unit}`;
}

/**
 * A screen as readable lines: each filter, the ranking, the weighting.
 * @param {Criteria | null | undefined} criteria @returns {string[]}
 */
export function describeScreen(criteria) {
  if (!criteria) return [];
  const filters = criteria.filters || [];
  const lines = filters.length ? filters.map((r) => `Keep if ${ruleText(r)}`) : ["No filters"];
  if (criteria.rank_by) {
    const order = criteria.ascending ? "lowest first" : "highest first";
    lines.push(`Rank by ${factorText(criteria.rank_by)}, ${order}, keep the top ${criteria.top_n ?? "—"}`);
  }
  lines.push(WEIGHTING_TEXT[criteria.weighting ?? "equal"] ?? String(criteria.weighting));
  if (criteria.universe?.length) lines.push(`Within ${criteria.universe.length} listed symbols`);
  return lines;
}
