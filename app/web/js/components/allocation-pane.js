// @ts-check
// The "Fixed allocation" pane of the Strategy card: target weights over any symbols of
// the dataset (ETFs included) and an optional rebalance band. Request fields
// `allocation` ({"SPY": 0.6, "AGG": 0.4}, fractions) and `rebalance_band` (a fraction:
// 5% → 0.05; rebalance when any holding drifts more than that from its target).

import { field, h } from "../dom.js";
import { fromPercent, toPercent } from "../labels.js";
import { rowsOf } from "../portfolio-form.js";
import { createAllocationBuilder } from "./allocation-builder.js";
import { numberInput, readNumber } from "./form-controls.js";

/** Pure: the band box's error (percent as typed; empty = no band). @param {unknown} band */
export function bandErrors(band) {
  if (band === null) return [];
  if (typeof band !== "number" || !(band > 0) || band >= 100) {
    return [{ field: "rebalance_band", message: "The band must be more than 0% and less than 100% (e.g. 5)." }];
  }
  return [];
}

/**
 * @param {import("../views/new-backtest.js").SymbolInfo[]} symbols
 * @param {Record<string, any>} cfg @param {() => void} onChange
 */
export function allocationPane(symbols, cfg, onChange) {
  const builder = createAllocationBuilder({ symbols, initial: rowsOf(cfg.allocation), onChange, label: "Allocation" });
  const band = numberInput({ name: "rebalance_band", min: 0, max: 100, step: "any", value: toPercent(cfg.rebalance_band ?? null),
    placeholder: "none", id: "rebalance-band" });
  const element = h("div", { dataset: { pane: "allocation" } },
    h("p", { class: "muted small" }, "Fixed target weights over any symbols of the dataset, ETFs included. "
      + "Weights may add up to less than 100%: the rest stays in cash."),
    builder.element,
    h("div", { class: "grid-4", style: { marginTop: "16px" } },
      field({ label: "Rebalance band (%)", control: band, name: "rebalance_band",
        hint: "Optional: rebalance when a holding drifts more than this from its target (with the calendar choice, whichever comes first)" })));
  return {
    element,
    body() {
      /** @type {Record<string, unknown>} */
      const out = { allocation: builder.body() };
      const b = readNumber(band);
      if (b !== null) out.rebalance_band = fromPercent(b);
      return out;
    },
    errors: () => [...builder.errors(), ...bandErrors(readNumber(band))],
  };
}
