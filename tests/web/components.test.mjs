// The pure parts of the components and views: paging texts, local validation, the
// monthly table, best-of-row, label de-duplication, symbol matching, back-off.
import assert from "node:assert/strict";
import { test } from "node:test";

import { pagerText } from "../../app/web/js/components/pager.js";
import { percentErrors } from "../../app/web/js/components/period-section.js";
import { matches, typedTokens } from "../../app/web/js/components/symbol-picker.js";
import { reconnectDelay } from "../../app/web/js/views/backtest.js";
import { bestIndex, uniqueLabels } from "../../app/web/js/views/compare.js";
import { historyState } from "../../app/web/js/views/history.js";
import { authErrors } from "../../app/web/js/views/login.js";
import { configItems, monthlyTable } from "../../app/web/js/views/results.js";
import { tradeCsvRow } from "../../app/web/js/views/trades.js";

const LIMITS = { max_span_years: 10, max_symbols: 1000, min_capital: 1000, max_capital: 1e7, max_commission: 0.1, max_slippage: 0.05, max_risk_free_rate: 0.2 };

test("pager: range, page and button states agree with the offset arithmetic", () => {
  for (const total of [0, 1, 24, 25, 26, 130]) {
    for (let offset = 0; offset < Math.max(total, 1); offset += 25) {
      const count = Math.min(25, Math.max(0, total - offset));
      const t = pagerText({ offset, limit: 25, count, total }, { noun: "trades", emptyText: "No trades", pageWhenEmpty: false });
      const pages = Math.max(1, Math.ceil(total / 25));
      assert.equal(t.range, total ? `Showing ${offset + 1}–${offset + count} of ${total} trades` : "No trades");
      assert.equal(t.page, total ? `Page ${offset / 25 + 1} of ${pages}` : "");
      assert.equal(t.atStart, offset === 0);
      assert.equal(t.atEnd, offset / 25 + 1 === pages);
    }
  }
  assert.equal(pagerText({ offset: 0, limit: 20, count: 0, total: 0 }).page, "Page 1 of 1");
  assert.equal(pagerText({ offset: 2000, limit: 1000, count: 5, total: 2005 }).range, "Showing 2,001–2,005 of 2,005");
});

test("percent fields are checked against the API's limits, in percent", () => {
  assert.deepEqual(percentErrors({ commission: 10, slippage: 0, risk_free_rate: null }, LIMITS), []);
  const errors = percentErrors({ commission: 10.5, slippage: -1, risk_free_rate: "x" }, LIMITS);
  assert.deepEqual(errors.map((e) => e.field), ["commission", "slippage", "risk_free_rate"]);
  assert.equal(errors[0].message, "Commission must be between 0% and 10%.");
  assert.equal(errors[2].message, "Risk-free rate must be between 0% and 20%.");
  const tighter = percentErrors({ commission: 3, slippage: 3, risk_free_rate: 3 }, { ...LIMITS, max_commission: 0.02 });
  assert.deepEqual(tighter.map((e) => e.message), ["Commission must be between 0% and 2%."]);
  assert.deepEqual(percentErrors({ commission: null, slippage: 1, risk_free_rate: 0 }, LIMITS).map((e) => e.field), ["commission"]);
});

test("monthly returns: a row per year, gaps as null, the year compounded", () => {
  const monthly = { "2020-11": 0.05, "2020-12": -0.02, "2021-01": 0.01, "2021-03": 0.03, "2021-02": null };
  const rows = monthlyTable(monthly);
  assert.deepEqual(rows.map(([year]) => year), ["2020", "2021"]);
  assert.deepEqual(rows[0][1].slice(10), [0.05, -0.02]);
  assert.deepEqual(rows[1][1].slice(0, 3), [0.01, null, 0.03]);
  for (const [year, months, compounded] of rows) {
    // Independent: exp of summed log growth.
    const viaLogs = Math.expm1(months.filter((v) => v !== null).reduce((s, v) => s + Math.log1p(v), 0));
    assert.ok(Math.abs(compounded - viaLogs) < 1e-12, year);
  }
  assert.deepEqual(monthlyTable(undefined), []);
});

test("best of a row: highest or lowest number, none with fewer than two", () => {
  assert.equal(bestIndex([0.1, 0.3, null, 0.2], "high"), 1);
  assert.equal(bestIndex([0.1, 0.3, null, 0.2], "low"), 0);
  assert.equal(bestIndex([0.1, null], "high"), -1);
  assert.equal(bestIndex([1, 2], null), -1);
  assert.equal(bestIndex([-0.3, -0.1], "high"), 1);
});

