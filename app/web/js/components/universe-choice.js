// @ts-check
// The point-in-time universe choice of the new-backtest form (request field `universe`).

import { field, h } from "../dom.js";

const CHOICES = [
  {
    value: "sp500_pit",
    label: "S&P 500 members on each date",
    hint: "Only stocks in the index on the rebalance day can be bought: less survivorship bias.",
  },
  {
    value: "all",
    label: "Every stock in the dataset",
    hint: "Today's members back-filled into the past: survivorship bias flatters results.",
  },
];

/**
 * createUniverseChoice({initial, listed}) → {element, value(), follow(listed)}.
 * Without an explicit `initial` the default follows the API's: point in time for the
 * whole universe, "all" for a chosen symbol list, until the user picks one.
 * @param {{initial?: string | null, listed: boolean}} options
 */
export function createUniverseChoice({ initial = null, listed }) {
  let picked = Boolean(initial);
  const select = h("select", { name: "universe", id: "universe-select" },
    CHOICES.map((c) => h("option", { value: c.value }, c.label)));
  select.value = initial || (listed ? "all" : "sp500_pit");
  const element = field({ label: "Index membership", control: select, name: "universe", hint: " " });
  const hint = /** @type {HTMLElement} */ (element.querySelector(".hint"));
  const explain = () => { hint.textContent = CHOICES.find((c) => c.value === select.value)?.hint || ""; };
  select.addEventListener("change", () => { picked = true; explain(); });
  explain();
  return {
    element,
    value: () => select.value,
    /** @param {boolean} isListed */
    follow(isListed) {
      if (picked) return;
      select.value = isListed ? "all" : "sp500_pit";
      explain();
    },
  };
}
