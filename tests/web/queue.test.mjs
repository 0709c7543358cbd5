// The queued status in the web app: the "Time left" text of a job waiting in the
// fair queue (issue 18), from the API's queue_position and eta_seconds.
import assert from "node:assert/strict";
import { test } from "node:test";

import { etaText } from "../../app/web/js/views/backtest.js";

test("a queued job shows its place and the estimated wait", () => {
  const text = etaText({ status: "queued", progress: 0, queue_position: 3, eta_seconds: 90 });
  assert.match(text, /^#3 in queue, starts in ~/);
  assert.notEqual(text, etaText({ status: "queued", progress: 0, queue_position: 4, eta_seconds: 90 }));
});

test("a queued job without an estimate still says it is queued", () => {
  assert.equal(etaText({ status: "queued", progress: 0, queue_position: null }), "Queued");
  assert.equal(etaText({ status: "queued", progress: 0, queue_position: 2 }), "#2 in queue");
});

test("pending is about to start; running shows the time left", () => {
  assert.equal(etaText({ status: "pending", progress: 0 }), "Starting");
  assert.notEqual(etaText({ status: "running", progress: 50, eta_seconds: 12 }), "Starting");
});