test("legend labels never repeat", () => {
  assert.deepEqual(uniqueLabels(["A", "B", "A", "A"]), ["A", "B", "A (2)", "A (3)"]);
});

test("symbol suggestions: ticker prefix first (shortest), then names, selected left out", () => {
  const all = [
    { symbol: "AAPL", name: "Apple Inc." }, { symbol: "A", name: "Agilent" }, { symbol: "AA", name: "Alcoa" },
    { symbol: "MSFT", name: "Microsoft" }, { symbol: "PAA", name: "Plains All American" },
  ];
  assert.deepEqual(matches(all, "a", new Set()).map((s) => s.symbol), ["A", "AA", "AAPL", "PAA"]);
  assert.deepEqual(matches(all, "apple", new Set()).map((s) => s.symbol), ["AAPL"]);
  assert.deepEqual(matches(all, "aa", new Set(["AA"])).map((s) => s.symbol), ["AAPL"]);
  assert.deepEqual(matches(all, "  ", new Set()), []);
  const known = new Map(all.map((s) => [s.symbol, s]));
  assert.deepEqual(typedTokens("aapl, msft;zzz", known), { tokens: ["AAPL", "MSFT", "ZZZ"], found: ["AAPL", "MSFT"], unknown: ["ZZZ"] });
});

test("reconnect back-off doubles from 0.5 s and stops at 10 s", () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 20].map(reconnectDelay);
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
});

test("history state from the URL: unknown values fall back to defaults", () => {
  assert.deepEqual(historyState({}), { status: "", sort: "-created_at", page: 1, size: 20 });
  assert.deepEqual(historyState({ status: "failed", sort: "sharpe_ratio", page: "3", size: "50" }), { status: "failed", sort: "sharpe_ratio", page: 3, size: 50 });
  assert.deepEqual(historyState({ status: "bogus", sort: "drop table", page: "-2", size: "7" }), { status: "", sort: "-created_at", page: 1, size: 20 });
});

test("login and registration are checked locally first", () => {
  assert.deepEqual(authErrors("login", "", ""), [
    { field: "username", message: "Enter your username." },
    { field: "password", message: "Enter your password." },
  ]);
  assert.deepEqual(authErrors("login", "x", "y"), []);
  assert.deepEqual(authErrors("register", "ab", "short").map((e) => e.field), ["username", "password"]);
  assert.deepEqual(authErrors("register", "good.name_1", "long enough"), []);
});

test("settings summary and CSV rows", () => {
  const items = Object.fromEntries(configItems({ strategy_id: 2, strategy_params: { top_n: 15 }, start_date: "2015-01-01", end_date: "2019-12-31",
    initial_capital: 100000, rebalancing: "monthly", commission: 0.001, slippage: 0.0005, benchmark: "SPY", symbols: ["A", "B"] },
  [{ id: 2, name: "momentum" }]));
  assert.equal(items.Strategy, "Momentum (top_n 15)");
  assert.equal(items.Period, "2015-01-01 → 2019-12-31");
  assert.equal(items.Universe, "A, B");
  assert.equal(items.Costs, "0.10% commission, 0.05% slippage");
  assert.equal(items.Execution, "next open");
  assert.equal(Object.fromEntries(configItems({ filter_criteria: {} }, [])).Strategy, "Custom screen");
  assert.deepEqual(tradeCsvRow({ symbol: "X", entry_date: "2020-01-02", entry_price: 10, quantity: 3, is_open: true }),
    ["X", "2020-01-02", 10, "", "", 3, "", "", "open"]);
});

test("screen factors follow the API's list; unknown ones still appear", async () => {
  const { factorViews } = await import("../../app/web/js/components/screen-builder.js");
  const views = factorViews([
    { name: "close", description: "last close", needs_window: false },
    { name: "return", description: "total return", needs_window: true },
    { name: "new_factor", description: "something new", needs_window: true },
  ]);
  assert.deepEqual(views.map((f) => f.id), ["close", "return", "new_factor"]);
  assert.deepEqual(views[0], { id: "close", label: "Close price", window: null, unit: "price in $" });
  assert.equal(views[1].window, 126);
  assert.deepEqual(views[2], { id: "new_factor", label: "new_factor", window: 20, unit: "something new" });
});
