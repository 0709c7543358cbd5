// The sector stack of the exposure chart: order and running sums.
import assert from "node:assert/strict";
import { test } from "node:test";

import { stackSectors } from "../../app/web/js/components/analysis-charts.js";

test("stackSectors: largest mean weight at the bottom, top edge = invested fraction", () => {
  const weights = { Energy: [0.1, 0.2, 0.0], Tech: [0.5, 0.4, 0.6], Health: [0.2, 0.2, 0.3] };
  const { names, tops } = stackSectors(weights);
  assert.deepEqual(names, ["Tech", "Health", "Energy"]);
  assert.deepEqual(tops[0], weights.Tech);
  for (let j = 0; j < 3; j++) {
    const invested = weights.Energy[j] + weights.Tech[j] + weights.Health[j];
    assert.ok(Math.abs(tops[2][j] - invested) < 1e-15);
    assert.ok(tops[0][j] <= tops[1][j] && tops[1][j] <= tops[2][j]);
  }
  assert.deepEqual(stackSectors({}), { names: [], tops: [] });
});
