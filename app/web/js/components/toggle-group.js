// @ts-check
// A group of buttons of which exactly one is pressed (chart scale: linear / log).

import { h } from "../dom.js";

/**
 * @param {string} label
 * @param {{value: string, label: string}[]} options
 * @param {string} current
 * @param {(value: string) => void} onPick
 */
export function toggleGroup(label, options, current, onPick) {
  const buttons = options.map((o) => h("button", {
    type: "button",
    class: "btn btn-s",
    "aria-pressed": String(o.value === current),
    dataset: { value: o.value },
    onclick: () => {
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === o.value)));
      onPick(o.value);
    },
  }, o.label));
  return h("div", { class: "btn-group", role: "group", "aria-label": label }, buttons);
}

/** Linear / log scale buttons. @param {(log: boolean) => void} onPick */
export function scaleToggle(onPick) {
  return toggleGroup("Scale", [{ value: "linear", label: "Linear" }, { value: "log", label: "Log" }], "linear",
    (v) => onPick(v === "log"));
}
