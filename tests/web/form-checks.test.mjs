// The new-backtest form's local checks (app/web/js/form-checks.js) and the words of a
// custom screen (app/web/js/screen-text.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { dateError, isIsoDate, periodErrors } from "../../app/web/js/form-checks.js";
import { describeScreen, ruleText, valueForApi, valueForForm } from "../../app/web/js/screen-text.js";

const UNIVERSE = {
  first_date: "2005-01-03",
  last_date: "2024-12-31",
  limits: { min_capital: 1000, max_capital: 10000000, max_span_years: 10 },
};
const ok = { start: "2015-01-01", end: "2019-12-31", capital: 100000 };

test("ISO dates only, and real calendar days", () => {
  assert.equal(isIsoDate("2019-02-28"), true);
  assert.equal(isIsoDate("2019-02-29"), false);
  assert.equal(isIsoDate("02/28/2019"), false);
  assert.equal(isIsoDate("2019-2-28"), false);
  assert.match(dateError("", "start date", {}), /YYYY-MM-DD/);
  assert.equal(dateError("2004-12-31", "start date", { first: "2005-01-03", last: "2024-12-31" }),
    "The data runs from 2005-01-03 to 2024-12-31.");
  assert.equal(dateError(" 2010-05-05 ", "start date", { first: "2005-01-03", last: "2024-12-31" }), null);
});

test("a valid period has no errors", () => {
  assert.deepEqual(periodErrors(ok, UNIVERSE), []);
});

test("capital outside the published limits is refused in dollars", () => {
  for (const capital of [500, 20000000, null, "abc"]) {
    assert.deepEqual(periodErrors({ ...ok, capital }, UNIVERSE),
      [{ field: "initial_capital", message: "Initial capital must be between $1,000 and $10,000,000." }]);
  }
  const tighter = { ...UNIVERSE, limits: { ...UNIVERSE.limits, max_capital: 50000 } };
  assert.match(periodErrors(ok, tighter)[0].message, /\$50,000\.$/);
});

test("dates: order and span, each on its field", () => {
  assert.deepEqual(periodErrors({ ...ok, end: "2014-12-31" }, UNIVERSE),
    [{ field: "end_date", message: "The end date must be after the start date." }]);
  assert.deepEqual(periodErrors({ ...ok, start: "2005-01-03", end: "2015-01-04" }, UNIVERSE),
    [{ field: "end_date", message: "The period can be at most 10 years." }]);
  assert.deepEqual(periodErrors({ ...ok, start: "2005-01-03", end: "2015-01-03" }, UNIVERSE), []);
  const errors = periodErrors({ ...ok, start: "1/2/2015" }, UNIVERSE);
  assert.deepEqual(errors.map((e) => e.field), ["start_date"]);
});

test("screen values: percent on the form, fractions for the API", () => {
  assert.equal(valueForForm("return", 0.1), 10);
  assert.equal(valueForApi("return", 10), 0.1);
  assert.equal(valueForApi("drawdown_from_high", -20), -0.2);
  assert.equal(valueForForm("close", 150), 150);
  assert.equal(valueForApi("rsi", 30), 30);
  assert.equal(valueForApi("return", null), null);
});

test("a screen reads as rules", () => {
  assert.equal(ruleText({ factor: "return", window: 126, op: ">", value: 0.05 }), "Return (126 d) > 5%");
  assert.equal(ruleText({ factor: "close", op: ">", other: { factor: "sma", window: 200 } }),
    "Close price > Simple moving average (200 d)");
  assert.deepEqual(describeScreen({
    filters: [{ factor: "rsi", window: 14, op: "<", value: 30 }],
    rank_by: { factor: "volatility", window: 63 }, ascending: true, top_n: 10, weighting: "inverse_volatility",
  }), [
    "Keep if RSI (14 d) < 30",
    "Rank by Volatility (annualised) (63 d), lowest first, keep the top 10",
    "Inverse volatility",
  ]);
  assert.deepEqual(describeScreen({ filters: [] }), ["No filters", "Equal weight"]);
  assert.deepEqual(describeScreen(null), []);
});
