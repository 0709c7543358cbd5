// @ts-check
// The overfitting panel: the API's verdict, then PBO, DSR and the rest, each with a
// plain-language reading (conventions: README "Overfitting diagnostics").

import { h } from "../dom.js";
import { int, num, pct } from "../format.js";

/**
 * @typedef {{pbo?: number | null, lambda_median?: number | null, degradation?: number | null,
 *   dsr?: number | null, sr0?: number | null, n_trials?: number, blocks?: number,
 *   verdict?: string | null, reason?: string | null}} Overfitting
 */

/** @type {[keyof Overfitting, string, (v: any) => string, string][]} */
const FIGURES = [
  ["pbo", "Probability of backtest overfitting (PBO)", (v) => pct(v, { digits: 0 }),
    "The history is cut into blocks and split into halves every possible way. PBO is the share of splits where the combination that was best on one half ranked in the bottom half on the other. Near 0: the winner keeps winning; 0.5 or more: picking the best is no better than picking at random."],
  ["dsr", "Deflated Sharpe ratio (DSR)", (v) => pct(v, { digits: 0 }),
    "The probability that the best combination's Sharpe ratio beats what the luckiest of this many random trials would reach. Above 95% is significant; lower means the best result may be luck from trying many combinations."],
  ["sr0", "Luck threshold (SR₀, daily)", (v) => num(v, 4),
    "The daily Sharpe ratio the best of this many skill-less trials would be expected to reach; DSR compares the best combination with it."],
  ["degradation", "Out-of-sample Sharpe of the in-sample best (daily)", (v) => num(v, 4),
    "How the winner of each half did on the other half, on average. Compare with the in-sample figures: a large drop is the cost of choosing by hindsight."],
  ["lambda_median", "Median logit rank (λ)", (v) => num(v, 2),
    "The in-sample winner's out-of-sample rank on a log-odds scale: above 0 it ranked in the top half, below 0 in the bottom half."],
  ["n_trials", "Combinations compared", (v) => int(v), "Every finished combination counts as a trial; more trials make a high best Sharpe easier to reach by luck."],
  ["blocks", "Blocks (S)", (v) => int(v), "How many contiguous pieces the daily returns were cut into for the cross-validation."],
];

/** "likely" / "possibly" overfit → warn; otherwise info. @param {string} verdict */
export function verdictTone(verdict) {
  return /^(likely|possibly) overfit/.test(verdict) || /not significant/.test(verdict) ? "alert-warn" : "alert-success";
}

/** @param {Overfitting | null | undefined} over */
export function overfittingPanel(over) {
  const head = h("h2", { id: "overfitting-title" }, "Overfitting diagnostics");
  if (!over || over.pbo === null || over.pbo === undefined) {
    return h("section", { class: "card", id: "overfitting", "aria-labelledby": "overfitting-title" }, head,
      h("p", { class: "muted", id: "overfitting-reason" }, `No diagnostics: ${over?.reason || "the sweep did not complete"}.`));
  }
  const verdict = over.verdict || "";
  return h("section", { class: "card", id: "overfitting", "aria-labelledby": "overfitting-title" }, head,
    h("div", { class: `alert ${verdictTone(verdict)}`, role: "status", id: "overfitting-verdict" },
      h("strong", {}, "Verdict: "), verdict.charAt(0).toUpperCase() + verdict.slice(1), "."),
    h("dl", { class: "overfit-list" }, FIGURES.map(([key, label, fmt, help]) => h("div", { class: "overfit-item", dataset: { figure: key, value: over[key] ?? "" } },
      h("dt", {}, label), h("dd", { class: "num overfit-value" }, fmt(over[key])), h("dd", { class: "muted small" }, help)))),
    h("p", { class: "muted small" }, "Every figure can be recomputed from the daily returns file (Download returns)."));
}
