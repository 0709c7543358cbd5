// @ts-check
// The survivorship-bias note of a result page (metrics.data_coverage, README "Data and its limits").

import { h } from "../dom.js";

/**
 * A visible note when the result's data coverage is not "low" bias; null otherwise.
 * @param {Record<string, any>} metrics
 */
export function coverageNote(metrics) {
  const c = metrics?.data_coverage;
  if (!c || c.survivorship_bias === "low") return null;
  const text = c.survivorship_bias === "unknown" || typeof c.share !== "number"
    ? `Survivorship bias ${c.survivorship_bias}: ${c.reason || "the data's coverage of the index is not known"}.`
    : `Survivorship bias ${c.survivorship_bias}: the data has prices for ${(c.share * 100).toFixed(1)}% `
      + `of the ${c.index}'s member-days of this period; ${c.members_without_prices} of its `
      + `${c.members} members have none and could never be held, so results are flattered`
      + `${c.universe === "all" ? "; this run could also pick stocks before they joined the index (universe \"all\")" : ""}.`;
  return h("div", { class: "alert alert-warn", role: "note", id: "coverage-note", dataset: { bias: c.survivorship_bias } }, text);
}
