// Compare over the common period: the overlap of the runs' dates, metrics recomputed
// there with the engine's conventions, and ranking only where periods agree.
import assert from "node:assert/strict";
import { test } from "node:test";

import { benchmarkColumn, clip, commonPeriod, periodMetrics, periodsDiffer } from "../../app/web/js/compare-period.js";
import { clippedChart, comparable, shownMetrics } from "../../app/web/js/views/compare.js";

/** Business days from `start`, one row per value. */
function rows(start, values, extra = {}) {
  const out = [];
  const day = new Date(`${start}T00:00:00Z`);
  for (const v of values) {
    while ([0, 6].includes(day.getUTCDay())) day.setUTCDate(day.getUTCDate() + 1);
    const row = { date: day.toISOString().slice(0, 10), equity: v };
    for (const [k, f] of Object.entries(extra)) row[k] = f(v);
    out.push(row);
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return out;
}

test("commonPeriod: latest start to earliest end; null without overlap", () => {
  const a = { start: "2015-01-02", end: "2019-12-31" };
  const b = { start: "2017-03-01", end: "2021-06-30" };
  assert.deepEqual(commonPeriod([a, b]), { start: b.start, end: a.end });
  assert.equal(commonPeriod([a, { start: "2020-01-02", end: "2021-01-04" }]), null);
  assert.equal(periodsDiffer([a, b]), true);
  assert.equal(periodsDiffer([a, { ...a }]), false);
});

test("periodMetrics: total return, CAGR, drawdown and ratios by the engine's formulas", () => {
  const values = [100, 104, 99, 120, 90, 95, 130, 128];
  const r = rows("2020-01-02", values);
  const m = periodMetrics(r, { riskFreeRate: 0.02 });
  assert.equal(m.total_return, 128 / 100 - 1);
  const days = (Date.parse(r.at(-1).date) - Date.parse(r[0].date)) / 86400000;
  assert.ok(Math.abs(m.cagr - ((1.28 ** (365.25 / days)) - 1)) < 1e-12);
  assert.equal(m.max_drawdown, 90 / 120 - 1);
  assert.ok(Math.abs(m.calmar_ratio - m.cagr / 0.25) < 1e-12);
  // independent two-pass statistics over the returns
  const ret = values.slice(1).map((v, i) => v / values[i] - 1);
  const rfd = 1.02 ** (1 / 252) - 1;
  const x = ret.map((v) => v - rfd);
  const avg = (a) => a.reduce((s, v) => s + v, 0) / a.length;
  const sd = (a) => Math.sqrt(a.reduce((s, v) => s + (v - avg(a)) ** 2, 0) / (a.length - 1));
  assert.ok(Math.abs(m.volatility - sd(ret) * Math.sqrt(252)) < 1e-12);
  assert.ok(Math.abs(m.sharpe_ratio - avg(x) / sd(x) * Math.sqrt(252)) < 1e-9);
  const down = Math.sqrt(avg(x.map((v) => Math.min(v, 0) ** 2)));
  assert.ok(Math.abs(m.sortino_ratio - avg(x) * Math.sqrt(252) / down) < 1e-9);
});

test("periodMetrics: flat equity has no Sharpe, one row has nothing", () => {
  const flat = periodMetrics(rows("2020-01-02", [100, 100, 100, 100]));
  assert.equal(flat.sharpe_ratio, null);
  assert.equal(flat.volatility, 0);
  assert.equal(flat.max_drawdown, 0);
  assert.equal(periodMetrics(rows("2020-01-02", [100])).total_return, null);
});

test("periodMetrics: the benchmark column's return over the same rows", () => {
  const r = rows("2020-01-02", [100, 110, 121], { benchmark_SPY: (v) => v * 2 + 50 });
  assert.equal(benchmarkColumn(r[0]), "benchmark_SPY");
  const m = periodMetrics(r, { benchmarkColumn: "benchmark_SPY" });
  assert.equal(m.benchmark_total_return, 292 / 250 - 1);
});

test("aligned compare: metrics over the overlap, ranking only for recomputed rows", () => {
  const long = rows("2020-01-02", Array.from({ length: 60 }, (_, i) => 100 * 1.01 ** i));
  const late = rows(long[20].date, Array.from({ length: 60 }, (_, i) => 50 + i));
  const runs = [long, late].map((rs, i) => ({
    id: String(i), label: String(i), rows: rs, period: { start: rs[0].date, end: rs.at(-1).date },
    status: { metrics: { total_return: 9, win_rate: 0.5 + i / 10 }, config: {} }, chart: {},
  }));
  const common = commonPeriod(runs.map((r) => r.period));
  assert.deepEqual(common, { start: late[0].date, end: long.at(-1).date });
  const view = { common, differ: true, aligned: true, canAlign: true };
  const shown = shownMetrics(runs, view);
  const inside = clip(long, common);
  assert.equal(shown[0].total_return, inside.at(-1).equity / inside[0].equity - 1);
  assert.equal(shown[1].total_return, late[39].equity / late[0].equity - 1);
  assert.equal(shown[0].win_rate, 0.5); // trade statistics stay each run's own
  assert.equal(comparable("total_return", view), true);
  assert.equal(comparable("win_rate", view), false);
  const unaligned = { ...view, aligned: false };
  assert.equal(shownMetrics(runs, unaligned)[0].total_return, 9);
  assert.equal(comparable("total_return", unaligned), false);
  assert.equal(comparable("win_rate", { ...view, differ: false }), true);
  const chart = { equity_curve: long.map((r) => ({ date: r.date, equity: r.equity })), drawdown_series: [] };
  const clipped = clippedChart({ ...runs[0], chart }, common).equity_curve;
  assert.equal(clipped[0].date, common.start);
  assert.equal(clipped.at(-1).date, common.end);
});
