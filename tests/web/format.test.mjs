// Number and date formatting (app/web/js/format.js): one convention per kind.
import assert from "node:assert/strict";
import { test } from "node:test";

process.env.TZ = "UTC"; // dateTime and clock use the viewer's zone
const f = await import("../../app/web/js/format.js");

test("pct: two decimals, sign only when asked, a dash for what is not a number", () => {
  assert.equal(f.pct(0.1234), "12.34%");
  assert.equal(f.pct(0.1234, { signed: true }), "+12.34%");
  assert.equal(f.pct(-0.05, { signed: true }), "-5.00%");
  assert.equal(f.pct(0, { signed: true }), "0.00%");
  assert.equal(f.pct(0.5, { digits: 0 }), "50%");
  for (const bad of [null, undefined, NaN, Infinity, "0.1"]) assert.equal(f.pct(bad), f.dash);
});

test("money: whole dollars from 1,000, cents below, explicit digits win", () => {
  assert.equal(f.money(1234.56), "$1,235");
  assert.equal(f.money(999.5), "$999.50");
  assert.equal(f.money(-2500), "-$2,500");
  assert.equal(f.money(12.345, 2), "$12.35");
  assert.equal(f.money(null), f.dash);
  assert.equal(f.signedMoney(12.5), "+$12.50");
  assert.equal(f.signedMoney(-3), "-$3.00");
  assert.equal(f.signedMoney(0), "$0.00");
});

test("num, int and qty", () => {
  assert.equal(f.num(1234.5), "1,234.50");
  assert.equal(f.num(1.23456, 3), "1.235");
  assert.equal(f.int(1234567.4), "1,234,567");
  assert.equal(f.qty(10.123456), "10.1235");
  assert.equal(f.qty(3), "3");
});

test("tone colours gains and losses only", () => {
  assert.equal(f.tone(0.1), "gain");
  assert.equal(f.tone(-0.1), "loss");
  assert.equal(f.tone(0), "");
  assert.equal(f.tone(null), "");
});

test("dates are ISO", () => {
  assert.equal(f.date("2024-08-26T14:03:00Z"), "2024-08-26");
  assert.equal(f.date(null), f.dash);
  assert.equal(f.dateTime("2024-08-26T14:03:27Z"), "2024-08-26 14:03");
  assert.equal(f.dateTime("not a date"), f.dash);
  assert.equal(f.clock(new Date(Date.UTC(2024, 0, 1, 9, 5, 7))), "09:05:07");
});

test("duration: seconds, then minutes, then hours", () => {
  assert.equal(f.duration(45.4), "45 s");
  assert.equal(f.duration(185), "3 min 05 s");
  assert.equal(f.duration(3720), "1 h 02 min");
  assert.equal(f.duration(-1), f.dash);
  // Each unit boundary: 59.6 s rounds to a minute.
  assert.equal(f.duration(59.6), "1 min 00 s");
  assert.equal(f.duration(3599.6), "1 h 00 min");
});
