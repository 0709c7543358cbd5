// @ts-check
// The user's backtests (#/history?status=&sort=&page=&size=): filter, sort, paginate,
// delete, pick 2–4 completed ones to compare.

import { api, totalCount } from "../api.js";
import { createPagedTable } from "../components/paged-table.js";
import { pageHead } from "../components/page-head.js";
import { statusBadge } from "../components/status-badge.js";
import { confirmDialog, h } from "../dom.js";
import { dateTime, num, pct, tone } from "../format.js";
import { href, navigate, setQuery } from "../router.js";

/**
 * @typedef {{task_id: string, name?: string | null, status: string, created_at?: string,
 *   completed_at?: string | null, total_return?: number | null, sharpe_ratio?: number | null}} HistoryItem
 * @typedef {{status: string, sort: string, page: number, size: number}} HistoryState
 */

const STATUSES = ["queued", "pending", "running", "completed", "failed", "cancelled"];
const SORTS = [
  ["-created_at", "Newest first"],
  ["created_at", "Oldest first"],
  ["-total_return", "Highest return"],
  ["total_return", "Lowest return"],
  ["-sharpe_ratio", "Highest Sharpe"],
  ["sharpe_ratio", "Lowest Sharpe"],
];
const PAGE_SIZES = [10, 20, 50];
const REFRESH_MS = 3000;
const COMPARE_HINT = "Tick 2–4 completed backtests to compare them.";
export const MAX_COMPARE = 4;

/** @param {HistoryItem} item */
const isActive = (item) => ["queued", "pending", "running"].includes(item.status);

/** Pure: the view's state from the URL query, unknown values replaced by defaults. */
export function historyState(/** @type {Record<string, string>} */ query) {
  return {
    status: STATUSES.includes(query.status) ? query.status : "",
    sort: SORTS.some(([v]) => v === query.sort) ? query.sort : "-created_at",
    page: Math.max(1, Number.parseInt(query.page, 10) || 1),
    size: PAGE_SIZES.includes(Number(query.size)) ? Number(query.size) : 20,
  };
}

/** @param {HistoryState} state */
function syncUrl(state) {
  setQuery("history", {
    status: state.status,
    sort: state.sort === "-created_at" ? "" : state.sort,
    page: state.page > 1 ? state.page : "",
    size: state.size === 20 ? "" : state.size,
  });
}

/** The "Compare selected" button and its hint; `update(n)` after each tick. */
function compareControls(/** @type {Set<string>} */ selected) {
  const button = h("button", { type: "button", class: "btn btn-primary", id: "compare-selected", disabled: true,
    onclick: () => navigate("compare", { ids: [...selected].join(",") }) }, "Compare selected");
  const hint = h("span", { class: "hint", "aria-live": "polite" }, COMPARE_HINT);
  const update = () => {
    const n = selected.size;
    button.disabled = n < 2 || n > MAX_COMPARE;
    button.textContent = n ? `Compare selected (${n})` : "Compare selected";
    hint.textContent = n > MAX_COMPARE ? `At most ${MAX_COMPARE} at a time.` : COMPARE_HINT;
  };
  return { element: h("div", { class: "row", style: { marginLeft: "auto", alignItems: "center" } }, hint, button), update };
}

/** Asks, then cancels (active) or deletes one backtest; true when it is gone. */
async function removeBacktest(/** @type {HistoryItem} */ item) {
  const active = isActive(item);
  const ok = await confirmDialog({
    title: active ? "Cancel this backtest?" : "Delete this backtest?",
    message: active ? "The run stops; nothing is kept." : `“${item.name || "Untitled"}” and its trades are removed for good.`,
    confirmLabel: active ? "Cancel run" : "Delete",
    danger: true,
  });
  if (!ok) return false;
  await api.remove(item.task_id);
  return true;
}

/**
 * One row: tick box (completed only), name, status, dates, return, Sharpe, delete.
 * @param {HistoryItem} item
 * @param {{selected: Set<string>, onTick: () => void, onRemove: (item: HistoryItem) => void}} ctx
 */
function historyRow(item, { selected, onTick, onRemove }) {
  const label = item.name || "Untitled backtest";
  const active = isActive(item);
  const box = h("input", {
    type: "checkbox",
    "aria-label": `Select ${label} for comparison`,
    disabled: item.status !== "completed",
    checked: selected.has(item.task_id),
    onchange: () => {
      if (box.checked) selected.add(item.task_id);
      else selected.delete(item.task_id);
      onTick();
    },
  });
  return h("tr", { dataset: { taskId: item.task_id, status: item.status } },
    h("td", {}, box),
    h("td", { class: "name-cell" }, h("a", { href: `#/backtest/${item.task_id}` }, label)),
    h("td", {}, statusBadge(item.status)),
    h("td", { class: "num" }, dateTime(item.created_at)),
    h("td", { class: "num" }, dateTime(item.completed_at)),
    h("td", { class: `num r ${tone(item.total_return)}` }, pct(item.total_return, { signed: true })),
    h("td", { class: "num r" }, num(item.sharpe_ratio, 2)),
    h("td", { class: "r" },
      h("button", { type: "button", class: "btn btn-s btn-danger", "aria-label": `${active ? "Cancel" : "Delete"} ${label}`,
        onclick: () => onRemove(item) }, active ? "Cancel" : "Delete")));
}

