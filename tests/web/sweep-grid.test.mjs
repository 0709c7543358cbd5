// The sweep form's grid arithmetic (app/web/js/sweep-grid.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { capMessage, cellColor, combinationCount, gridBody, parseList, rangeLength, rowSize, rowsFromGrid } from "../../app/web/js/sweep-grid.js";

/** @param {Partial<import("../../app/web/js/sweep-grid.js").GridRow>} row */
const row = (row) => ({ key: "strategy_params.lookback", mode: "list", list: "", start: "", stop: "", step: "", ...row });

test("a list keeps numbers as numbers and words as words", () => {
  assert.deepEqual(parseList("5, 10 20;30"), [5, 10, 20, 30]);
  assert.deepEqual(parseList(" weekly,monthly "), ["weekly", "monthly"]);
  assert.deepEqual(parseList(""), []);
});

test("a range includes its stop, as the API counts it", () => {
  assert.deepEqual(rangeLength(5, 50, 5), { values: 10, error: "" });
  assert.deepEqual(rangeLength(42, 252, 21), { values: 11, error: "" });
  assert.equal(rangeLength(0.1, 0.2, 0.05).values, 3);
  assert.equal(rangeLength(5, 7, 5).values, 1);
  assert.match(rangeLength(10, 5, 1).error, /start ≤ stop/);
  assert.match(rangeLength(1, 5, 0).error, /step > 0/);
  assert.match(rangeLength("", 5, 1).error, /numbers/);
});

test("the count is the product of the rows, 0 when one is unusable", () => {
  const rows = [row({ mode: "range", start: "42", stop: "252", step: "21" }),
    row({ key: "filter_criteria.top_n", mode: "range", start: "5", stop: "100", step: "5" }),
    row({ key: "strategy_params.skip", list: "0, 21" }), row({ key: "rebalancing", list: "weekly, monthly" })];
  assert.equal(combinationCount(rows), 880);
  assert.equal(combinationCount([...rows, row({ key: "execution", list: "" })]), 0);
  assert.equal(combinationCount([]), 0);
  assert.match(rowSize(row({ list: "5, 5" })).error, /repeated/);
  assert.match(rowSize(row({ key: "" })).error, /Choose/);
});

test("the grid body keeps row order and sends percent keys as fractions", () => {
  const body = gridBody([row({ mode: "range", start: "20", stop: "60", step: "20" }),
    row({ key: "commission", list: "0.1, 0.25" }), row({ key: "slippage", mode: "range", start: "0.05", stop: "0.15", step: "0.05" })]);
  assert.deepEqual(Object.keys(body), ["strategy_params.lookback", "commission", "slippage"]);
  assert.deepEqual(body["strategy_params.lookback"], { start: 20, stop: 60, step: 20 });
  assert.deepEqual(body.commission, [0.001, 0.0025]);
  assert.deepEqual(body.slippage, { start: 0.0005, stop: 0.0015, step: 0.0005 });
  assert.deepEqual(rowsFromGrid(body).map((r) => r.mode === "list" ? r.list : `${r.start}..${r.stop}/${r.step}`),
    ["20..60/20", "0.1, 0.25", "0.05..0.15/0.05"]);
});

test("the cap message names the tier and flags a grid over it", () => {
  const limits = { tier: "free", max_combinations: 100 };
  assert.deepEqual(capMessage(12, limits), { text: "12 combinations · the free tier allows up to 100 per sweep", over: false });
  assert.equal(capMessage(100, limits).over, false);
  const over = capMessage(1200, limits);
  assert.equal(over.over, true);
  assert.match(over.text, /1,200 combinations: over the free tier's cap of 100/);
  assert.equal(capMessage(1, null).text, "1 combination");
});

test("heatmap colours run from the worst to the best value", () => {
  assert.equal(cellColor(null, 0, 1, false), "");
  assert.equal(cellColor(0, 0, 1, false), "rgb(220, 60, 60)");
  assert.equal(cellColor(1, 0, 1, false), "rgb(60, 200, 60)");
  assert.equal(cellColor(1, 0, 1, true), cellColor(0, 0, 1, false));
  assert.equal(cellColor(3, 3, 3, false), cellColor(0.5, 0, 1, false));
});

test("the form refuses an empty, repeated or over-cap grid before posting", async () => {
  const { gridErrors } = await import("../../app/web/js/sweep-grid.js");
  const limits = { tier: "free", max_combinations: 100 };
  assert.deepEqual(gridErrors([], limits), [{ field: "grid", message: "Add at least one parameter to vary." }]);
  assert.deepEqual(gridErrors([row({ list: "" })], limits), [{ field: "grid.strategy_params.lookback", message: "Give at least one value." }]);
  assert.match(gridErrors([row({ list: "1" }), row({ list: "2" })], limits)[0].message, /once/);
  const big = gridErrors([row({ mode: "range", start: "1", stop: "101", step: "1" })], limits);
  assert.equal(big.length, 1);
  assert.match(big[0].message, /101 combinations: over the free tier's cap of 100/);
  assert.deepEqual(gridErrors([row({ mode: "range", start: "1", stop: "100", step: "1" })], limits), []);
});
