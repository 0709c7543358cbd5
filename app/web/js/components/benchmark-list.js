// @ts-check
// "More benchmarks": up to `max` in all (GET /v1/symbols: limits.max_benchmarks) (the Benchmark select counts), each a
// symbol or a named allocation with its rebalancing. Entry i carries data-field
// "benchmarks[i]" (its allocation "benchmarks[i].allocation") so messages land on it.

import { h, replace } from "../dom.js";
import { MAX_BENCHMARKS } from "../portfolio-form.js";
import { createAllocationBuilder } from "./allocation-builder.js";
import { selectOf } from "./form-controls.js";

/** @typedef {import("../portfolio-form.js").BenchmarkDraft} BenchmarkDraft */
/** @typedef {import("../views/new-backtest.js").SymbolInfo} SymbolInfo */

const BENCH_REBALANCING = /** @type {[string, string][]} */ (["daily", "weekly", "monthly", "quarterly", "never"].map((v) => [v, v === "never" ? "Never (buy and hold)" : v[0].toUpperCase() + v.slice(1)]));

/**
 * One entry: kind (symbol / allocation), then its controls; `read()` gives the draft.
 * @param {{symbols: SymbolInfo[], draft: BenchmarkDraft, onRemove: () => void, onChange: () => void}} spec
 */
function benchmarkEntry({ symbols, draft, onRemove, onChange }) {
  const kind = selectOf({ class: "bench-kind", "aria-label": "Benchmark type" }, [["symbol", "A symbol"], ["allocation", "An allocation"]], draft.kind);
  const symbol = selectOf({ class: "bench-symbol", "aria-label": "Benchmark symbol" },
    [["", "Choose…"], ...symbols.map((s) => /** @type {[string, string]} */ ([s.symbol, `${s.symbol}${s.name ? ` — ${s.name}` : ""}`]))],
    draft.kind === "symbol" ? draft.symbol : "");
  const alloc = draft.kind === "allocation" ? draft : { name: "", rows: [], rebalancing: "monthly" };
  const name = h("input", { type: "text", class: "bench-name", value: alloc.name, maxlength: 60, placeholder: "e.g. 60/40", "aria-label": "Benchmark name" });
  const rebalancing = selectOf({ class: "bench-rebalancing", "aria-label": "Benchmark rebalancing" }, BENCH_REBALANCING, alloc.rebalancing);
  const builder = createAllocationBuilder({ symbols, initial: alloc.rows, field: "allocation", label: "Benchmark allocation", onChange });
  const allocPart = h("div", { class: "bench-allocation" }, h("div", { class: "row" }, name, rebalancing), builder.element);
  const error = h("div", { class: "field-error", "aria-live": "polite" });
  const sync = () => { symbol.hidden = kind.value !== "symbol"; allocPart.hidden = kind.value !== "allocation"; };
  kind.addEventListener("change", sync);
  sync();
  const remove = h("button", { type: "button", class: "btn btn-s btn-ghost", onclick: onRemove }, "Remove");
  const element = h("div", { class: "bench-entry card-inset" }, h("div", { class: "row" }, kind, symbol, remove), allocPart, error);
  return {
    element,
    /** @param {number} i */
    place(i) {
      element.dataset.field = `benchmarks[${i}]`;
      builder.element.dataset.field = `benchmarks[${i}].allocation`;
      remove.setAttribute("aria-label", `Remove benchmark ${i + 1}`);
    },
    /** @returns {BenchmarkDraft} */
    read: () => (kind.value === "symbol" ? { kind: "symbol", symbol: symbol.value }
      : { kind: "allocation", name: name.value, rows: builder.rows(), rebalancing: rebalancing.value }),
  };
}

/**
 * createBenchmarkList({symbols, initial, primary, onChange}) → {element, drafts()}.
 * `primary()` reads the form's one-symbol Benchmark select (it counts towards the limit).
 * @param {{symbols: SymbolInfo[], initial: BenchmarkDraft[], primary: () => string, onChange: () => void, max?: number}} spec
 */
export function createBenchmarkList({ symbols, initial, primary, onChange, max = MAX_BENCHMARKS }) {
  /** @type {ReturnType<typeof benchmarkEntry>[]} */
  const entries = [];
  const list = h("div", { class: "bench-list" });
  const room = () => max - (primary() ? 1 : 0) - entries.length;
  const addButton = h("button", { type: "button", class: "btn btn-s", id: "add-benchmark" }, "Add a benchmark");
  const note = h("span", { class: "hint" });
  const refresh = () => {
    entries.forEach((e, i) => e.place(i + (primary() ? 1 : 0)));
    addButton.disabled = room() <= 0;
    note.textContent = `Up to ${max} benchmarks in all, the Benchmark above included.`;
  };
  const render = () => {
    replace(list, entries.map((e) => e.element));
    refresh();
    onChange();
  };
  const add = (/** @type {BenchmarkDraft} */ draft) => {
    const entry = benchmarkEntry({ symbols, draft, onChange, onRemove: () => { entries.splice(entries.indexOf(entry), 1); render(); } });
    entries.push(entry);
  };
  initial.forEach(add);
  addButton.addEventListener("click", () => { add({ kind: "symbol", symbol: "" }); render(); });
  const element = h("div", { class: "field", dataset: { field: "benchmarks" } },
    h("span", { class: "label" }, "More benchmarks"), list, h("div", { class: "row", style: { alignItems: "center" } }, addButton, note),
    h("div", { class: "field-error", "aria-live": "polite" }));
  render();
  return { element, drafts: () => entries.map((e) => e.read()), refresh };
}
