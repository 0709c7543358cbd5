// The investor-portfolio form logic (app/web/js/portfolio-form.js): weights in percent
// → fractions, the live sum, cash flows, benchmarks and their limit.
import assert from "node:assert/strict";
import { test } from "node:test";

import { bandErrors } from "../../app/web/js/components/allocation-pane.js";
import {
  allocationBody, allocationErrors, benchmarkDrafts, benchmarkErrors, benchmarkFields, cashFlowBody, cashFlowErrors,
  MAX_BENCHMARKS, rowsOf, sumStatus, weightSum,
} from "../../app/web/js/portfolio-form.js";

const KNOWN = new Set(["SPY", "AGG", "QQQ", "AAPL"]);
const RANGE = { first: "2005-01-03", last: "2024-08-26" };

test("weights: the sum ignores rows without a number and has no float noise", () => {
  assert.equal(weightSum([{ symbol: "SPY", weight: 60 }, { symbol: "AGG", weight: 40 }]), 100);
  assert.equal(weightSum([{ symbol: "A", weight: 0.1 }, { symbol: "B", weight: 0.2 }]), 0.3);
  assert.equal(weightSum([{ symbol: "A", weight: null }, { symbol: "B", weight: "x" }, { symbol: "C", weight: 5 }]), 5);
});

test("the live sum says full, cash left, over 100% or empty", () => {
  assert.equal(sumStatus([{ symbol: "SPY", weight: 60 }, { symbol: "AGG", weight: 40 }]).state, "ok");
  assert.equal(sumStatus([{ symbol: "SPY", weight: 33.33 }, { symbol: "AGG", weight: 33.33 }, { symbol: "QQQ", weight: 33.34 }]).state, "ok");
  const cash = sumStatus([{ symbol: "SPY", weight: 60 }, { symbol: "AGG", weight: 30 }]);
  assert.deepEqual(cash, { text: "Total 90% — 10% stays in cash.", state: "cash" });
  const over = sumStatus([{ symbol: "SPY", weight: 70 }, { symbol: "AGG", weight: 40 }]);
  assert.equal(over.state, "over");
  assert.match(over.text, /110%/);
  assert.equal(sumStatus([{ symbol: "", weight: null }]).state, "empty");
});

test("allocation errors: unknown, duplicate, missing symbol, weight bounds, sum over 100%", () => {
  assert.deepEqual(allocationErrors([{ symbol: "SPY", weight: 60 }, { symbol: "agg", weight: 40 }], KNOWN), []);
  const errors = allocationErrors([
    { symbol: "ZZZ", weight: 10 }, { symbol: "SPY", weight: 0 }, { symbol: "SPY", weight: 20 }, { symbol: "", weight: 101 },
  ], KNOWN);
  const messages = errors.map((e) => e.message);
  assert.ok(messages.includes("ZZZ is not in the dataset."));
  assert.ok(messages.includes("SPY: the weight must be more than 0% and at most 100%."));
  assert.ok(messages.includes("SPY is listed twice."));
  assert.ok(messages.includes("Row 4: choose a symbol."));
  assert.ok(messages.some((m) => /add up to 131%/.test(m)), messages.join("|"));
  assert.deepEqual([...new Set(errors.map((e) => e.field))], ["allocation"]);
  assert.deepEqual(allocationErrors([], KNOWN).map((e) => e.message), ["Add at least one symbol with its weight."]);
  assert.equal(allocationErrors([{ symbol: "QQQ", weight: 50 }], KNOWN, "benchmarks[1].allocation").length, 0);
  assert.equal(allocationErrors([{ symbol: "QQQ", weight: "abc" }], KNOWN, "benchmarks[1].allocation")[0].field, "benchmarks[1].allocation");
});

test("the body sends fractions keyed by upper-case symbol, and reads back", () => {
  const body = allocationBody([{ symbol: " spy ", weight: 60 }, { symbol: "AGG", weight: 40 }, { symbol: "", weight: 5 }]);
  assert.deepEqual(body, { SPY: 0.6, AGG: 0.4 });
  assert.equal(allocationBody([{ symbol: "A", weight: 0.1 }]).A, 0.001);
  assert.deepEqual(rowsOf({ SPY: 0.6, AGG: 0.4 }), [{ symbol: "SPY", weight: 60 }, { symbol: "AGG", weight: 40 }]);
  assert.deepEqual(allocationBody(rowsOf({ SPY: 0.57, AGG: 0.43 })), { SPY: 0.57, AGG: 0.43 });
});

