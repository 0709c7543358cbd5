// Labels and unit conversions of the new-backtest form (app/web/js/labels.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { fromPercent, paramHint, paramLabel, parseNumber, shiftYears, strategyLabel, toPercent } from "../../app/web/js/labels.js";

test("strategy and parameter names read as words", () => {
  assert.equal(strategyLabel({ name: "short-term-reversal" }), "Short-term reversal");
  assert.equal(strategyLabel({ name: "momentum" }), "Momentum");
  assert.equal(strategyLabel({ name: "equal-weight" }), "Equal weight");
  assert.equal(strategyLabel({ name: "Already Named" }), "Already Named");
  assert.equal(strategyLabel(undefined), "");
  assert.equal(paramLabel("top_n"), "Top N");
  assert.equal(paramLabel("lookback_days"), "Lookback days");
});

test("a parameter hint is a sentence plus its range", () => {
  assert.equal(paramHint({ description: "number of stocks held", min: 1, max: 100, default: 20 }), "Number of stocks held. Range 1–100, default 20.");
  assert.equal(paramHint({ description: "Already a sentence." }), "Already a sentence.");
  assert.equal(paramHint({ min: null, max: null, default: 3 }), "");
});

test("percent ↔ fraction round trips without binary noise", () => {
  for (const percent of [0, 0.01, 0.1, 0.05, 1.7, 5, 10, 20, 33.3]) {
    const fraction = fromPercent(percent);
    assert.equal(fraction, Number((percent / 100).toPrecision(12)));
    assert.equal(toPercent(fraction), percent);
  }
  assert.equal(fromPercent(0.1), 0.001);
  assert.equal(fromPercent(null), null);
  assert.equal(fromPercent("abc"), "abc");
  assert.equal(toPercent(undefined), "");
});

test("typed numbers: empty is null, junk stays text for the API to name", () => {
  assert.equal(parseNumber(" 12.5 "), 12.5);
  assert.equal(parseNumber(""), null);
  assert.equal(parseNumber("  "), null);
  assert.equal(parseNumber("1e3"), 1000);
  assert.equal(parseNumber("12abc"), "12abc");
});

test("shiftYears moves whole UTC years", () => {
  assert.equal(shiftYears("2024-08-26", -5), "2019-08-26");
  assert.equal(shiftYears("2020-02-29", 1), "2021-03-01");
});
