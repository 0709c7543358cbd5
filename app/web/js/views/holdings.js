// @ts-check
// The "Holdings" card of a completed backtest: what was held at the close of a chosen
// session (GET /v1/backtest/{id}/holdings?date=…), with cash; Σ value + cash = equity.

import { api } from "../api.js";
import { sectorExposureChart } from "../components/analysis-charts.js";
import { field, h, replace } from "../dom.js";
import { money, pct, qty } from "../format.js";

/**
 * @param {string} id
 * @param {Record<string, any>} config
 * @returns {{element: HTMLElement, destroy: () => void}}
 */
export function createHoldingsPanel(id, config) {
  let disposed = false;
  let seq = 0;
  const day = /** @type {HTMLInputElement} */ (h("input", { type: "date", name: "holdings-date", id: "holdings-date", min: config.start_date, max: config.end_date }));
  const summary = h("div", { id: "holdings-summary", class: "muted", "aria-live": "polite" }, "");
  const slot = h("div", { id: "holdings-body" }, h("div", { class: "loading" }, "Loading…"));
  const form = h("form", { class: "filters", id: "holdings-form", "aria-label": "Holdings on a date" },
    field({ label: "At the close of", control: day, name: "date" }),
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn btn-primary", id: "show-holdings" }, "Show")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(day.value || undefined);
  });

  /** @param {string | undefined} date */
  async function load(date) {
    const mine = ++seq;
    try {
      const { data } = await api.holdings(id, date);
      if (disposed || mine !== seq) return;
      if (!day.value) day.value = data.date;
      const moved = data.requested_date && data.requested_date !== data.date ? ` (nearest session before ${data.requested_date})` : "";
      summary.textContent = `Close of ${data.date}${moved}: equity ${money(data.equity, 2)}, cash ${money(data.cash, 2)} (${pct(data.cash_weight)}), ${data.holdings.length} holdings.`;
      replace(slot, h("div", { class: "table-wrap" }, h("table", { class: "data", id: "holdings-table" },
        h("caption", { class: "visually-hidden" }, "Holdings at the close, largest first."),
        h("thead", {}, h("tr", {}, ["Symbol", "Sector", "Shares", "Price", "Value", "Weight"].map((x, i) => h("th", { scope: "col", class: i > 1 ? "r" : null }, x)))),
        h("tbody", {},
          data.holdings.map((/** @type {any} */ r) => h("tr", { dataset: { symbol: r.symbol, value: r.value } },
            h("td", {}, r.symbol), h("td", {}, r.sector), h("td", { class: "r" }, qty(r.shares)),
            h("td", { class: "r" }, money(r.price, 2)), h("td", { class: "r" }, money(r.value, 2)), h("td", { class: "r" }, pct(r.weight)))),
          h("tr", { class: "cash-row", dataset: { symbol: "", value: data.cash } },
            h("td", {}, "Cash"), h("td", {}, ""), h("td", {}, ""), h("td", {}, ""),
            h("td", { class: "r" }, money(data.cash, 2)), h("td", { class: "r" }, pct(data.cash_weight)))))));
    } catch (err) {
      if (disposed || mine !== seq || /** @type {any} */ (err).status === 401) return;
      replace(slot, h("div", { class: "alert alert-error", role: "alert" }, /** @type {Error} */ (err).message));
    }
  }

  load(undefined);
  const exposureSlot = h("div", { id: "exposure" });
  /** @type {import("../components/analysis-charts.js").ChartCard | null} */
  let exposure = null;
  api.exposure(id).then(({ data }) => {
    if (disposed) return;
    exposure = sectorExposureChart(data);
    replace(exposureSlot, exposure.element);
    exposure.mount();
  }).catch((err) => {
    if (disposed || err.status === 401) return;
    replace(exposureSlot, h("div", { class: "alert alert-error" }, `The exposure could not be loaded: ${err.message}`));
  });
  const element = h("section", { class: "card", "aria-labelledby": "holdings-title", id: "holdings" },
    h("h2", { id: "holdings-title" }, "Holdings"), form, summary, slot, exposureSlot);
  return { element, destroy: () => { disposed = true; exposure?.destroy(); } };
}
