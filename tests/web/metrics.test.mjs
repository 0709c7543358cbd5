// How each metric is named, formatted and coloured (app/web/js/metrics.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { BENCHMARK, BY_KEY, DETAIL, HEADLINE, METRICS, formatMetric, metricTone } from "../../app/web/js/metrics.js";
import { int, money, num, pct } from "../../app/web/js/format.js";

test("every metric shown by a group is defined once, with a label and help", () => {
  const keys = METRICS.map((m) => m.key);
  assert.equal(new Set(keys).size, keys.length);
  for (const key of [...HEADLINE, ...BENCHMARK, ...DETAIL]) {
    assert.ok(BY_KEY[key], key);
    assert.ok(BY_KEY[key].label && BY_KEY[key].help, key);
  }
  assert.equal(new Set([...HEADLINE, ...BENCHMARK, ...DETAIL]).size, HEADLINE.length + BENCHMARK.length + DETAIL.length);
});

test("each kind formats with the shared formatters", () => {
  const expected = {
    pctSigned: (v) => pct(v, { signed: true }),
    pct: (v) => pct(v),
    ratio: (v) => num(v, 2),
    int: (v) => int(v),
    days: (v) => `${int(v)} days`,
    money: (v) => money(v, 0),
  };
  for (const m of METRICS) {
    for (const v of [0.1234, -0.5, 1234.5]) assert.equal(formatMetric(m.key, v), expected[m.kind](v), `${m.key} ${v}`);
    assert.equal(formatMetric(m.key, null), "—", m.key);
  }
  assert.equal(formatMetric("total_return", 0.1), "+10.00%");
  assert.equal(formatMetric("max_drawdown_duration_days", 30), "30 days");
  assert.equal(formatMetric("unknown_metric", 1 / 3), "0.3333");
});

test("tones: signed returns and Sharpe/Sortino by sign, drawdown red when below zero", () => {
  assert.equal(metricTone("total_return", 0.2), "gain");
  assert.equal(metricTone("cagr", -0.1), "loss");
  assert.equal(metricTone("sharpe_ratio", -0.3), "loss");
  assert.equal(metricTone("sortino_ratio", 1.2), "gain");
  assert.equal(metricTone("max_drawdown", -0.2), "loss");
  assert.equal(metricTone("max_drawdown", 0), "");
  assert.equal(metricTone("beta", 1.5), "");
  assert.equal(metricTone("volatility", 0.2), "");
  assert.equal(metricTone("nope", 1), "");
});

test("the benchmark's own return is never ranked: it describes the yardstick, not the run", () => {
  for (const key of ["benchmark_total_return", "benchmark_cagr"]) assert.equal(BY_KEY[key].better, null, key);
  // the run's own returns and the relative metrics stay ranked
  for (const key of ["total_return", "cagr", "alpha", "information_ratio"]) assert.ok(BY_KEY[key].better, key);
});
