// @ts-check
// Compare over the common period: pure functions on full-resolution daily equity
// (GET /v1/backtest/{id}/equity?format=json rows). The return and risk metrics are
// recomputed over the overlapping dates with the engine's conventions
// (app/engine/metrics.py; README "Engine conventions"):
//   r_t = E_t / E_{t-1} - 1; rf_d = (1 + rf)^(1/252) - 1; x = r - rf_d;
//   total_return = E_end / E_0 - 1; cagr = (E_end / E_0)^(365.25 / calendar days) - 1;
//   volatility = std(r) * sqrt(252) (sample std); sharpe = mean(x) / std(x) * sqrt(252);
//   sortino = mean(x) * 252 / (sqrt(mean(min(x, 0)^2)) * sqrt(252));
//   max_drawdown = min(E_t / max_{s<=t} E_s - 1); calmar = cagr / |max_drawdown|.
// E_0 is the equity at the close of the common period's first session, so every run
// starts the comparison from the same day.

const P = 252;
const DAYS_PER_YEAR = 365.25;
const ZERO_DISPERSION_RTOL = 1e-12;

/** The keys recomputed over the common period (the others depend on trades). */
export const ALIGNED_KEYS = ["total_return", "cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown", "volatility", "calmar_ratio", "benchmark_total_return", "benchmark_cagr"];

/** @typedef {{start: string, end: string}} Period */
/** @typedef {{date: string, equity: number, [column: string]: unknown}} EquityRow */

/**
 * The dates every run covers: the latest start to the earliest end (ISO dates compare
 * as strings); null when the runs do not overlap. @param {Period[]} periods
 * @returns {Period | null}
 */
export function commonPeriod(periods) {
  if (!periods.length) return null;
  const start = periods.map((p) => p.start).reduce((a, b) => (b > a ? b : a));
  const end = periods.map((p) => p.end).reduce((a, b) => (b < a ? b : a));
  return start <= end ? { start, end } : null;
}

/** Whether the runs cover different dates. @param {Period[]} periods */
export function periodsDiffer(periods) {
  return periods.some((p) => p.start !== periods[0].start || p.end !== periods[0].end);
}

/** The rows of `rows` dated within `period` (inclusive). @param {EquityRow[]} rows @param {Period} period */
export function clip(rows, period) {
  return rows.filter((r) => r.date >= period.start && r.date <= period.end);
}

/** @param {number[]} xs */
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sample std (ddof = 1), 0 for a flat series. @param {number[]} xs */
function std(xs) {
  if (xs.length < 2) return null;
  const m = mean(xs);
  const spread = Math.max(...xs) - Math.min(...xs);
  if (spread <= ZERO_DISPERSION_RTOL * Math.max(...xs.map(Math.abs))) return 0;
  return Math.sqrt(xs.reduce((a, v) => a + (v - m) ** 2, 0) / (xs.length - 1));
}

/** @param {number | null} a @param {number | null} b */
const ratio = (a, b) => (a === null || b === null || b === 0 || !Number.isFinite(a / b) ? null : a / b);

/** @param {number[]} e @param {number} days */
function growth(e, days) {
  const total = e[e.length - 1] / e[0] - 1;
  return { total, cagr: days > 0 ? (1 + total) ** (DAYS_PER_YEAR / days) - 1 : null };
}

/** @param {string} a @param {string} b */
const calendarDays = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000);

/**
 * The return and risk metrics of a daily equity series (rows in date order), with
 * the benchmark's total return and CAGR when `benchmarkColumn` is given.
 * @param {EquityRow[]} rows @param {{riskFreeRate?: number, benchmarkColumn?: string | null}} [options]
 * @returns {Record<string, number | null>}
 */
export function periodMetrics(rows, { riskFreeRate = 0, benchmarkColumn = null } = {}) {
  /** @type {Record<string, number | null>} */
  const out = Object.fromEntries(ALIGNED_KEYS.map((k) => [k, null]));
  if (rows.length < 2) return out;
  const e = rows.map((r) => r.equity);
  const days = calendarDays(rows[0].date, rows[rows.length - 1].date);
  const { total, cagr } = growth(e, days);
  const r = e.slice(1).map((v, i) => v / e[i] - 1);
  const rfd = (1 + riskFreeRate) ** (1 / P) - 1;
  const x = r.map((v) => v - rfd);
  const sd = std(r);
  const sdx = std(x);
  const downside = Math.sqrt(mean(x.map((v) => Math.min(v, 0) ** 2))) * Math.sqrt(P);
  let peak = e[0];
  let maxDd = 0;
  for (const v of e) {
    peak = Math.max(peak, v);
    maxDd = Math.min(maxDd, v / peak - 1);
  }
  Object.assign(out, {
    total_return: total,
    cagr,
    volatility: sd === null ? null : sd * Math.sqrt(P),
    sharpe_ratio: sdx === null ? null : ratio(mean(x) * Math.sqrt(P), sdx),
    sortino_ratio: ratio(mean(x) * P, downside),
    max_drawdown: maxDd,
    calmar_ratio: ratio(cagr, Math.abs(maxDd)),
  });
  if (benchmarkColumn) {
    const b = rows.map((row) => Number(row[benchmarkColumn]));
    if (b.every((v) => Number.isFinite(v) && v > 0)) {
      const bg = growth(b, days);
      Object.assign(out, { benchmark_total_return: bg.total, benchmark_cagr: bg.cagr });
    }
  }
  return out;
}

/** The first `benchmark_*` column of an equity row, or null. @param {EquityRow | undefined} row */
export function benchmarkColumn(row) {
  return Object.keys(row || {}).find((k) => k.startsWith("benchmark_")) || null;
}
