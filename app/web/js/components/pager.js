// @ts-check
// The pager under a server-side paged table: "Showing a–b of n", page size, previous/next.

import { h } from "../dom.js";
import { int } from "../format.js";

/**
 * @typedef {{
 *   prefix: string,            // ids: <prefix>-range, <prefix>-prev, <prefix>-next
 *   sizes: number[], size: number, sizeId: string, sizeLabel: string,
 *   pageId?: string, live?: boolean,
 *   noun?: string,             // "trades" → "Showing 1–25 of 130 trades"
 *   emptyText?: string,        // the range text when there is nothing ("" by default)
 *   pageWhenEmpty?: boolean,   // "Page 1 of 1" with no rows (default) or nothing
 * }} PagerSpec
 * @typedef {{offset: number, limit: number, count: number, total: number}} PageState
 */

/**
 * Pure: the pager's texts and button states for one page of `count` rows.
 * @param {PageState} page
 * @param {{noun?: string, emptyText?: string, pageWhenEmpty?: boolean}} [words]
 */
export function pagerText({ offset, limit, count, total }, { noun = "", emptyText = "", pageWhenEmpty = true } = {}) {
  const pages = Math.max(1, Math.ceil(total / limit));
  return {
    range: total ? `Showing ${int(offset + 1)}–${int(offset + count)} of ${int(total)}${noun ? ` ${noun}` : ""}` : emptyText,
    page: total || pageWhenEmpty ? `Page ${int(Math.floor(offset / limit) + 1)} of ${int(pages)}` : "",
    atStart: offset === 0,
    atEnd: offset + count >= total,
  };
}

/**
 * @param {PagerSpec & {onPrev: () => void, onNext: () => void, onSize: (size: number) => void}} spec
 */
export function createPager(spec) {
  const range = h("span", { id: `${spec.prefix}-range`, "aria-live": spec.live ? "polite" : null }, "");
  const prev = h("button", { type: "button", class: "btn btn-s", id: `${spec.prefix}-prev`, onclick: spec.onPrev }, "← Previous");
  const next = h("button", { type: "button", class: "btn btn-s", id: `${spec.prefix}-next`, onclick: spec.onNext }, "Next →");
  const pageInfo = h("span", { id: spec.pageId });
  const sizeSelect = h("select", { id: spec.sizeId, "aria-label": spec.sizeLabel },
    spec.sizes.map((n) => h("option", { value: n, selected: n === spec.size }, `${n} per page`)));
  sizeSelect.addEventListener("change", () => spec.onSize(Number(sizeSelect.value)));
  return {
    element: h("div", { class: "pager" }, range, h("div", { class: "row" }, sizeSelect, prev, pageInfo, next)),
    /** @param {PageState} page */
    show(page) {
      const text = pagerText(page, spec);
      range.textContent = text.range;
      pageInfo.textContent = text.page;
      prev.disabled = text.atStart;
      next.disabled = text.atEnd;
    },
    lock() {
      prev.disabled = true;
      next.disabled = true;
    },
  };
}
