// The custom-screen builder: filters, ranking, top N and weighting, producing the
// same filter_criteria JSON that POST /v1/backtest accepts.

import { h, replace, uid } from "../dom.js";

export const FACTORS = [
  { id: "close", label: "Close price", window: null, unit: "price in $" },
  { id: "return", label: "Return", window: 126, unit: "fraction: 0.10 = 10%" },
  { id: "sma", label: "Simple moving average", window: 200, unit: "price in $" },
  { id: "ema", label: "Exponential moving average", window: 50, unit: "price in $" },
  { id: "volatility", label: "Volatility (annualised)", window: 63, unit: "fraction: 0.25 = 25%" },
  { id: "rsi", label: "RSI", window: 14, unit: "0–100" },
  { id: "avg_dollar_volume", label: "Avg dollar volume", window: 20, unit: "$ per day" },
  { id: "drawdown_from_high", label: "Drawdown from high", window: 252, unit: "fraction: -0.2 = 20% below" },
];
const BY_ID = Object.fromEntries(FACTORS.map((f) => [f.id, f]));
const OPS = [">", ">=", "<", "<="];
const MAX_WINDOW = 756;

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

function factorSelect(value, label) {
  return h(
    "select",
    { "aria-label": label },
    FACTORS.map((f) => h("option", { value: f.id, selected: f.id === value }, f.label)),
  );
}

function windowInput(value, label) {
  return h("input", { type: "number", min: 1, max: MAX_WINDOW, step: 1, value: value ?? "", "aria-label": label, inputmode: "numeric" });
}

function smallField(labelText, control, fieldName) {
  const id = control.id || uid("sf");
  control.id = id;
  control.removeAttribute("aria-label");
  return h("div", { class: "field", dataset: { field: fieldName } },
    h("label", { for: id }, labelText), control, h("div", { class: "field-error", id: `${id}-error` }));
}

