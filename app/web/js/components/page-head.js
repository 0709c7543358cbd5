// @ts-check
// The heading block of a page: title, a line under it, actions on the right.

import { h } from "../dom.js";

/** @typedef {import("../dom.js").Child} Child */

/**
 * @param {{title: Child, titleId?: string, sub?: Child, actions?: Child}} spec
 */
export function pageHead({ title, titleId, sub, actions }) {
  return h("div", { class: "page-head" },
    h("div", {}, h("h1", { id: titleId }, title), sub === undefined ? null : h("div", { class: "sub" }, sub)),
    actions);
}
