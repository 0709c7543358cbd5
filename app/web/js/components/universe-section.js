// @ts-check
// The "Universe" card of the new-backtest form: every stock, or chosen symbols.

import { h } from "../dom.js";
import { int } from "../format.js";
import { radioGroup, selectedValue } from "./form-controls.js";
import { createSymbolPicker } from "./symbol-picker.js";
import { createUniverseChoice } from "./universe-choice.js";

/**
 * @param {import("../views/new-backtest.js").Universe} universe
 * @param {Record<string, any>} cfg @param {() => void} onChange
 */
export function universeSection(universe, cfg, onChange) {
  const stocks = universe.symbols.filter((s) => s.type !== "etf");
  const chosen = Array.isArray(cfg.symbols) && cfg.symbols.length ? cfg.symbols : [];
  const group = radioGroup("universe-mode", [
    { value: "all", label: `All stocks (${int(stocks.length)})` },
    { value: "chosen", label: "Chosen symbols" },
  ], chosen.length ? "chosen" : "all", "Universe");
  const picker = createSymbolPicker({ symbols: universe.symbols, initial: chosen, onChange: () => onChange() });
  const error = h("div", { class: "field-error", id: "symbols-error", "aria-live": "polite" });
  picker.input.setAttribute("aria-describedby", "symbols-error");
  const pickerField = h("div", { class: "field", dataset: { field: "symbols" } },
    h("label", { for: picker.input.id }, "Symbols"), picker.element, error);
  const isChosen = () => selectedValue(group) === "chosen";
  const membership = createUniverseChoice({ initial: cfg.universe, listed: chosen.length > 0 });
  return {
    element: h("section", { class: "card" }, h("h2", {}, "Universe"), group, pickerField, membership.element),
    sync() {
      pickerField.hidden = !isChosen();
      membership.follow(isChosen());
    },
    body: () => ({ ...(isChosen() ? { symbols: picker.getSelected() } : {}), universe: membership.value() }),
  };
}