function toNumber(input) {
  const raw = input.value.trim();
  if (raw === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : raw;
}

/** createScreenBuilder({initial, onChange}) → {element, getCriteria()} */
export function createScreenBuilder({ initial = DEFAULT_SCREEN, onChange = () => {} } = {}) {
  const rows = [];
  const rowList = h("div", { class: "rule-list" });
  const empty = h("p", { class: "muted small" }, "No filters: every stock of the universe qualifies.");

  function syncWindow(select, win) {
    const f = BY_ID[select.value];
    win.disabled = !f?.window;
    if (!f?.window) win.value = "";
    else if (!win.value) win.value = f.window;
  }

  function addRow(rule = { factor: "return", window: 126, op: ">", value: 0 }) {
    const index = rows.length;
    const factor = factorSelect(rule.factor, "Factor");
    const win = windowInput(rule.window, "Window (days)");
    const op = h("select", {}, OPS.map((o) => h("option", { value: o, selected: o === rule.op }, o)));
    const hasOther = Boolean(rule.other);
    const kind = h("select", {},
      h("option", { value: "value", selected: !hasOther }, "a value"),
      h("option", { value: "factor", selected: hasOther }, "another factor"));
    const value = h("input", { type: "number", step: "any", value: rule.value ?? 0, inputmode: "decimal" });
    const otherFactor = factorSelect(rule.other?.factor ?? "sma", "Other factor");
    const otherWin = windowInput(rule.other?.window ?? 200, "Other window (days)");
    const unitHint = h("div", { class: "hint" });
    const row = {};
    const remove = h("button", {
      type: "button",
      class: "btn btn-s btn-danger",
      "aria-label": `Remove filter ${index + 1}`,
      onclick: () => {
        rows.splice(rows.indexOf(row), 1);
        render();
        onChange();
      },
    }, "Remove");
    const valueField = smallField("Value", value);
    const otherFactorField = smallField("Other factor", otherFactor);
    const otherWinField = smallField("Window", otherWin);
    const refresh = () => {
      syncWindow(factor, win);
      syncWindow(otherFactor, otherWin);
      const isFactor = kind.value === "factor";
      valueField.hidden = isFactor;
      otherFactorField.hidden = !isFactor;
      otherWinField.hidden = !isFactor;
      unitHint.textContent = isFactor ? "" : `Value unit: ${BY_ID[factor.value]?.unit ?? ""}`;
    };
    for (const el of [factor, kind, otherFactor]) el.addEventListener("change", () => { refresh(); onChange(); });
    for (const el of [win, op, value, otherWin]) el.addEventListener("input", onChange);
    const element = h("div", { class: "rule", role: "group" },
      smallField("Factor", factor), smallField("Window (days)", win), smallField("Op", op),
      smallField("Compare with", kind), valueField, otherFactorField, otherWinField,
      h("div", {}, remove),
      h("div", { class: "rule-error" }, unitHint),
      h("div", { class: "field-error rule-error" }));
    Object.assign(row, {
      element, remove, factor, win, op, kind, value, otherFactor, otherWin,
      fields: { factor: factor.parentElement, window: win.parentElement, op: op.parentElement,
        value: valueField, other: otherFactorField, otherWindow: otherWinField },
      toJSON() {
        const out = { factor: factor.value };
        if (BY_ID[factor.value]?.window) out.window = toNumber(win);
        out.op = op.value;
        if (kind.value === "factor") {
          out.other = { factor: otherFactor.value };
          if (BY_ID[otherFactor.value]?.window) out.other.window = toNumber(otherWin);
        } else {
          out.value = toNumber(value);
        }
        return out;
      },
    });
    refresh();
    rows.push(row);
  }

  function render() {
    rows.forEach((row, i) => {
      row.element.dataset.field = `filter_criteria.filters[${i}]`;
      row.element.setAttribute("aria-label", `Filter ${i + 1}`);
      row.remove.setAttribute("aria-label", `Remove filter ${i + 1}`);
      row.fields.factor.dataset.field = `filter_criteria.filters[${i}].factor`;
      row.fields.window.dataset.field = `filter_criteria.filters[${i}].window`;
      row.fields.op.dataset.field = `filter_criteria.filters[${i}].op`;
      row.fields.value.dataset.field = `filter_criteria.filters[${i}].value`;
      row.fields.other.dataset.field = `filter_criteria.filters[${i}].other`;
      row.fields.otherWindow.dataset.field = `filter_criteria.filters[${i}].other.window`;
    });
    replace(rowList, rows.length ? rows.map((r) => r.element) : empty);
  }

  (initial.filters || []).forEach((rule) => addRow(rule));
  render();

  const addButton = h("button", {
    type: "button",
    class: "btn btn-s",
    onclick: () => {
      addRow();
      render();
      onChange();
      rows[rows.length - 1].factor.focus();
    },
  }, "+ Add filter");

  // Ranking
  const rankOn = h("input", { type: "checkbox", checked: Boolean(initial.rank_by) });
  const rankFactor = factorSelect(initial.rank_by?.factor ?? "return", "Rank by");
  const rankWin = windowInput(initial.rank_by?.window ?? 252, "Rank window (days)");
  const order = h("select", {},
    h("option", { value: "desc", selected: !initial.ascending }, "Highest first"),
    h("option", { value: "asc", selected: Boolean(initial.ascending) }, "Lowest first"));
  const topN = h("input", { type: "number", min: 1, step: 1, value: initial.top_n ?? 20, inputmode: "numeric" });
  const weighting = h("select", {},
    h("option", { value: "equal", selected: initial.weighting !== "inverse_volatility" }, "Equal weight"),
    h("option", { value: "inverse_volatility", selected: initial.weighting === "inverse_volatility" }, "Inverse volatility"));
  const rankFields = h("div", { class: "grid-4" },
    smallField("Rank by", rankFactor, "filter_criteria.rank_by.factor"),
    smallField("Window (days)", rankWin, "filter_criteria.rank_by.window"),
    smallField("Order", order, "filter_criteria.ascending"),
    smallField("Keep top N", topN, "filter_criteria.top_n"));
  const syncRank = () => {
    syncWindow(rankFactor, rankWin);
    for (const el of [rankFactor, rankWin, order, topN]) el.disabled = !rankOn.checked || (el === rankWin && !BY_ID[rankFactor.value]?.window);
  };
  rankOn.addEventListener("change", () => { syncRank(); onChange(); });
  rankFactor.addEventListener("change", () => { syncRank(); onChange(); });
  for (const el of [rankWin, order, topN, weighting]) el.addEventListener("input", onChange);
  for (const el of [order, weighting]) el.addEventListener("change", onChange);
  syncRank();

  const element = h("div", { class: "screen-builder", dataset: { field: "filter_criteria" } },
    h("h3", { style: { marginBottom: "8px" } }, "Filters"),
    h("p", { class: "hint", style: { marginBottom: "8px" } },
      "A stock is held only if it passes every filter on a rebalancing day. Windows are in trading days (1–756)."),
    rowList,
    addButton,
    h("div", { class: "field-error", style: { marginTop: "8px" } }),
    h("div", { style: { marginTop: "16px" }, dataset: { field: "filter_criteria.rank_by" } },
      h("label", { class: "choice", style: { marginBottom: "8px" } }, rankOn, h("span", {}, h("b", {}, "Rank and keep the top N"))),
      rankFields,
      h("div", { class: "field-error" })),
    h("div", { class: "grid-4", style: { marginTop: "16px" } },
      smallField("Weighting", weighting, "filter_criteria.weighting")),
  );

  return {
    element,
    getCriteria() {
      const out = { filters: rows.map((r) => r.toJSON()) };
      if (rankOn.checked) {
        out.rank_by = { factor: rankFactor.value };
        if (BY_ID[rankFactor.value]?.window) out.rank_by.window = toNumber(rankWin);
        out.ascending = order.value === "asc";
        out.top_n = toNumber(topN);
      }
      out.weighting = weighting.value;
      return out;
    },
  };
}