test("cash flows: none without an amount; dates optional, checked and ordered", () => {
  const none = { amount: null, frequency: "monthly", start: "", end: "" };
  assert.deepEqual(cashFlowErrors(none, RANGE), []);
  assert.equal(cashFlowBody(none), null);
  const monthly = { amount: 1000, frequency: "monthly", start: "", end: "" };
  assert.deepEqual(cashFlowErrors(monthly, RANGE), []);
  assert.deepEqual(cashFlowBody(monthly), { amount: 1000, frequency: "monthly" });
  const dated = { amount: -500, frequency: "yearly", start: "2010-01-01", end: "2020-12-31" };
  assert.deepEqual(cashFlowBody(dated), { amount: -500, frequency: "yearly", start_date: "2010-01-01", end_date: "2020-12-31" });
  const bad = cashFlowErrors({ amount: 0, frequency: "weekly", start: "2001-01-01", end: "2010-02-30" }, RANGE);
  assert.deepEqual(bad.map((e) => e.field), ["cash_flows.amount", "cash_flows.frequency", "cash_flows.start_date", "cash_flows.end_date"]);
  const reversed = cashFlowErrors({ amount: 1, frequency: "quarterly", start: "2012-01-01", end: "2011-01-01" }, RANGE);
  assert.deepEqual(reversed.map((e) => e.field), ["cash_flows.end_date"]);
  assert.deepEqual(cashFlowErrors({ amount: "1e", frequency: "monthly", start: "", end: "" }, RANGE).map((e) => e.field), ["cash_flows.amount"]);
});

test("benchmarks: the select counts towards the limit; entries named by request index", () => {
  const sym = (s) => ({ kind: "symbol", symbol: s });
  const alloc = { kind: "allocation", name: "60/40", rows: [{ symbol: "SPY", weight: 60 }, { symbol: "AGG", weight: 40 }], rebalancing: "monthly" };
  assert.deepEqual(benchmarkErrors([sym("QQQ"), alloc], "SPY", KNOWN), []);
  const tooMany = benchmarkErrors([sym("QQQ"), alloc, sym("AGG")], "SPY", KNOWN);
  assert.deepEqual(tooMany.map((e) => e.field), ["benchmarks"]);
  assert.match(tooMany[0].message, new RegExp(`At most ${MAX_BENCHMARKS}`));
  const wrong = benchmarkErrors([sym("SPY"), { ...alloc, name: " ", rows: [{ symbol: "SPY", weight: 120 }] }], "SPY", KNOWN);
  assert.deepEqual(wrong.map((e) => e.field), ["benchmarks[1]", "benchmarks[2]", "benchmarks[2].allocation", "benchmarks[2].allocation"]);
  assert.deepEqual(benchmarkErrors([sym("")], "", KNOWN).map((e) => e.field), ["benchmarks[0]"]);
  assert.deepEqual(benchmarkErrors([sym("QQQ"), sym("AGG")], "SPY", KNOWN, 2).map((e) => e.message), ["At most 2 benchmarks in all (3 chosen)."]);
});

test("benchmark fields: the shorthand alone, or every benchmark in `benchmarks` (primary first)", () => {
  assert.deepEqual(benchmarkFields("SPY", []), { benchmark: "SPY" });
  assert.deepEqual(benchmarkFields("", []), {});
  const alloc = { kind: "allocation", name: " 60/40 ", rows: [{ symbol: "SPY", weight: 60 }, { symbol: "AGG", weight: 40 }], rebalancing: "never" };
  const both = benchmarkFields("SPY", [{ kind: "symbol", symbol: "QQQ" }, alloc]);
  assert.deepEqual(JSON.parse(JSON.stringify(both)), {
    benchmarks: ["SPY", "QQQ", { name: "60/40", allocation: { SPY: 0.6, AGG: 0.4 }, rebalancing: "never" }],
  });
  assert.ok("benchmark" in both && both.benchmark === undefined, "overrides the select's shorthand");
  const [primary, drafts] = benchmarkDrafts({ benchmarks: JSON.parse(JSON.stringify(both)).benchmarks });
  assert.equal(primary, "SPY");
  assert.deepEqual(drafts.map((d) => d.kind), ["symbol", "allocation"]);
  assert.deepEqual(JSON.parse(JSON.stringify(benchmarkFields(primary, drafts))), JSON.parse(JSON.stringify(both)));
  assert.deepEqual(benchmarkDrafts({ benchmark: "SPY" }), ["SPY", []]);
});

test("rebalance band: optional, more than 0 and under 100 percent", () => {
  assert.deepEqual(bandErrors(null), []);
  assert.deepEqual(bandErrors(5), []);
  for (const bad of [0, -1, 100, "x"]) assert.deepEqual(bandErrors(bad).map((e) => e.field), ["rebalance_band"], String(bad));
});
