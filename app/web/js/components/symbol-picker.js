// @ts-check
// An accessible autocomplete (ARIA 1.2 combobox + listbox) that collects symbols as chips.

import { h, replace, uid } from "../dom.js";

/** @typedef {{symbol: string, name?: string, sector?: string, type?: string}} SymbolInfo */

const MAX_OPTIONS = 12;

/**
 * Pure: the suggestions for `query`: tickers starting with it (shortest first), then
 * names containing it; selected symbols left out; at most 12.
 * @param {SymbolInfo[]} all @param {string} query @param {Set<string>} selected
 */
export function matches(all, query, selected) {
  const q = query.trim().toUpperCase();
  if (!q) return [];
  const bySymbol = [];
  const byName = [];
  for (const item of all) {
    if (selected.has(item.symbol)) continue;
    if (item.symbol.startsWith(q)) bySymbol.push(item);
    else if (item.name && item.name.toUpperCase().includes(q)) byName.push(item);
  }
  bySymbol.sort((a, b) => a.symbol.length - b.symbol.length || a.symbol.localeCompare(b.symbol));
  return [...bySymbol, ...byName].slice(0, MAX_OPTIONS);
}

/**
 * Pure: typed text "jpm, xom zzz" → the tokens, which are known, which are not.
 * @param {string} text @param {Map<string, unknown>} known
 */
export function typedTokens(text, known) {
  const tokens = text.toUpperCase().split(/[\s,;]+/).filter(Boolean);
  return { tokens, found: tokens.filter((t) => known.has(t)), unknown: tokens.filter((t) => !known.has(t)) };
}

/**
 * The listbox under the input: options, the active one, aria-activedescendant.
 * @param {HTMLInputElement} input @param {string} label @param {(symbol: string) => void} onPick
 */
function suggestionList(input, label, onPick) {
  const listId = uid("symbols-list");
  const list = h("ul", { id: listId, role: "listbox", class: "combo-list", hidden: true, "aria-label": label });
  input.setAttribute("aria-controls", listId);
  /** @type {SymbolInfo[]} */
  let options = [];
  let active = -1;
  const setActive = (/** @type {number} */ index) => {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    const li = index >= 0 ? list.children[index] : null;
    if (li) {
      input.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  };
  const option = (/** @type {SymbolInfo} */ item, /** @type {number} */ i) => h("li", {
    id: `${listId}-${i}`, role: "option", "aria-selected": "false", dataset: { symbol: item.symbol },
    onmousedown: (/** @type {Event} */ e) => e.preventDefault(),
    onclick: () => onPick(item.symbol),
  }, h("span", { class: "sym" }, item.symbol), h("span", {}, item.name || ""),
  h("span", { class: "meta" }, item.type === "etf" ? "ETF" : item.sector || ""));
  return {
    element: list,
    isOpen: () => !list.hidden,
    active: () => (active >= 0 ? options[active] : undefined),
    show(/** @type {SymbolInfo[]} */ items) {
      options = items;
      replace(list, items.map(option));
      list.hidden = !items.length;
      input.setAttribute("aria-expanded", String(items.length > 0));
      setActive(items.length ? 0 : -1);
    },
    close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    },
    move: (/** @type {number} */ delta) => setActive(Math.max(0, Math.min(active + delta, options.length - 1))),
  };
}

/** The selected symbols as removable chips, and a count. */
function chipList(/** @type {Set<string>} */ selected, /** @type {Map<string, SymbolInfo>} */ known, /** @type {(symbol: string) => void} */ onRemove) {
  const element = h("div", { class: "chips", "aria-live": "polite" });
  const status = h("div", { class: "hint" });
  const chip = (/** @type {string} */ sym) => h("span", { class: "chip", dataset: { symbol: sym }, title: known.get(sym)?.name || sym },
    sym, h("button", { type: "button", "aria-label": `Remove ${sym}`, onclick: () => onRemove(sym) }, "×"));
  const render = () => {
    replace(element, [...selected].map(chip));
    status.textContent = selected.size
      ? `${selected.size} symbol${selected.size === 1 ? "" : "s"} selected.`
      : "No symbols selected yet.";
  };
  return { element, status, render };
}

