// @ts-check
// The "Parameters to vary" card of the sweep form: one row per grid key (a list of
// values or a range), the live combination count and the tier's cap.

import { h, uid } from "../dom.js";
import { CHOICE_KEYS, PERCENT_KEYS, capMessage, combinationCount, gridErrors, rowSize } from "../sweep-grid.js";
import { numberInput, radioGroup, selectedValue } from "./form-controls.js";

/**
 * @typedef {import("../sweep-grid.js").GridRow} GridRow
 * @typedef {{value: string, label: string, hint?: string}} KeyOption
 * @typedef {{tier: string, max_combinations: number, max_grid_keys: number}} SweepLimits
 */

/** The list box's placeholder: the allowed words, or example numbers. @param {string} key @param {Record<string, string[]>} choices */
function listPlaceholder(key, choices) {
  if (choices[key]) return choices[key].join(", ");
  return PERCENT_KEYS.has(key) ? "e.g. 0.05, 0.1, 0.2 (percent)" : "e.g. 20, 40, 60";
}

/** The controls of one row. @param {GridRow} initial */
function rowControls(initial) {
  const n = uid("grid");
  const range = (/** @type {string} */ part, /** @type {string} */ value) =>
    numberInput({ name: `${n}-${part}`, step: "any", value, "aria-label": part[0].toUpperCase() + part.slice(1), class: `grid-${part}` });
  return {
    key: h("select", { class: "grid-key", "aria-label": "Parameter" }),
    mode: radioGroup(`${n}-mode`, [{ value: "list", label: "List" }, { value: "range", label: "Range" }], initial.mode, "Kind of values"),
    list: h("input", { type: "text", class: "grid-list", value: initial.list, autocomplete: "off", "aria-label": "Values" }),
    start: range("start", initial.start),
    stop: range("stop", initial.stop),
    step: range("step", initial.step),
    size: h("span", { class: "hint grid-size" }),
    error: h("div", { class: "field-error", "aria-live": "polite" }),
  };
}

/**
 * One grid row; `fill(options)` re-lists the keys keeping the choice when it still exists.
 * @param {GridRow} initial @param {{choices: Record<string, string[]>, onChange: () => void, onRemove: (row: any) => void}} ctx
 */
function gridRow(initial, { choices, onChange, onRemove }) {
  const c = rowControls(initial);
  const rangeBox = h("div", { class: "grid-range" }, c.start, h("span", {}, "to"), c.stop, h("span", {}, "step"), c.step);
  const remove = h("button", { type: "button", class: "btn btn-s btn-ghost grid-remove" }, "Remove");
  const element = h("div", { class: "field sweep-row" },
    h("div", { class: "sweep-row-head" }, c.key, c.mode, remove), c.list, rangeBox, c.size, c.error);
  const value = () => /** @type {GridRow} */ ({ key: c.key.value, mode: selectedValue(c.mode) === "range" ? "range" : "list",
    list: c.list.value, start: c.start.value, stop: c.stop.value, step: c.step.value });
  const sync = () => {
    const v = value();
    element.dataset.field = `grid.${v.key}`;
    element.dataset.key = v.key;
    c.list.hidden = v.mode !== "list";
    rangeBox.hidden = v.mode !== "range";
    c.list.placeholder = listPlaceholder(v.key, choices);
    const size = rowSize(v);
    c.size.textContent = size.error ? size.error : `${size.values} value${size.values === 1 ? "" : "s"}`;
    c.size.classList.toggle("grid-size-bad", Boolean(size.error));
  };
  element.addEventListener("input", () => { sync(); onChange(); });
  element.addEventListener("change", () => { sync(); onChange(); });
  const api = {
    element, value, error: c.error,
    /** @param {KeyOption[]} options */
    fill(options) {
      const keep = c.key.value || initial.key;
      c.key.replaceChildren(...options.map((o) => h("option", { value: o.value, selected: o.value === keep }, o.label)));
      sync();
    },
  };
  remove.addEventListener("click", () => onRemove(api));
  return api;
}

/**
 * @param {{rows: GridRow[], choices: Record<string, string[]>, onChange: () => void}} spec
 */
export function gridEditor({ rows: initialRows, choices, onChange }) {
  /** @type {ReturnType<typeof gridRow>[]} */
  const rows = [];
  /** @type {KeyOption[]} */
  let options = [];
  /** @type {SweepLimits | null} */
  let limits = null;
  const list = h("div", { class: "sweep-rows" });
  const count = h("p", { class: "sweep-count", id: "sweep-count", "aria-live": "polite" });
  const error = h("div", { class: "field-error", id: "grid-error", "aria-live": "polite" });
  const add = h("button", { type: "button", class: "btn btn-s", id: "add-grid-row" }, "Add a parameter");
  const all = { ...CHOICE_KEYS, ...choices };
  const changed = () => { refresh(); onChange(); };
  /** @param {GridRow} initial */
  const addRow = (initial) => {
    const r = gridRow(initial, { choices: all, onChange: changed, onRemove: (gone) => {
      rows.splice(rows.indexOf(gone), 1);
      gone.element.remove();
      changed();
    } });
    rows.push(r);
    list.append(r.element);
    r.fill(options);
  };
  add.addEventListener("click", () => {
    const used = new Set(rows.map((r) => r.value().key));
    const free = options.find((o) => !used.has(o.value));
    addRow({ key: free?.value ?? "", mode: "list", list: "", start: "", stop: "", step: "" });
    changed();
  });
  const values = () => rows.map((r) => r.value());
  const refresh = () => {
    const message = capMessage(combinationCount(values()), limits);
    count.textContent = message.text;
    count.classList.toggle("sweep-count-over", message.over);
    add.disabled = rows.length >= (limits?.max_grid_keys ?? 8);
  };
  const element = h("section", { class: "card", dataset: { field: "grid" }, "aria-labelledby": "grid-title" },
    h("h2", { id: "grid-title" }, "Parameters to vary"),
    h("p", { class: "muted small" }, "Every combination of these values runs as one backtest of the settings below (a value here replaces the same setting there). The last parameter varies fastest; combinations the strategy cannot run (e.g. skip ≥ lookback) are dropped and counted."),
    list, h("div", { class: "form-actions" }, add), count, error);
  for (const r of initialRows) addRow(r);
  return {
    element, values,
    /** @param {KeyOption[]} next */
    setKeys(next) {
      options = next;
      for (const r of rows) r.fill(options);
      refresh();
    },
    /** @param {SweepLimits} next */
    setLimits(next) {
      limits = next;
      refresh();
    },
    localErrors: () => gridErrors(values(), limits),
  };
}
