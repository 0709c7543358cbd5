// @ts-check
// How each metric is named, formatted and coloured (results and compare share this).
// The command line prints them alike (app/cli/output.py; tests/unit/test_cli_output.py
// formats every metric through both and compares).

import { int, money, num, pct, tone } from "./format.js";

/** @typedef {"pctSigned" | "pct" | "ratio" | "int" | "days" | "money"} Kind */
/** @typedef {{key: string, label: string, kind: Kind, better: "high" | "low" | null, help: string}} MetricDef */

/** @type {Record<Kind, (v: unknown) => string>} */
const KIND = {
  pctSigned: (v) => pct(v, { signed: true }),
  pct: (v) => pct(v),
  ratio: (v) => num(v, 2),
  int: (v) => int(v),
  days: (v) => (typeof v === "number" ? `${int(v)} days` : "—"),
  money: (v) => money(v, 0),
};

// [key, label, kind, better ("high" | "low" | null), help]
// better is null where a higher value is not a better run: counts, exposure, and the
// benchmark's own return (it describes the yardstick, so Compare never ranks it).
/** @type {MetricDef[]} */
export const METRICS = /** @type {[string, string, Kind, "high" | "low" | null, string][]} */ ([
  ["total_return", "Total return", "pctSigned", "high", "Change in equity over the whole period, dividends and costs included."],
  ["cagr", "CAGR", "pctSigned", "high", "Compound annual growth rate."],
  ["sharpe_ratio", "Sharpe ratio", "ratio", "high", "Annualised excess return per unit of volatility."],
  ["sortino_ratio", "Sortino ratio", "ratio", "high", "Like Sharpe, counting only downside volatility."],
  ["max_drawdown", "Max drawdown", "pct", "high", "Largest peak-to-trough fall in equity."],
  ["position_win_rate", "Win rate", "pct", "high", "Share of closed positions with a profit (a position: a symbol held from its first buy to the sell that empties it)."],
  ["position_profit_factor", "Profit factor", "ratio", "high", "Gross profit divided by gross loss of closed positions."],
  ["total_positions", "Positions", "int", null, "Symbols held continuously from a first buy to the sell that empties them (open ones included)."],
  ["closed_positions", "Closed positions", "int", null, "Positions sold out before the end."],
  ["avg_position_return", "Average position", "pctSigned", "high", "Mean return of closed positions (P&L over cost)."],
  ["best_position_return", "Best position", "pctSigned", "high", "Best closed position."],
  ["worst_position_return", "Worst position", "pctSigned", "high", "Worst closed position."],
  ["avg_holding_days", "Average holding", "days", null, "Mean calendar days a closed position was held."],
  ["total_fills", "Fills", "int", null, "Executed buys and sells."],
  ["total_lots", "Lots", "int", null, "FIFO round trips: the shares of one buy until sold."],
  ["win_rate", "Lot win rate", "pct", "high", "Share of closed lots (FIFO round trips) with a profit."],
  ["profit_factor", "Lot profit factor", "ratio", "high", "Gross profit divided by gross loss of closed lots."],
  ["total_trades", "Lots", "int", null, "FIFO round trips (older name of total_lots)."],
  ["benchmark_total_return", "Benchmark return", "pctSigned", null, "Total return of the benchmark over the same days."],
  ["benchmark_cagr", "Benchmark CAGR", "pctSigned", null, "Compound annual growth rate of the benchmark."],
  ["alpha", "Alpha", "pctSigned", "high", "Annualised Jensen's alpha against the benchmark."],
  ["beta", "Beta", "ratio", null, "Sensitivity of daily returns to the benchmark's."],
  ["correlation", "Correlation", "ratio", null, "Correlation of daily returns with the benchmark's."],
  ["tracking_error", "Tracking error", "pct", "low", "Annualised volatility of the return difference."],
  ["information_ratio", "Information ratio", "ratio", "high", "Annualised excess return over tracking error."],
  ["volatility", "Volatility", "pct", "low", "Annualised standard deviation of daily returns."],
  ["calmar_ratio", "Calmar ratio", "ratio", "high", "CAGR divided by the maximum drawdown."],
  ["max_drawdown_duration_days", "Longest drawdown", "days", "low", "Calendar days from a peak until equity regained it."],
  ["final_equity", "Final equity", "money", "high", "Portfolio value on the last day."],
  ["exposure", "Exposure", "pct", null, "Average share of equity invested."],
  ["turnover", "Turnover (annual)", "pct", null, "One-way traded value per year as a share of average equity."],
  ["avg_trade_return", "Average lot", "pctSigned", "high", "Mean return of closed lots."],
  ["best_trade_return", "Best lot", "pctSigned", "high", "Best closed lot."],
  ["worst_trade_return", "Worst lot", "pctSigned", "high", "Worst closed lot."],
  ]).map(([key, label, kind, better, help]) => ({ key, label, kind, better, help }));

/** @type {Record<string, MetricDef>} */
export const BY_KEY = Object.fromEntries(METRICS.map((m) => [m.key, m]));

export const HEADLINE = ["total_return", "cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown", "position_win_rate", "position_profit_factor", "total_positions"];
export const BENCHMARK = ["benchmark_total_return", "benchmark_cagr", "alpha", "beta", "correlation", "tracking_error", "information_ratio"];
export const DETAIL = ["volatility", "calmar_ratio", "max_drawdown_duration_days", "final_equity", "exposure", "turnover", "avg_position_return", "best_position_return", "worst_position_return", "avg_holding_days", "closed_positions", "total_fills", "total_lots", "win_rate", "avg_trade_return"];

/** @param {string} key @param {unknown} value */
export function formatMetric(key, value) {
  const def = BY_KEY[key];
  return def ? KIND[def.kind](value) : num(value, 4);
}

/** @param {string} key @param {unknown} value @returns {"gain" | "loss" | ""} */
export function metricTone(key, value) {
  const def = BY_KEY[key];
  if (!def) return "";
  if (key === "max_drawdown") return typeof value === "number" && value < 0 ? "loss" : "";
  if (def.kind === "pctSigned" || key === "sharpe_ratio" || key === "sortino_ratio") return tone(value);
  return "";
}
