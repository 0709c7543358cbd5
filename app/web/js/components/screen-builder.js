// @ts-check
// The custom-screen builder: filters, ranking, top N and weighting, producing the
// same filter_criteria JSON that POST /v1/backtest accepts. The operators and the
// longest window come from GET /v1/strategies/screening.

import { h, replace, uid } from "../dom.js";
import { parseNumber } from "../labels.js";
import { FACTOR_TEXT, valueForApi, valueForForm, WEIGHTING_TEXT } from "../screen-text.js";

/**
 * @typedef {{factor: string, window?: number | string | null}} FactorRef
 * @typedef {FactorRef & {op: string, value?: number | string | null, other?: FactorRef}} Rule
 * @typedef {{filters?: Rule[], rank_by?: FactorRef, ascending?: boolean, top_n?: number | string | null, weighting?: string}} Criteria
 * @typedef {{id: string, label: string, window: number | null, unit: string}} FactorView
 * @typedef {{maxWindow: number, operators: string[], factors: FactorView[], weightings: string[], onChange: () => void}} BuilderContext
 */

const DEFAULT_WINDOW = 20;

/**
 * Pure: the factors GET /v1/strategies/screening lists, in its order, with the app's
 * words; one the app has no words for shows its name and the API's description.
 * @param {{name: string, description: string, needs_window: boolean}[]} apiFactors
 * @returns {FactorView[]}
 */
export function factorViews(apiFactors) {
  return apiFactors.map((f) => {
    const text = FACTOR_TEXT[f.name];
    return { id: f.name, label: text?.label ?? f.name, window: f.needs_window ? text?.window ?? DEFAULT_WINDOW : null, unit: text?.unit ?? f.description };
  });
}

/** The row "Add filter" starts with. @type {Rule} */
const NEW_RULE = { factor: "return", window: 126, op: ">", value: 0 };

/** @type {Criteria} */
export const DEFAULT_SCREEN = {
  filters: [
    { factor: "return", window: 126, op: ">", value: 0 },
    { factor: "close", op: ">", other: { factor: "sma", window: 200 } },
  ],
  rank_by: { factor: "return", window: 252 },
  ascending: false,
  top_n: 20,
  weighting: "equal",
};

/** Each option carries its factor's default window and unit. @param {FactorView[]} factors @param {string} value @param {string} label */
function factorSelect(factors, value, label) {
  return h("select", { "aria-label": label },
    factors.map((f) => h("option", { value: f.id, selected: f.id === value, dataset: { window: f.window ?? "", unit: f.unit } }, f.label)));
}

/** The default window of the chosen factor (0: it takes none) and its unit. @param {HTMLSelectElement} select */
function chosenFactor(select) {
  const data = select.selectedOptions[0]?.dataset ?? {};
  return { window: Number(data.window || 0), unit: data.unit ?? "" };
}

/** @param {number | string | null | undefined} value @param {string} label @param {number} max */
function windowInput(value, label, max) {
  return h("input", { type: "number", min: 1, max, step: 1, value: value ?? "", "aria-label": label, inputmode: "numeric" });
}

/** A labelled control with its error slot; `fieldName` is the server path it answers for. */
function smallField(/** @type {string} */ labelText, /** @type {HTMLElement} */ control, /** @type {string | undefined} */ fieldName = undefined) {
  const id = control.id || uid("sf");
  control.id = id;
  control.removeAttribute("aria-label");
  return h("div", { class: "field", dataset: fieldName ? { field: fieldName } : {} },
    h("label", { for: id }, labelText), control, h("div", { class: "field-error", id: `${id}-error` }));
}

/**
 * A factor without a window (the close price) empties, disables and hides its window
 * box (its place in the row is kept); one with a window gets the default.
 */
function syncWindow(/** @type {HTMLSelectElement} */ select, /** @type {HTMLInputElement} */ win) {
  const { window } = chosenFactor(select);
  win.disabled = !window;
  if (!window) win.value = "";
  else if (!win.value) win.value = String(window);
  const wrap = /** @type {HTMLElement | null} */ (win.closest(".field"));
  if (wrap) {
    wrap.style.visibility = window ? "" : "hidden";
    wrap.dataset.noWindow = window ? "" : "true";
  }
}

/**
 * {factor, window?} of a factor select and its window input.
 * @param {HTMLSelectElement} select @param {HTMLInputElement} win @returns {FactorRef}
 */
