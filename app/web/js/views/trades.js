// @ts-check
// The trade table of a completed backtest: server-side pagination and filters, CSV export.

import { api, totalCount } from "../api.js";
import { dateInput } from "../components/form-controls.js";
import { createPagedTable } from "../components/paged-table.js";
import { toCsv } from "../csv.js";
import { downloadText, field, h } from "../dom.js";
import { isIsoDate } from "../form-checks.js";
import { date, int, money, pct, qty, signedMoney, tone } from "../format.js";

/**
 * @typedef {{symbol: string, entry_date: string, entry_price: number, exit_date?: string | null,
 *   exit_price?: number | null, quantity: number, pnl?: number | null, pnl_percent?: number | null,
 *   is_open: boolean}} Trade
 * @typedef {{symbol: string, start_date: string, end_date: string}} TradeFilters
 * @typedef {{filters: TradeFilters, sort: string}} TradeQuery
 */

const PAGE_SIZES = [25, 50, 100];
const EXPORT_PAGE = 500; // the API's largest page
const NO_FILTERS = { symbol: "", start_date: "", end_date: "" };
const CSV_HEADER = ["symbol", "entry_date", "entry_price", "exit_date", "exit_price", "quantity", "pnl", "pnl_percent", "status"];

/** @param {TradeFilters} f */
const isFiltered = (f) => Boolean(f.symbol || f.start_date || f.end_date);

/** Pure: one trade as a CSV row (CSV_HEADER's order). @param {Trade} t */
export function tradeCsvRow(t) {
  return [t.symbol, t.entry_date, t.entry_price, t.exit_date ?? "", t.exit_price ?? "", t.quantity,
    t.pnl ?? "", t.pnl_percent ?? "", t.is_open ? "open" : "closed"];
}

/** A cell that names its column (the phone layout shows it as a label). @param {string} label @param {string} cls @param {import("../dom.js").Child} content */
const cell = (label, cls, content) => h("td", { class: cls || null, dataset: { label } }, content);

/** @param {Trade} t */
function tradeRow(t) {
  return h("tr", { dataset: { symbol: t.symbol } },
    cell("Symbol", "", h("b", {}, t.symbol)),
    cell("Entry date", "num", date(t.entry_date)),
    cell("Entry price", "num r", money(t.entry_price, 2)),
    cell("Exit date", "num", t.exit_date ? date(t.exit_date) : "—"),
    cell("Exit price", "num r", t.exit_price === null || t.exit_price === undefined ? "—" : money(t.exit_price, 2)),
    cell("Quantity", "num r", qty(t.quantity)),
    cell("P&L", `num r ${tone(t.pnl)}`, signedMoney(t.pnl)),
    cell("P&L %", `num r ${tone(t.pnl_percent)}`, pct(t.pnl_percent, { signed: true })),
    cell("Status", "", t.is_open ? h("span", { class: "badge badge-running" }, "open") : h("span", { class: "badge" }, "closed")));
}

/**
 * The symbol / from / to filter form; `onApply(filters)` on Apply and Reset.
 * @param {{start_date?: string, end_date?: string}} config
 * @param {(filters: TradeFilters) => void} onApply
 */
function tradeFilterForm(config, onApply) {
  const symbol = h("input", { type: "text", name: "trade-symbol", autocapitalize: "characters", spellcheck: "false", placeholder: "e.g. AAPL" });
  const from = dateInput({ name: "trade-from", min: config.start_date, max: config.end_date });
  const to = dateInput({ name: "trade-to", min: config.start_date, max: config.end_date });
  const error = h("div", { class: "field-error", role: "alert" });
  const reset = () => {
    symbol.value = "";
    from.value = "";
    to.value = "";
    onApply({ ...NO_FILTERS });
  };
  const form = h("form", { class: "filters", id: "trade-filters", "aria-label": "Filter trades" },
    field({ label: "Symbol", control: symbol, name: "symbol" }),
    field({ label: "From", control: from, name: "start_date", hint: "YYYY-MM-DD" }),
    field({ label: "To", control: to, name: "end_date", hint: "YYYY-MM-DD" }),
    h("div", { class: "row" },
      h("button", { type: "submit", class: "btn btn-primary", id: "apply-trade-filters" }, "Apply"),
      h("button", { type: "button", class: "btn", id: "reset-trade-filters", onclick: reset }, "Reset")),
    error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    symbol.value = symbol.value.trim().toUpperCase();
    const bad = [from, to].find((input) => input.value.trim() && !isIsoDate(input.value.trim()));
    if (bad) {
      error.textContent = `Enter dates as YYYY-MM-DD, e.g. ${config.start_date || "2019-01-31"}.`;
      bad.setAttribute("aria-invalid", "true");
      return;
    }
    for (const input of [from, to]) input.removeAttribute("aria-invalid");
    onApply({ symbol: symbol.value, start_date: from.value.trim(), end_date: to.value.trim() });
  });
  return { element: form, error };
}

/**
 * Column headers whose buttons sort (again: the other direction).
 * @param {TradeQuery} query @param {() => void} onSort
 */
