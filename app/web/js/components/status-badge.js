// @ts-check
// A backtest's status as a coloured badge (history rows, the backtest page).

import { h } from "../dom.js";

/** @param {string | undefined} status */
export function statusBadge(status) {
  return h("span", { class: `badge badge-${status}`, dataset: { status } }, status);
}
