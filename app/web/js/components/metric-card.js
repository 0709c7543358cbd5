// @ts-check
// One metric, named, formatted and coloured the same way everywhere (metrics.js).

import { h } from "../dom.js";
import { BY_KEY, formatMetric, metricTone } from "../metrics.js";

/** A big card: label over value. @param {string} key @param {unknown} value */
export function metricCard(key, value) {
  const def = BY_KEY[key];
  return h("div", { class: "metric", dataset: { metric: key, value: value ?? "" }, title: def.help },
    h("div", { class: "metric-label" }, def.label),
    h("div", { class: `metric-value ${metricTone(key, value)}`.trim() }, formatMetric(key, value)));
}

/** A term–value row of a <dl>. @param {string} key @param {unknown} value */
export function metricRow(key, value) {
  const def = BY_KEY[key];
  return h("div", { class: "kv", dataset: { metric: key, value: value ?? "" }, title: def.help },
    h("dt", {}, def.label), h("dd", { class: metricTone(key, value) }, formatMetric(key, value)));
}

/**
 * A grid of metric cards.
 * @param {string[]} keys @param {Record<string, unknown>} values @param {{id: string, className?: string}} spec
 */
export function metricGrid(keys, values, { id, className = "metric-grid" }) {
  return h("div", { class: className, id }, keys.map((k) => metricCard(k, values[k])));
}