function sortableHeaders(query, onSort) {
  /** @type {{th: HTMLElement, key: string, arrow: ChildNode}[]} */
  const headers = [];
  const paint = () => {
    for (const { th, key, arrow } of headers) {
      const active = query.sort === key || query.sort === `-${key}`;
      if (active) th.setAttribute("aria-sort", query.sort.startsWith("-") ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
      arrow.textContent = active ? (query.sort.startsWith("-") ? "▼" : "▲") : "";
    }
  };
  const sortable = (/** @type {string} */ label, /** @type {string} */ key, right = false) => {
    const button = h("button", { type: "button", class: "sort", dataset: { sort: key } }, label, h("span", { "aria-hidden": "true" }, ""));
    const th = h("th", { scope: "col", class: right ? "r" : null }, button);
    button.addEventListener("click", () => {
      query.sort = query.sort === key ? `-${key}` : key;
      paint();
      onSort();
    });
    headers.push({ th, key, arrow: /** @type {ChildNode} */ (button.lastChild) });
    return th;
  };
  const plain = (/** @type {string} */ label, right = false) => h("th", { scope: "col", class: right ? "r" : null }, label);
  const cells = [sortable("Symbol", "symbol"), sortable("Entry date", "entry_date"), plain("Entry price", true),
    sortable("Exit date", "exit_date"), plain("Exit price", true), plain("Quantity", true),
    sortable("P&L", "pnl", true), sortable("P&L %", "pnl_percent", true), plain("Status")];
  paint();
  return cells;
}

/**
 * "Download lots CSV": every page of the current filter and sort, 500 at a time.
 * @param {string} id @param {TradeQuery} query @param {() => boolean} isDisposed
 */
function tradesCsvButton(id, query, isDisposed) {
  const note = h("span", { class: "hint", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "btn btn-s", id: "download-trades" }, "Download lots CSV");
  button.addEventListener("click", async () => {
    button.disabled = true;
    const rows = [];
    try {
      for (let offset = 0, all = Infinity; offset < all;) {
        const result = await api.trades(id, { ...query.filters, sort: query.sort, limit: EXPORT_PAGE, offset });
        if (isDisposed()) return;
        all = totalCount(result);
        const list = result.data || [];
        rows.push(...list.map(tradeCsvRow));
        if (!list.length) break;
        offset += list.length;
        note.textContent = `Fetched ${int(rows.length)} of ${int(all)}…`;
      }
      const filtered = isFiltered(query.filters);
      downloadText(`backtest-${id}-trades${filtered ? "-filtered" : ""}.csv`, toCsv(CSV_HEADER, rows));
      note.textContent = `${int(rows.length)} lots exported${filtered ? " (filtered)" : ""}.`;
    } catch (err) {
      if (err.status !== 401) note.textContent = `Export failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "row", style: { alignItems: "center" } }, note, button);
}

/** @param {string} id @param {{start_date?: string, end_date?: string}} config */
export function createTradesTable(id, config) {
  /** @type {TradeQuery} */
  const query = { filters: { ...NO_FILTERS }, sort: "entry_date" };
  let disposed = false;
  const filterForm = tradeFilterForm(config, (filters) => {
    query.filters = filters;
    paged.restart();
  });
  const paged = createPagedTable({
    id: "trades-table",
    caption: "Lots: FIFO round trips (the shares of one buy until sold); column buttons sort.",
    head: sortableHeaders(query, () => paged.restart()),
    pager: { prefix: "trades", sizes: PAGE_SIZES, size: 25, sizeId: "trades-page-size", sizeLabel: "Lots per page",
      pageId: "trades-page", live: true, noun: "lots", emptyText: "No lots", pageWhenEmpty: false },
    lockWhileLoading: true,
    fetchPage: async (limit, offset) => {
      const result = await api.trades(id, { ...query.filters, sort: query.sort, limit, offset });
      return { items: result.data || [], total: totalCount(result) };
    },
    row: tradeRow,
    empty: () => h("tr", {}, h("td", { colspan: 9, class: "empty-state" },
      isFiltered(query.filters) ? "No lots match these filters." : "This backtest made no trades.")),
    onStart: () => { filterForm.error.textContent = ""; },
    onError: (err) => {
      const fieldErrors = err.fieldErrors;
      filterForm.error.textContent = fieldErrors.length ? fieldErrors.map((/** @type {import("../api-errors.js").FieldError} */ e) => `${e.field}: ${e.message}`).join(" ") : err.message;
    },
  });
  const element = h("section", { class: "card", "aria-labelledby": "trades-title", id: "trades" },
    h("div", { class: "card-head" }, h("h2", { id: "trades-title" }, "Lots (FIFO round trips)"), tradesCsvButton(id, query, () => disposed)),
    filterForm.element,
    h("div", { class: "table-wrap" }, paged.table),
    paged.pager);
  paged.load();
  return {
    element,
    destroy() {
      disposed = true;
      paged.destroy();
    },
  };
}