/** "Add a whole sector…": every stock of the picked sector. */
function sectorSelect(/** @type {SymbolInfo[]} */ symbols, /** @type {(symbols: string[]) => void} */ onAdd) {
  const sectors = [...new Set(symbols.filter((s) => s.sector).map((s) => s.sector))].sort();
  const select = h("select", { "aria-label": "Add every stock of a sector", class: "sector-select" },
    h("option", { value: "" }, "Add a whole sector…"),
    sectors.map((s) => h("option", { value: s }, s)));
  select.addEventListener("change", () => {
    const sector = select.value;
    if (!sector) return;
    onAdd(symbols.filter((s) => s.sector === sector && s.type !== "etf").map((s) => s.symbol));
    select.value = "";
  });
  return select;
}

function comboInput() {
  return h("input", {
    type: "text", id: uid("symbols-input"), role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
    autocomplete: "off", autocapitalize: "characters", spellcheck: "false",
    placeholder: "Type a ticker or company name, e.g. AAPL or Apple",
  });
}

/**
 * Keys of the combobox: arrows move, Enter adds, Escape closes, Backspace drops the last chip.
 * @param {ReturnType<typeof suggestionList>} list
 * @param {{open: () => void, addTyped: () => void, dropLast: () => boolean}} actions
 */
function comboKeys(list, { open, addTyped, dropLast }) {
  return (/** @type {KeyboardEvent} */ event) => {
    const input = /** @type {HTMLInputElement} */ (event.target);
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (list.isOpen()) list.move(1);
      else open();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      list.move(-1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      addTyped();
    } else if (event.key === "Escape" && list.isOpen()) {
      event.preventDefault();
      list.close();
    } else if (event.key === "Backspace" && !input.value) {
      dropLast();
    }
  };
}

/**
 * createSymbolPicker({symbols, initial, onChange}) → {element, input, getSelected(), setSelected()}.
 * `symbols` are the /v1/symbols entries; unknown tickers typed in are refused locally.
 * @param {{symbols: SymbolInfo[], initial?: string[], onChange?: (selected: string[]) => void, label?: string}} spec
 */
export function createSymbolPicker({ symbols, initial = [], onChange = () => {}, label = "Symbols" }) {
  const known = new Map(symbols.map((s) => [s.symbol, s]));
  const selected = new Set(initial.filter((s) => known.has(s)));
  const input = comboInput();
  const emit = () => {
    chips.render();
    onChange([...selected]);
  };
  const add = (/** @type {string} */ symbol) => {
    selected.add(symbol);
    input.value = "";
    list.close();
    emit();
    input.focus();
  };
  const list = suggestionList(input, label, add);
  const chips = chipList(selected, known, (sym) => { selected.delete(sym); emit(); input.focus(); });
  const addTyped = () => {
    const { tokens, found, unknown } = typedTokens(input.value, known);
    const active = list.active();
    if (tokens.length > 1 || (found.length === 1 && tokens.length === 1 && !active)) {
      found.forEach((t) => selected.add(t));
      input.value = unknown.join(" ");
      list.close();
      emit();
      if (unknown.length) chips.status.textContent = `Not in the dataset: ${unknown.join(", ")}.`;
    } else if (active) add(active.symbol);
    else if (found.length === 1) add(found[0]);
    else if (tokens.length) chips.status.textContent = `${tokens[0]} is not in the dataset.`;
  };
  const open = () => list.show(matches(symbols, input.value, selected));
  const dropLast = () => {
    if (!selected.size) return false;
    selected.delete([...selected][selected.size - 1]);
    emit();
    return true;
  };
  input.addEventListener("input", open);
  input.addEventListener("blur", list.close);
  input.addEventListener("keydown", comboKeys(list, { open, addTyped, dropLast }));
  const sectors = sectorSelect(symbols, (syms) => { syms.forEach((s) => selected.add(s)); emit(); });
  const clearAll = h("button", { type: "button", class: "btn btn-s", onclick: () => { selected.clear(); emit(); input.focus(); } }, "Clear");
  chips.render();
  return {
    element: h("div", { class: "symbol-picker" },
      h("div", { class: "combo" }, input, list.element),
      h("div", { class: "row", style: { marginTop: "8px", alignItems: "center" } },
        h("div", { style: { width: "260px", maxWidth: "100%" } }, sectors), clearAll, chips.status),
      chips.element),
    input,
    getSelected: () => [...selected],
    setSelected(/** @type {string[]} */ next) {
      selected.clear();
      next.filter((s) => known.has(s)).forEach((s) => selected.add(s));
      chips.render();
    },
  };
}