function historyHead() {
  const col = (/** @type {import("../dom.js").Child} */ text, right = false) => h("th", { scope: "col", class: right ? "r" : null }, text);
  const hidden = (/** @type {string} */ text) => h("span", { class: "visually-hidden" }, text);
  return [col(hidden("Select")), col("Name"), col("Status"), col("Created"), col("Completed"),
    col("Total return", true), col("Sharpe", true), col(hidden("Actions"), true)];
}

/** @param {HistoryState} state */
function emptyRow(state) {
  return h("tr", {}, h("td", { colspan: 8, class: "empty-state" },
    state.status ? `No ${state.status} backtests.` : h("span", {}, "No backtests yet. ", h("a", { href: "#/new" }, "Run your first one"), ".")));
}

/** Status and sort selects; `onChange` after either changes. */
function historyFilters(/** @type {HistoryState} */ state, /** @type {() => void} */ onChange) {
  const statusSelect = h("select", { id: "history-status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s[0].toUpperCase() + s.slice(1))));
  const sortSelect = h("select", { id: "history-sort" },
    SORTS.map(([v, label]) => h("option", { value: v, selected: v === state.sort }, label)));
  for (const select of [statusSelect, sortSelect]) {
    select.addEventListener("change", () => {
      state.status = statusSelect.value;
      state.sort = sortSelect.value;
      onChange();
    });
  }
  return [
    h("div", { class: "field" }, h("label", { for: "history-status" }, "Status"), statusSelect),
    h("div", { class: "field" }, h("label", { for: "history-sort" }, "Sort by"), sortSelect),
  ];
}

/**
 * The history table with its pager, polling while a listed run is active.
 * @param {HistoryState} state
 * @param {{selected: Set<string>, onTick: () => void, alert: HTMLElement}} ctx
 */
function historyTable(state, { selected, onTick, alert }) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let refreshTimer;
  const paged = createPagedTable({
    id: "history-table",
    caption: "Your backtests",
    head: historyHead(),
    pager: { prefix: "history", sizes: PAGE_SIZES, size: state.size, sizeId: "history-size", sizeLabel: "Backtests per page" },
    offset: (state.page - 1) * state.size,
    fetchPage: async (limit, offset) => {
      const result = await api.history({ limit, offset, status: state.status, sort: state.sort });
      return { items: result.data || [], total: totalCount(result) };
    },
    row: (item) => historyRow(item, { selected, onTick, onRemove }),
    empty: () => emptyRow(state),
    onStart: () => {
      clearTimeout(refreshTimer);
      alert.textContent = "";
    },
    onLoaded: (items) => {
      if (items.some(isActive)) refreshTimer = setTimeout(paged.load, REFRESH_MS);
    },
    onError: (err) => { alert.textContent = err.message; },
    onMove: ({ limit, offset }) => {
      Object.assign(state, { size: limit, page: offset / limit + 1 });
      syncUrl(state);
    },
  });
  async function onRemove(/** @type {HistoryItem} */ item) {
    try {
      if (!(await removeBacktest(item))) return;
      selected.delete(item.task_id);
      onTick();
      paged.load();
    } catch (err) {
      if (err.status !== 401) alert.textContent = err.message;
    }
  }
  return { ...paged, destroy: () => { paged.destroy(); clearTimeout(refreshTimer); } };
}

/** @param {HTMLElement} container @param {import("../router.js").Route} route */
export function renderHistory(container, route) {
  const state = historyState(route.query);
  const selected = new Set();
  const compare = compareControls(selected);
  const alert = h("div", { class: "alert alert-error", role: "alert" });
  const table = historyTable(state, { selected, onTick: compare.update, alert });
  container.append(
    pageHead({ title: "History", sub: h("span", {}, "Your backtests, newest first by default. Parameter sweeps are listed on the ", h("a", { href: "#/sweeps?list=1", id: "history-sweeps-link" }, "Sweep page"), "."),
      actions: h("a", { class: "btn btn-primary", href: href("new") }, "New backtest") }),
    alert,
    h("section", { class: "card" },
      h("div", { class: "filters" }, historyFilters(state, table.restart), compare.element),
      h("div", { class: "table-wrap" }, table.table),
      table.pager),
  );
  table.load();
  return table.destroy;
}
