// @ts-check
// "Your sweeps": the GET /v1/sweeps list (server-paged, newest first), each row
// linking to its page; refreshed while one is running.

import { totalCount } from "../api.js";
import { h } from "../dom.js";
import { dateTime, int } from "../format.js";
import { sweepApi } from "../sweep-api.js";
import { createPagedTable } from "./paged-table.js";
import { statusBadge } from "./status-badge.js";

/** @typedef {{sweep_id: string, name?: string | null, status: string, combinations: number, created_at: string, completed_at?: string | null}} SweepItem */

const REFRESH_MS = 3000;
const active = (/** @type {SweepItem} */ s) => s.status === "pending" || s.status === "running";

/** @param {SweepItem} item */
function sweepRow(item) {
  return h("tr", { dataset: { sweepId: item.sweep_id, status: item.status } },
    h("td", { class: "name-cell" }, h("a", { href: `#/sweep/${item.sweep_id}` }, item.name || "Untitled sweep")),
    h("td", {}, statusBadge(item.status)),
    h("td", { class: "num r" }, int(item.combinations)),
    h("td", { class: "num" }, dateTime(item.created_at)),
    h("td", { class: "num" }, dateTime(item.completed_at)));
}

/** The card; call `load()` once it is on the page, `destroy()` when leaving. */
export function sweepList() {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const alert = h("div", { class: "alert alert-error", role: "alert" });
  const col = (/** @type {string} */ text, right = false) => h("th", { scope: "col", class: right ? "r" : null }, text);
  const paged = createPagedTable({
    id: "sweep-list",
    caption: "Your sweeps",
    head: [col("Name"), col("Status"), col("Combinations", true), col("Created"), col("Completed")],
    pager: { prefix: "sweeps", sizes: [10, 20, 50], size: 10, sizeId: "sweeps-size", sizeLabel: "Sweeps per page", noun: "sweeps", pageWhenEmpty: false },
    fetchPage: async (limit, offset) => {
      const result = await sweepApi.list({ limit, offset });
      return { items: result.data || [], total: totalCount(result) };
    },
    row: sweepRow,
    empty: () => h("tr", {}, h("td", { colspan: 5, class: "empty-state" }, "No sweeps yet.")),
    onStart: () => { clearTimeout(timer); alert.textContent = ""; },
    onLoaded: (items) => { if (items.some(active)) timer = setTimeout(paged.load, REFRESH_MS); },
    onError: (err) => { alert.textContent = err.message; },
  });
  const element = h("section", { class: "card", "aria-labelledby": "sweep-list-title", id: "your-sweeps" },
    h("h2", { id: "sweep-list-title" }, "Your sweeps"), alert,
    h("div", { class: "table-wrap" }, paged.table), paged.pager);
  return { element, load: paged.load, destroy: () => { paged.destroy(); clearTimeout(timer); } };
}
