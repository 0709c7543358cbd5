// The lot table (FIFO round trips) of a completed backtest: server-side pagination and filters, CSV export.

import { api, totalCount } from "../api.js";
import { toCsv } from "../csv.js";
import { downloadText, field, h, replace } from "../dom.js";
import { date, int, money, pct, qty, signedMoney, tone } from "../format.js";

const PAGE_SIZES = [25, 50, 100];
const EXPORT_PAGE = 500; // the API's largest page

export function createTradesTable(id, config) {
  let limit = 25;
  let sort = "entry_date";
  let offset = 0;
  let total = 0;
  let filters = { symbol: "", start_date: "", end_date: "" };
  let disposed = false;
  let seq = 0;

  const symbol = h("input", { type: "text", name: "trade-symbol", autocapitalize: "characters", spellcheck: "false", placeholder: "e.g. AAPL" });
  const from = h("input", { type: "date", name: "trade-from", min: config.start_date, max: config.end_date });
  const to = h("input", { type: "date", name: "trade-to", min: config.start_date, max: config.end_date });
  const filterError = h("div", { class: "field-error", role: "alert" });
  const filterForm = h("form", { class: "filters", id: "trade-filters", "aria-label": "Filter lots" },
    field({ label: "Symbol", control: symbol, name: "symbol" }),
    field({ label: "From", control: from, name: "start_date" }),
    field({ label: "To", control: to, name: "end_date" }),
    h("div", { class: "row" },
      h("button", { type: "submit", class: "btn btn-primary", id: "apply-trade-filters" }, "Apply"),
      h("button", { type: "button", class: "btn", id: "reset-trade-filters", onclick: () => {
        symbol.value = "";
        from.value = "";
        to.value = "";
        filters = { symbol: "", start_date: "", end_date: "" };
        offset = 0;
        load();
      } }, "Reset")),
    filterError);

  const tbody = h("tbody", {});
  const headers = [];
  const sortHeader = (label, key, right = false) => {
    const button = h("button", { type: "button", class: "sort", dataset: { sort: key } }, label, h("span", { "aria-hidden": "true" }, ""));
    const th = h("th", { scope: "col", class: right ? "r" : null }, button);
    button.addEventListener("click", () => {
      sort = sort === key ? `-${key}` : key;
      offset = 0;
      paintSort();
      load();
    });
    headers.push({ th, key, arrow: button.lastChild });
    return th;
  };
  function paintSort() {
    for (const { th, key, arrow } of headers) {
      const active = sort === key || sort === `-${key}`;
      if (active) th.setAttribute("aria-sort", sort.startsWith("-") ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
      arrow.textContent = active ? (sort.startsWith("-") ? "▼" : "▲") : "";
    }
  }
  const table = h("table", { class: "data", id: "trades-table" },
    h("caption", { class: "visually-hidden" }, "Lots: FIFO round trips (the shares of one buy until sold); column buttons sort."),
    h("thead", {}, h("tr", {},
      sortHeader("Symbol", "symbol"),
      sortHeader("Entry date", "entry_date"),
      h("th", { scope: "col", class: "r" }, "Entry price"),
      sortHeader("Exit date", "exit_date"),
      h("th", { scope: "col", class: "r" }, "Exit price"),
      h("th", { scope: "col", class: "r" }, "Quantity"),
      sortHeader("P&L", "pnl", true),
      sortHeader("P&L %", "pnl_percent", true),
      h("th", { scope: "col" }, "Status"))),
    tbody);
  paintSort();
  const range = h("span", { id: "trades-range", "aria-live": "polite" }, "");
  const prev = h("button", { type: "button", class: "btn btn-s", id: "trades-prev", onclick: () => { offset = Math.max(0, offset - limit); load(); } }, "← Previous");
  const next = h("button", { type: "button", class: "btn btn-s", id: "trades-next", onclick: () => { offset += limit; load(); } }, "Next →");
  const pageInfo = h("span", { id: "trades-page" });
  const sizeSelect = h("select", { "aria-label": "Lots per page", id: "trades-page-size" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === limit }, `${n} per page`)));
  sizeSelect.addEventListener("change", () => {
    limit = Number(sizeSelect.value);
    offset = 0;
    load();
  });
  const csvBtn = h("button", { type: "button", class: "btn btn-s", id: "download-trades" }, "Download lots CSV");
  const csvNote = h("span", { class: "hint", "aria-live": "polite" });

  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    filters = { symbol: symbol.value.trim().toUpperCase(), start_date: from.value, end_date: to.value };
    symbol.value = filters.symbol;
    offset = 0;
    load();
  });

  function row(t) {
    return h("tr", { dataset: { symbol: t.symbol } },
      h("td", {}, h("b", {}, t.symbol)),
      h("td", { class: "num" }, date(t.entry_date)),
      h("td", { class: "num r" }, money(t.entry_price, 2)),
      h("td", { class: "num" }, t.exit_date ? date(t.exit_date) : "—"),
      h("td", { class: "num r" }, t.exit_price === null || t.exit_price === undefined ? "—" : money(t.exit_price, 2)),
      h("td", { class: "num r" }, qty(t.quantity)),
      h("td", { class: `num r ${tone(t.pnl)}` }, signedMoney(t.pnl)),
      h("td", { class: `num r ${tone(t.pnl_percent)}` }, pct(t.pnl_percent, { signed: true })),
      h("td", {}, t.is_open ? h("span", { class: "badge badge-running" }, "open") : h("span", { class: "badge" }, "closed")));
  }

  function query(extra) {
    return { ...filters, sort, limit, offset, ...extra };
  }

  async function load() {
    const mine = ++seq;
    filterError.textContent = "";
    prev.disabled = true;
    next.disabled = true;
    try {
      const result = await api.trades(id, query());
      if (disposed || mine !== seq) return;
      total = totalCount(result);
      const list = result.data || [];
      if (!list.length && offset > 0 && total > 0) {
        offset = Math.max(0, Math.floor((total - 1) / limit) * limit);
        load();
        return;
      }
      replace(tbody, list.length ? list.map(row)
        : h("tr", {}, h("td", { colspan: 9, class: "empty-state" }, filters.symbol || filters.start_date || filters.end_date ? "No lots match these filters." : "This backtest made no trades.")));
      range.textContent = total ? `Showing ${int(offset + 1)}–${int(offset + list.length)} of ${int(total)} lots` : "No lots";
      pageInfo.textContent = total ? `Page ${int(Math.floor(offset / limit) + 1)} of ${int(Math.max(1, Math.ceil(total / limit)))}` : "";
      prev.disabled = offset === 0;
      next.disabled = offset + list.length >= total;
    } catch (err) {
      if (disposed || mine !== seq || err.status === 401) return;
      const fieldErrors = err.fieldErrors;
      filterError.textContent = fieldErrors.length ? fieldErrors.map((e) => `${e.field}: ${e.message}`).join(" ") : err.message;
    }
  }

  csvBtn.addEventListener("click", async () => {
    csvBtn.disabled = true;
    const rows = [];
    try {
      let pageOffset = 0;
      let all = Infinity;
      while (pageOffset < all) {
        const result = await api.trades(id, query({ limit: EXPORT_PAGE, offset: pageOffset }));
        if (disposed) return;
        all = totalCount(result);
        const list = result.data || [];
        for (const t of list) {
          rows.push([t.symbol, t.entry_date, t.entry_price, t.exit_date ?? "", t.exit_price ?? "", t.quantity, t.pnl ?? "", t.pnl_percent ?? "", t.is_open ? "open" : "closed"]);
        }
        if (!list.length) break;
        pageOffset += list.length;
        csvNote.textContent = `Fetched ${int(rows.length)} of ${int(all)}…`;
      }
      const filtered = filters.symbol || filters.start_date || filters.end_date;
      downloadText(`backtest-${id}-trades${filtered ? "-filtered" : ""}.csv`,
        toCsv(["symbol", "entry_date", "entry_price", "exit_date", "exit_price", "quantity", "pnl", "pnl_percent", "status"], rows));
      csvNote.textContent = `${int(rows.length)} lots exported${filtered ? " (filtered)" : ""}.`;
    } catch (err) {
      if (err.status !== 401) csvNote.textContent = `Export failed: ${err.message}`;
    } finally {
      csvBtn.disabled = false;
    }
  });

  const element = h("section", { class: "card", "aria-labelledby": "trades-title", id: "trades" },
    h("div", { class: "card-head" }, h("h2", { id: "trades-title" }, "Lots (FIFO round trips)"), h("div", { class: "row", style: { alignItems: "center" } }, csvNote, csvBtn)),
    filterForm,
    h("div", { class: "table-wrap" }, table),
    h("div", { class: "pager" }, range, h("div", { class: "row" }, sizeSelect, prev, pageInfo, next)));

  load();
  return {
    element,
    destroy() {
      disposed = true;
    },
  };
}
