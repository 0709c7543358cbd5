// @ts-check
// The "Strategy" card of the new-backtest form: a predefined strategy with its
// parameters, or a custom screen (filter_criteria).

import { field, h, replace } from "../dom.js";
import { paramHint, paramLabel, strategyLabel } from "../labels.js";
import { numberInput, radioGroup, readNumber, selectedValue } from "./form-controls.js";
import { createScreenBuilder, DEFAULT_SCREEN } from "./screen-builder.js";
import { allocationPane } from "./allocation-pane.js";

/**
 * @typedef {{name: string, type: string, default: number, min?: number | null, max?: number | null, description?: string}} StrategyParam
 * @typedef {{id: number, name: string, description?: string, parameters?: StrategyParam[]}} Strategy
 */

/** Descriptions mark parameter names and formulas with `backticks`. @param {string | undefined} text */
function withCode(text) {
  return String(text || "").split("`").map((part, i) => (i % 2 ? h("code", {}, part) : part));
}

/**
 * One number field per parameter, valued from `given` or the default.
 * @param {Strategy | undefined} strat @param {Record<string, number>} given @param {Map<string, HTMLInputElement>} inputs
 */
function paramFields(strat, given, inputs) {
  inputs.clear();
  return (strat?.parameters || []).map((p) => {
    const input = numberInput({ name: `param-${p.name}`, min: p.min ?? null, max: p.max ?? null,
      step: p.type === "int" ? 1 : "any", value: given[p.name] ?? p.default });
    inputs.set(p.name, input);
    return field({ label: paramLabel(p.name), control: input, name: `strategy_params.${p.name}`, hint: paramHint(p) });
  });
}

/**
 * The strategy select, its description and parameter fields.
 * @param {Strategy[]} strategies @param {Record<string, any>} cfg @param {() => void} onChange
 */
function strategyPane(strategies, cfg, onChange) {
  const select = h("select", { name: "strategy_id" },
    strategies.map((s) => h("option", { value: s.id, selected: s.id === (cfg.strategy_id ?? strategies[0]?.id) }, strategyLabel(s))));
  const desc = h("div", { class: "strategy-desc" });
  const grid = h("div", { class: "param-grid" });
  /** @type {Map<string, HTMLInputElement>} */
  const inputs = new Map();
  const render = () => {
    const strat = strategies.find((s) => String(s.id) === select.value);
    replace(desc, withCode(strat?.description));
    const given = Number(cfg.strategy_id) === strat?.id ? cfg.strategy_params || {} : {};
    replace(grid, paramFields(strat, given, inputs));
    onChange();
  };
  select.addEventListener("change", render);
  render();
  const element = h("div", { dataset: { pane: "strategy" } },
    field({ label: "Strategy", control: select, name: "strategy_id" }), desc, grid);
  const body = () => {
    /** @type {Record<string, any>} */
    const out = { strategy_id: Number(select.value) };
    if (inputs.size) out.strategy_params = Object.fromEntries([...inputs].map(([key, input]) => [key, readNumber(input)]));
    return out;
  };
  return { element, body };
}

/**
 * The screen builder and its JSON.
 * @param {import("../views/new-backtest.js").Screening} screening @param {Record<string, any>} cfg @param {() => void} onChange
 */
function screenPane(screening, cfg, onChange) {
  const screen = createScreenBuilder({ initial: cfg.filter_criteria || DEFAULT_SCREEN, onChange, screening });
  const json = h("pre", { class: "json-preview", "aria-label": "filter_criteria JSON" });
  const element = h("div", { dataset: { pane: "screen" } }, screen.element,
    h("details", { style: { marginTop: "16px" } }, h("summary", {}, "Show as filter_criteria JSON"), json));
  return { element, criteria: screen.getCriteria, refresh: () => { json.textContent = JSON.stringify(screen.getCriteria(), null, 2); } };
}

/**
 * @param {Strategy[]} strategies @param {import("../views/new-backtest.js").Screening} screening
 * @param {Record<string, any>} cfg @param {() => void} onChange
 * @param {import("../views/new-backtest.js").SymbolInfo[]} [symbols] the catalog for the allocation builder
 */
export function strategySection(strategies, screening, cfg, onChange, symbols = []) {
  // The parameter fields render (and report a change) before the form exists.
  let ready = false;
  const changed = () => ready && onChange();
  const modeGroup = radioGroup("strategy-mode", [
    { value: "strategy", label: "Predefined strategy" },
    { value: "screen", label: "Custom screen" },
    { value: "allocation", label: "Fixed allocation" },
  ], cfg.allocation ? "allocation" : cfg.filter_criteria ? "screen" : "strategy", "Strategy type");
  const strategy = strategyPane(strategies, cfg, changed);
  const screen = screenPane(screening, cfg, changed);
  const allocation = allocationPane(symbols, cfg, changed);
  ready = true;
  const mode = () => selectedValue(modeGroup);
  return {
    element: h("section", { class: "card" }, h("h2", {}, "Strategy"), modeGroup, strategy.element, screen.element, allocation.element),
    sync() {
      strategy.element.hidden = mode() !== "strategy";
      screen.element.hidden = mode() !== "screen";
      allocation.element.hidden = mode() !== "allocation";
    },
    refresh: screen.refresh,
    isAllocation: () => mode() === "allocation",
    localErrors: () => (mode() === "allocation" ? allocation.errors() : []),
    body: () => (mode() === "allocation" ? allocation.body()
      : mode() === "strategy" ? strategy.body() : { filter_criteria: screen.criteria() }),
  };
}
