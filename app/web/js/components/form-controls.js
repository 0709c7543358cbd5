// @ts-check
// Small form controls shared by the forms: radio groups, number inputs, plain values.

import { h } from "../dom.js";
import { parseNumber } from "../labels.js";

/**
 * Segmented radio buttons; `selectedValue(group)` reads the choice.
 * @param {string} name @param {{value: string, label: string}[]} options @param {string} value @param {string} legend
 */
export function radioGroup(name, options, value, legend) {
  return h("div", { class: "segmented", role: "radiogroup", "aria-label": legend },
    options.map((o) => h("label", {},
      h("input", { type: "radio", name, value: o.value, checked: o.value === value }), o.label)));
}

/** @param {HTMLElement} group */
export function selectedValue(group) {
  return /** @type {HTMLInputElement | null} */ (group.querySelector("input:checked"))?.value;
}

/** @param {Record<string, any>} attrs */
export function numberInput(attrs) {
  return h("input", { type: "number", inputmode: "decimal", ...attrs });
}

/** An input's value as a number, null when empty, the text when it is no number. @param {HTMLInputElement} input */
export function readNumber(input) {
  return parseNumber(input.value);
}

/**
 * A <select> of [value, label] pairs.
 * @param {Record<string, any>} attrs @param {[string, string][]} options @param {string} selected
 */
export function selectOf(attrs, options, selected) {
  return h("select", attrs, options.map(([value, label]) => h("option", { value, selected: value === selected }, label)));
}

/**
 * A date box that reads and shows ISO dates (YYYY-MM-DD) whatever the browser's locale
 * (a native date input shows mm/dd/yyyy in en-US). `min`/`max` bound the data.
 * @param {{name: string, value?: string, min?: string, max?: string, label?: string}} attrs
 */
export function dateInput({ name, value = "", min, max, label }) {
  return h("input", { type: "text", name, value, autocomplete: "off", spellcheck: "false",
    placeholder: "YYYY-MM-DD", pattern: "\\d{4}-\\d{2}-\\d{2}", maxlength: 10, size: 10,
    "aria-label": label, dataset: { min: min ?? "", max: max ?? "", kind: "date" } });
}
