// An accessible autocomplete (ARIA 1.2 combobox + listbox) that collects symbols as chips.

import { h, replace, uid } from "../dom.js";

const MAX_OPTIONS = 12;

function matches(all, query, selected) {
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
 * createSymbolPicker({symbols, initial, onChange}) → {element, input, getSelected(), setSelected()}.
 * `symbols` are the /v1/symbols entries; unknown tickers typed in are refused locally.
 */
export function createSymbolPicker({ symbols, initial = [], onChange = () => {}, label = "Symbols" }) {
  const known = new Map(symbols.map((s) => [s.symbol, s]));
  const selected = new Set(initial.filter((s) => known.has(s)));
  const listId = uid("symbols-list");
  const inputId = uid("symbols-input");
  let options = [];
  let active = -1;

  const input = h("input", {
    type: "text",
    id: inputId,
    role: "combobox",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
    autocomplete: "off",
    autocapitalize: "characters",
    spellcheck: "false",
    placeholder: "Type a ticker or company name, e.g. AAPL or Apple",
  });
  const list = h("ul", { id: listId, role: "listbox", class: "combo-list", hidden: true, "aria-label": label });
  const chips = h("div", { class: "chips", "aria-live": "polite" });
  const status = h("div", { class: "hint" });
  const sectors = [...new Set(symbols.filter((s) => s.sector).map((s) => s.sector))].sort();
  const sectorSelect = h(
    "select",
    { "aria-label": "Add every stock of a sector", class: "sector-select" },
    h("option", { value: "" }, "Add a whole sector…"),
    sectors.map((s) => h("option", { value: s }, s)),
  );

  function emit() {
    renderChips();
    onChange([...selected]);
  }

  function renderChips() {
    replace(
      chips,
      [...selected].map((sym) =>
        h(
          "span",
          { class: "chip", dataset: { symbol: sym }, title: known.get(sym)?.name || sym },
          sym,
          h("button", {
            type: "button",
            "aria-label": `Remove ${sym}`,
            onclick: () => {
              selected.delete(sym);
              emit();
              input.focus();
            },
          }, "×"),
        ),
      ),
    );
    status.textContent = selected.size
      ? `${selected.size} symbol${selected.size === 1 ? "" : "s"} selected.`
      : "No symbols selected yet.";
  }

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function setActive(index) {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    if (index >= 0 && list.children[index]) {
      input.setAttribute("aria-activedescendant", list.children[index].id);
      list.children[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function open() {
    options = matches(symbols, input.value, selected);
    replace(
      list,
      options.map((item, i) =>
        h(
          "li",
          {
            id: `${listId}-${i}`,
            role: "option",
            "aria-selected": "false",
            dataset: { symbol: item.symbol },
            onmousedown: (e) => e.preventDefault(),
            onclick: () => add(item.symbol),
          },
          h("span", { class: "sym" }, item.symbol),
          h("span", {}, item.name || ""),
          h("span", { class: "meta" }, item.type === "etf" ? "ETF" : item.sector || ""),
        ),
      ),
    );
    const show = options.length > 0;
    list.hidden = !show;
    input.setAttribute("aria-expanded", String(show));
    setActive(show ? 0 : -1);
  }

  function add(symbol) {
    selected.add(symbol);
    input.value = "";
    close();
    emit();
    input.focus();
  }

  function addTyped() {
    const tokens = input.value.toUpperCase().split(/[\s,;]+/).filter(Boolean);
    if (tokens.length > 1 || (tokens.length === 1 && known.has(tokens[0]) && active < 0)) {
      const unknown = tokens.filter((t) => !known.has(t));
      tokens.filter((t) => known.has(t)).forEach((t) => selected.add(t));
      input.value = unknown.join(" ");
      close();
      emit();
      if (unknown.length) status.textContent = `Not in the dataset: ${unknown.join(", ")}.`;
      return;
    }
    if (active >= 0 && options[active]) add(options[active].symbol);
    else if (tokens.length === 1 && known.has(tokens[0])) add(tokens[0]);
    else if (tokens.length) status.textContent = `${tokens[0]} is not in the dataset.`;
  }

  input.addEventListener("input", open);
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (list.hidden) open();
      else setActive(Math.min(active + 1, options.length - 1));
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive(Math.max(active - 1, 0));
    } else if (event.key === "Enter") {
      event.preventDefault();
      addTyped();
    } else if (event.key === "Escape") {
      if (!list.hidden) {
        event.preventDefault();
        close();
      }
    } else if (event.key === "Backspace" && !input.value && selected.size) {
      selected.delete([...selected].pop());
      emit();
    }
  });
  sectorSelect.addEventListener("change", () => {
    const sector = sectorSelect.value;
    if (!sector) return;
    symbols.filter((s) => s.sector === sector && s.type !== "etf").forEach((s) => selected.add(s.symbol));
    sectorSelect.value = "";
    emit();
  });

  const clearAll = h("button", {
    type: "button",
    class: "btn btn-s",
    onclick: () => {
      selected.clear();
      emit();
      input.focus();
    },
  }, "Clear");

  renderChips();
  const element = h(
    "div",
    { class: "symbol-picker" },
    h("div", { class: "combo" }, input, list),
    h("div", { class: "row", style: { marginTop: "8px", alignItems: "center" } },
      h("div", { style: { width: "260px", maxWidth: "100%" } }, sectorSelect), clearAll, status),
    chips,
  );
  return {
    element,
    input,
    getSelected: () => [...selected],
    setSelected(list_) {
      selected.clear();
      list_.filter((s) => known.has(s)).forEach((s) => selected.add(s));
      renderChips();
    },
  };
}