function factorRef(select, win) {
  /** @type {FactorRef} */
  const out = { factor: select.value };
  if (chosenFactor(select).window) out.window = parseNumber(win.value);
  return out;
}

/**
 * The controls of one filter rule.
 * @param {Rule} rule @param {BuilderContext} ctx
 */
function ruleControls(rule, { maxWindow, operators, factors }) {
  const hasOther = Boolean(rule.other);
  return {
    factor: factorSelect(factors, rule.factor, "Factor"),
    win: windowInput(rule.window, "Window (days)", maxWindow),
    op: h("select", {}, operators.map((o) => h("option", { value: o, selected: o === rule.op }, o))),
    kind: h("select", {},
      h("option", { value: "value", selected: !hasOther }, "a value"),
      h("option", { value: "factor", selected: hasOther }, "another factor")),
    value: h("input", { type: "number", step: "any", value: valueForForm(rule.factor, rule.value) ?? 0, inputmode: "decimal" }),
    otherFactor: factorSelect(factors, rule.other?.factor ?? "sma", "Other factor"),
    otherWin: windowInput(rule.other?.window ?? 200, "Other window (days)", maxWindow),
  };
}

/**
 * One filter rule: factor, window, operator, and a value or another factor.
 * @param {Rule} rule @param {BuilderContext} ctx @param {() => void} onRemove
 */
function filterRow(rule, ctx, onRemove) {
  const c = ruleControls(rule, ctx);
  const unitHint = h("div", { class: "hint" });
  const remove = h("button", { type: "button", class: "btn btn-s btn-danger", onclick: onRemove }, "Remove");
  const fields = { factor: smallField("Factor", c.factor), window: smallField("Window (days)", c.win), op: smallField("Op", c.op),
    kind: smallField("Compare with", c.kind), value: smallField("Value", c.value),
    other: smallField("Other factor", c.otherFactor), otherWindow: smallField("Window", c.otherWin) };
  const refresh = () => {
    syncWindow(c.factor, c.win);
    const isFactor = c.kind.value === "factor";
    fields.value.hidden = isFactor;
    fields.other.hidden = !isFactor;
    fields.otherWindow.hidden = !isFactor;
    syncWindow(c.otherFactor, c.otherWin);
    unitHint.textContent = isFactor ? "" : `Value unit: ${chosenFactor(c.factor).unit}`;
  };
  for (const el of [c.factor, c.kind, c.otherFactor]) el.addEventListener("change", () => { refresh(); ctx.onChange(); });
  for (const el of [c.win, c.op, c.value, c.otherWin]) el.addEventListener("input", ctx.onChange);
  refresh();
  const element = h("div", { class: "rule", role: "group" }, Object.values(fields), h("div", {}, remove),
    h("div", { class: "rule-error" }, unitHint), h("div", { class: "field-error rule-error" }));
  /** Field paths follow the row's position, renumbered after a removal. @param {number} i */
  const number = (i) => {
    const path = `filter_criteria.filters[${i}]`;
    element.dataset.field = path;
    element.setAttribute("aria-label", `Filter ${i + 1}`);
    remove.setAttribute("aria-label", `Remove filter ${i + 1}`);
    /** @type {[keyof typeof fields, string][]} */
    const names = [["factor", "factor"], ["window", "window"], ["op", "op"], ["value", "value"], ["other", "other"], ["otherWindow", "other.window"]];
    for (const [key, suffix] of names) fields[key].dataset.field = `${path}.${suffix}`;
  };
  const toJSON = () => {
    /** @type {Rule} */
    const out = { ...factorRef(c.factor, c.win), op: c.op.value };
    if (c.kind.value === "factor") out.other = factorRef(c.otherFactor, c.otherWin);
    else out.value = /** @type {number | string | null} */ (valueForApi(c.factor.value, parseNumber(c.value.value)));
    return out;
  };
  return { element, number, toJSON, focus: () => c.factor.focus() };
}

/**
 * The list of filter rules with its "+ Add filter" button.
 * @param {Rule[]} initial @param {BuilderContext} ctx
 */
