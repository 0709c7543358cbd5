// @ts-check
// A table whose rows the server pages (limit/offset, X-Total-Count): it owns the page
// position, the pager, stale-answer guarding and the jump back when a page empties.

import { h, replace } from "../dom.js";
import { createPager } from "./pager.js";

/**
 * @template T
 * @typedef {{
 *   id: string, caption: string, head: HTMLElement[],
 *   pager: import("./pager.js").PagerSpec,
 *   offset?: number,
 *   lockWhileLoading?: boolean,
 *   fetchPage: (limit: number, offset: number) => Promise<{items: T[], total: number}>,
 *   row: (item: T) => HTMLElement,
 *   empty: () => HTMLElement,
 *   onStart?: () => void,
 *   onLoaded?: (items: T[]) => void,
 *   onError: (err: any) => void,
 *   onMove?: (position: {limit: number, offset: number}) => void,
 * }} PagedTableSpec
 */

/**
 * @template T
 * @param {PagedTableSpec<T>} spec
 */
export function createPagedTable(spec) {
  let limit = spec.pager.size;
  let offset = spec.offset ?? 0;
  let seq = 0;
  let disposed = false;
  const tbody = h("tbody", {});
  /** @param {number} to */
  const move = (to) => {
    offset = to;
    spec.onMove?.({ limit, offset });
    load();
  };
  const pager = createPager({
    ...spec.pager,
    onPrev: () => move(Math.max(0, offset - limit)),
    onNext: () => move(offset + limit),
    onSize: (size) => {
      limit = size;
      move(0);
    },
  });

  async function load() {
    const mine = ++seq;
    spec.onStart?.();
    if (spec.lockWhileLoading) pager.lock();
    try {
      const { items, total } = await spec.fetchPage(limit, offset);
      if (disposed || mine !== seq) return;
      if (!items.length && offset > 0 && total > 0) {
        move(Math.floor((total - 1) / limit) * limit);
        return;
      }
      replace(tbody, items.length ? items.map(spec.row) : spec.empty());
      pager.show({ offset, limit, count: items.length, total });
      spec.onLoaded?.(items);
    } catch (err) {
      if (disposed || mine !== seq || err.status === 401) return;
      spec.onError(err);
    }
  }

  const table = h("table", { class: "data", id: spec.id },
    h("caption", { class: "visually-hidden" }, spec.caption),
    h("thead", {}, h("tr", {}, spec.head)),
    tbody);
  return {
    table,
    pager: pager.element,
    load,
    /** Back to the first page (filters or sort changed). */
    restart: () => move(0),
    destroy() {
      disposed = true;
    },
  };
}
