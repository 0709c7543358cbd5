// @ts-check
// The allocation builder: rows of symbol + weight (%), a live total, its own messages.
// Symbols come from the catalog the API exposes (GET /v1/symbols), ETFs listed first;
// the checks and the request body are pure (portfolio-form.js).

import { h, replace, uid } from "../dom.js";
import { allocationBody, allocationErrors, sumStatus } from "../portfolio-form.js";
import { numberInput, readNumber } from "./form-controls.js";

/** @typedef {import("../views/new-backtest.js").SymbolInfo} SymbolInfo */
/** @typedef {import("../portfolio-form.js").WeightRow} WeightRow */

/** One <datalist> of the catalog per builder: ETFs first, then stocks, each with its name. @param {SymbolInfo[]} symbols */
function catalogList(symbols) {
  const sorted = [...symbols].sort((a, b) => Number(b.type === "etf") - Number(a.type === "etf") || a.symbol.localeCompare(b.symbol));
  return h("datalist", { id: uid("alloc-symbols") },
    sorted.map((s) => h("option", { value: s.symbol }, `${s.name || s.symbol}${s.type === "etf" ? " · ETF" : ""}`)));
}

/**
 * One row: symbol box, weight box, remove button.
 * @param {{listId: string, label: string, row: WeightRow, onRemove: () => void}} spec
 */
function weightRow({ listId, label, row, onRemove }) {
  const symbol = h("input", { type: "text", list: listId, value: row.symbol, autocomplete: "off", spellcheck: "false",
    autocapitalize: "characters", placeholder: "e.g. SPY", class: "alloc-symbol", "aria-label": `${label}: symbol`, size: 10 });
  const weight = numberInput({ min: 0, max: 100, step: "any", value: row.weight ?? "", class: "alloc-weight",
    "aria-label": `${label}: weight (%)`, placeholder: "%" });
  const remove = h("button", { type: "button", class: "btn btn-s btn-ghost", "aria-label": `Remove ${label}`, onclick: onRemove }, "×");
  const element = h("div", { class: "alloc-row row" }, symbol, weight, h("span", { "aria-hidden": "true" }, "%"), remove);
  return { element, symbol, weight, read: () => ({ symbol: symbol.value.trim().toUpperCase(), weight: readNumber(weight) }) };
}

/**
 * createAllocationBuilder({symbols, initial, field, label, onChange}) →
 * {element, rows(), body(), errors()}. `field` is the request path its messages carry
 * ("allocation", "benchmarks[1]"), so server messages land here too.
 * @param {{symbols: SymbolInfo[], initial?: WeightRow[], field?: string, label?: string, onChange?: () => void}} spec
 */
export function createAllocationBuilder({ symbols, initial = [], field = "allocation", label = "Allocation", onChange = () => {} }) {
  const known = new Set(symbols.map((s) => s.symbol));
  const list = catalogList(symbols);
  /** @type {ReturnType<typeof weightRow>[]} */
  const rows = [];
  const rowsEl = h("div", { class: "alloc-rows" });
  const total = h("div", { class: "alloc-sum hint", role: "status", "aria-live": "polite" });
  const errorEl = h("div", { class: "field-error", "aria-live": "polite" });
  const read = () => rows.map((r) => r.read());
  const refresh = () => {
    const status = sumStatus(read());
    total.textContent = status.text;
    total.dataset.state = status.state;
  };
  const render = () => {
    replace(rowsEl, rows.map((r) => r.element));
    refresh();
    onChange();
  };
  const add = (/** @type {WeightRow} */ row) => {
    const r = weightRow({ listId: list.id, label: `${label} row ${rows.length + 1}`, row,
      onRemove: () => { rows.splice(rows.indexOf(r), 1); render(); } });
    rows.push(r);
  };
  (initial.length ? initial : [{ symbol: "", weight: null }]).forEach(add);
  const addButton = h("button", { type: "button", class: "btn btn-s alloc-add",
    onclick: () => { add({ symbol: "", weight: null }); render(); rows[rows.length - 1].symbol.focus(); } }, "Add symbol");
  const element = h("div", { class: "field alloc-builder", dataset: { field }, role: "group", "aria-label": label },
    list, rowsEl, h("div", { class: "row", style: { alignItems: "center" } }, addButton, total), errorEl);
  element.addEventListener("input", () => {
    refresh();
    errorEl.textContent = "";
    element.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  });
  render();
  return {
    element,
    rows: read,
    body: () => allocationBody(read()),
    errors: () => allocationErrors(read(), known, field).map(({ field: f, message }) => ({ field: f, message })),
  };
}