function filterList(initial, ctx) {
  /** @type {ReturnType<typeof filterRow>[]} */
  const rows = [];
  const list = h("div", { class: "rule-list" });
  const empty = h("p", { class: "muted small" }, "No filters: every stock of the universe qualifies.");
  const render = () => {
    rows.forEach((row, i) => row.number(i));
    replace(list, rows.length ? rows.map((r) => r.element) : empty);
  };
  const add = (/** @type {Rule} */ rule) => {
    const row = filterRow(rule, ctx, () => {
      rows.splice(rows.indexOf(row), 1);
      render();
      ctx.onChange();
    });
    rows.push(row);
    return row;
  };
  initial.forEach(add);
  render();
  const addButton = h("button", { type: "button", class: "btn btn-s", onclick: () => {
    const row = add(NEW_RULE);
    render();
    ctx.onChange();
    row.focus();
  } }, "+ Add filter");
  return { elements: [list, addButton], rules: () => rows.map((r) => r.toJSON()) };
}

/**
 * Ranking (on/off, factor, window, order, top N) and weighting.
 * @param {Criteria} initial @param {BuilderContext} ctx
 */
function rankingControls(initial, { maxWindow, factors, weightings, onChange }) {
  const on = h("input", { type: "checkbox", checked: Boolean(initial.rank_by) });
  const factor = factorSelect(factors, initial.rank_by?.factor ?? "return", "Rank by");
  const win = windowInput(initial.rank_by?.window ?? 252, "Rank window (days)", maxWindow);
  const order = h("select", {},
    h("option", { value: "desc", selected: !initial.ascending }, "Highest first"),
    h("option", { value: "asc", selected: Boolean(initial.ascending) }, "Lowest first"));
  const topN = h("input", { type: "number", min: 1, step: 1, value: initial.top_n ?? 20, inputmode: "numeric" });
  const weighting = h("select", {}, weightings.map((w) =>
    h("option", { value: w, selected: w === (initial.weighting ?? "equal") }, WEIGHTING_TEXT[w] ?? w)));
  const sync = () => {
    syncWindow(factor, win);
    for (const el of [factor, win, order, topN]) el.disabled = !on.checked || (el === win && !chosenFactor(factor).window);
  };
  for (const el of [on, factor]) el.addEventListener("change", () => { sync(); onChange(); });
  for (const el of [win, order, topN, weighting]) el.addEventListener("input", onChange);
  for (const el of [order, weighting]) el.addEventListener("change", onChange);
  const element = h("div", { style: { marginTop: "16px" }, dataset: { field: "filter_criteria.rank_by" } },
    h("label", { class: "choice", style: { marginBottom: "8px" } }, on, h("span", {}, h("b", {}, "Rank and keep the top N"))),
    h("div", { class: "grid-4" },
      smallField("Rank by", factor, "filter_criteria.rank_by.factor"),
      smallField("Window (days)", win, "filter_criteria.rank_by.window"),
      smallField("Order", order, "filter_criteria.ascending"),
      smallField("Keep top N", topN, "filter_criteria.top_n")),
    h("div", { class: "field-error" }));
  sync();
  const criteria = () => (on.checked
    ? { rank_by: factorRef(factor, win), ascending: order.value === "asc", top_n: parseNumber(topN.value) } : {});
  const weightingField = h("div", { class: "grid-4", style: { marginTop: "16px" } },
    smallField("Weighting", weighting, "filter_criteria.weighting"));
  return { element, weightingField, criteria, weighting: () => weighting.value };
}

/**
 * createScreenBuilder({initial, onChange, screening}) → {element, getCriteria()}; `screening`
 * is GET /v1/strategies/screening (factors, operators, weightings, max_window).
 * @param {{initial?: Criteria, onChange?: () => void,
 *   screening: {factors: {name: string, description: string, needs_window: boolean}[], operators: string[], weightings: string[], max_window: number}}} spec
 */
export function createScreenBuilder({ initial = DEFAULT_SCREEN, onChange = () => {}, screening }) {
  const maxWindow = screening.max_window;
  /** @type {BuilderContext} */
  const ctx = { maxWindow, operators: screening.operators, factors: factorViews(screening.factors), weightings: screening.weightings, onChange };
  const filters = filterList(initial.filters || [], ctx);
  const ranking = rankingControls(initial, ctx);
  const element = h("div", { class: "screen-builder", dataset: { field: "filter_criteria" } },
    h("h3", { style: { marginBottom: "8px" } }, "Filters"),
    h("p", { class: "hint", style: { marginBottom: "8px" } },
      `A stock is held only if it passes every filter on a rebalancing day. Windows are in trading days (1–${maxWindow}).`),
    filters.elements,
    h("div", { class: "field-error", style: { marginTop: "8px" } }),
    ranking.element,
    ranking.weightingField);
  return {
    element,
    getCriteria: () => ({ filters: filters.rules(), ...ranking.criteria(), weighting: ranking.weighting() }),
  };
}
