// The progress bar never goes backwards (issue 18: after a cancel the bar dropped to
// 0 % while the text said "Progress reached 2 %").

import assert from "node:assert/strict";
import { test } from "node:test";

import { shownProgress } from "../../app/web/js/views/backtest.js";

test("a cancelled frame at 0 % keeps the progress reached", () => {
  assert.equal(shownProgress(42.5, { status: "cancelled", progress: 0 }), 42.5);
  assert.equal(shownProgress(42.5, { status: "failed" }), 42.5);
});

test("running frames move the bar forward, never back", () => {
  let shown = 0;
  const seen = [];
  for (const p of [0, 2, 1.5, 30, 29.9, 51.7, 99.9]) {
    shown = shownProgress(shown, { status: "running", progress: p });
    seen.push(shown);
  }
  assert.deepEqual(seen, [0, 2, 2, 30, 30, 51.7, 99.9]);
});

test("completed is 100 and out-of-range values are clamped", () => {
  assert.equal(shownProgress(12, { status: "completed", progress: 99.9 }), 100);
  assert.equal(shownProgress(0, { status: "running", progress: 140 }), 100);
  assert.equal(shownProgress(0, { status: "running", progress: -3 }), 0);
  assert.equal(shownProgress(0, { status: "running", progress: undefined }), 0);
});
