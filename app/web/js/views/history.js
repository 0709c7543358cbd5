// The user's backtests (#/history?status=&sort=&page=&size=): filter, sort, paginate,
// delete, pick 2–4 completed ones to compare.

import { api, totalCount } from "../api.js";
import { confirmDialog, h, replace } from "../dom.js";
import { dateTime, int, num, pct, tone } from "../format.js";
import { href, navigate, setQuery } from "../router.js";
import { statusBadge } from "./backtest.js";

const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
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
export const MAX_COMPARE = 4;

export function renderHistory(container, route) {
  const state = {
    status: STATUSES.includes(route.query.status) ? route.query.status : "",
    sort: SORTS.some(([v]) => v === route.query.sort) ? route.query.sort : "-created_at",
    page: Math.max(1, Number.parseInt(route.query.page, 10) || 1),
    size: PAGE_SIZES.includes(Number(route.query.size)) ? Number(route.query.size) : 20,
  };
  const selected = new Set();
  let disposed = false;
  let refreshTimer = null;
  let seq = 0;

  const statusSelect = h("select", { id: "history-status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s[0].toUpperCase() + s.slice(1))));
  const sortSelect = h("select", { id: "history-sort" },
    SORTS.map(([v, label]) => h("option", { value: v, selected: v === state.sort }, label)));
  const sizeSelect = h("select", { id: "history-size", "aria-label": "Backtests per page" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.size }, `${n} per page`)));
  const compareBtn = h("button", { type: "button", class: "btn btn-primary", id: "compare-selected", disabled: true }, "Compare selected");
  const compareHint = h("span", { class: "hint", "aria-live": "polite" }, "Tick 2–4 completed backtests to compare them.");
  const alert = h("div", { class: "alert alert-error", role: "alert" });
  const tbody = h("tbody", {});
  const range = h("span", { id: "history-range" });
  const prev = h("button", { type: "button", class: "btn btn-s", id: "history-prev" }, "← Previous");
  const next = h("button", { type: "button", class: "btn btn-s", id: "history-next" }, "Next →");
  const pageInfo = h("span", {});

  function syncUrl() {
    setQuery("history", {
      status: state.status,
      sort: state.sort === "-created_at" ? "" : state.sort,
      page: state.page > 1 ? state.page : "",
      size: state.size === 20 ? "" : state.size,
    });
  }

  function updateCompare() {
    const n = selected.size;
    compareBtn.disabled = n < 2 || n > MAX_COMPARE;
    compareBtn.textContent = n ? `Compare selected (${n})` : "Compare selected";
    compareHint.textContent = n > MAX_COMPARE ? `At most ${MAX_COMPARE} at a time.` : "Tick 2–4 completed backtests to compare them.";
  }

  async function remove(item) {
    const active = item.status === "pending" || item.status === "running";
    const ok = await confirmDialog({
      title: active ? "Cancel this backtest?" : "Delete this backtest?",
      message: active ? "The run stops; nothing is kept." : `“${item.name || "Untitled"}” and its trades are removed for good.`,
      confirmLabel: active ? "Cancel run" : "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await api.remove(item.task_id);
      selected.delete(item.task_id);
      updateCompare();
      load();
    } catch (err) {
      if (err.status !== 401) alert.textContent = err.message;
    }
  }

  function row(item) {
    const completed = item.status === "completed";
    const label = item.name || "Untitled backtest";
    const box = h("input", {
      type: "checkbox",
      "aria-label": `Select ${label} for comparison`,
      disabled: !completed,
      checked: selected.has(item.task_id),
      onchange: (e) => {
        if (e.target.checked) selected.add(item.task_id);
        else selected.delete(item.task_id);
        updateCompare();
      },
    });
    const active = item.status === "pending" || item.status === "running";
    return h("tr", { dataset: { taskId: item.task_id, status: item.status } },
      h("td", {}, box),
      h("td", { class: "name-cell" }, h("a", { href: `#/backtest/${item.task_id}` }, label)),
      h("td", {}, statusBadge(item.status)),
      h("td", { class: "num" }, dateTime(item.created_at)),
      h("td", { class: "num" }, dateTime(item.completed_at)),
      h("td", { class: `num r ${tone(item.total_return)}` }, pct(item.total_return, { signed: true })),
      h("td", { class: "num r" }, num(item.sharpe_ratio, 2)),
      h("td", { class: "r" },
        h("button", { type: "button", class: "btn btn-s btn-danger", "aria-label": `${active ? "Cancel" : "Delete"} ${label}`, onclick: () => remove(item) }, active ? "Cancel" : "Delete")));
  }

  async function load() {
    const mine = ++seq;
    clearTimeout(refreshTimer);
    alert.textContent = "";
    try {
      const result = await api.history({
        limit: state.size,
        offset: (state.page - 1) * state.size,
        status: state.status,
        sort: state.sort,
      });
      if (disposed || mine !== seq) return;
      const items = result.data || [];
      const total = totalCount(result);
      const pages = Math.max(1, Math.ceil(total / state.size));
      if (!items.length && state.page > 1 && total > 0) {
        state.page = pages;
        syncUrl();
        load();
        return;
      }
      replace(tbody, items.length ? items.map(row) : h("tr", {}, h("td", { colspan: 8, class: "empty-state" },
        state.status ? `No ${state.status} backtests.` : h("span", {}, "No backtests yet. ", h("a", { href: "#/new" }, "Run your first one"), "."))));
      const start = (state.page - 1) * state.size;
      range.textContent = total ? `Showing ${int(start + 1)}–${int(start + items.length)} of ${int(total)}` : "";
      pageInfo.textContent = `Page ${int(state.page)} of ${int(pages)}`;
      prev.disabled = state.page <= 1;
      next.disabled = state.page >= pages;
      if (items.some((i) => i.status === "pending" || i.status === "running")) {
        refreshTimer = setTimeout(load, REFRESH_MS);
      }
    } catch (err) {
      if (disposed || mine !== seq || err.status === 401) return;
      alert.textContent = err.message;
    }
  }

  const onFilter = () => {
    state.status = statusSelect.value;
    state.sort = sortSelect.value;
    state.size = Number(sizeSelect.value);
    state.page = 1;
    syncUrl();
    load();
  };
  statusSelect.addEventListener("change", onFilter);
  sortSelect.addEventListener("change", onFilter);
  sizeSelect.addEventListener("change", onFilter);
  prev.addEventListener("click", () => { state.page -= 1; syncUrl(); load(); });
  next.addEventListener("click", () => { state.page += 1; syncUrl(); load(); });
  compareBtn.addEventListener("click", () => navigate("compare", { ids: [...selected].join(",") }));

  container.append(
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "History"), h("div", { class: "sub" }, "Your backtests, newest first by default.")),
      h("a", { class: "btn btn-primary", href: href("new") }, "New backtest")),
    alert,
    h("section", { class: "card" },
      h("div", { class: "filters" },
        h("div", { class: "field" }, h("label", { for: "history-status" }, "Status"), statusSelect),
        h("div", { class: "field" }, h("label", { for: "history-sort" }, "Sort by"), sortSelect),
        h("div", { class: "row", style: { marginLeft: "auto", alignItems: "center" } }, compareHint, compareBtn)),
      h("div", { class: "table-wrap" },
        h("table", { class: "data", id: "history-table" },
          h("caption", { class: "visually-hidden" }, "Your backtests"),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Select")),
            h("th", { scope: "col" }, "Name"),
            h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col" }, "Created"),
            h("th", { scope: "col" }, "Completed"),
            h("th", { scope: "col", class: "r" }, "Total return"),
            h("th", { scope: "col", class: "r" }, "Sharpe"),
            h("th", { scope: "col", class: "r" }, h("span", { class: "visually-hidden" }, "Actions")))),
          tbody)),
      h("div", { class: "pager" }, range, h("div", { class: "row" }, sizeSelect, prev, pageInfo, next))),
  );
  load();
  return () => {
    disposed = true;
    clearTimeout(refreshTimer);
  };
}
