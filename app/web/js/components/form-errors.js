// @ts-check
// Server validation messages next to the field they concern.
//
// Fields carry data-field="initial_capital", "strategy_params.top_n",
// "filter_criteria.filters[1]" ... A server path is matched exactly first, then by
// dropping trailing segments ("filter_criteria.filters[1].window" → "…filters[1]" →
// "filter_criteria"), so every message lands on the closest field that exists.

/** @param {string} path */
function candidates(path) {
  const out = [];
  let p = path;
  while (p) {
    out.push(p);
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    if (cut <= 0) break;
    p = p.slice(0, cut);
  }
  return out;
}

/** @param {HTMLElement} form @param {string} path @returns {HTMLElement | null} */
function findField(form, path) {
  for (const candidate of candidates(path)) {
    const el = /** @type {HTMLElement | null} */ (form.querySelector(`[data-field="${CSS.escape(candidate)}"]`));
    if (el) return el;
  }
  return null;
}

/** @param {HTMLElement} form */
export function clearFieldErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/**
 * Show each {field, message}; returns the ones no field matched. Focuses the first.
 * @param {HTMLElement} form
 * @param {import("../api-errors.js").FieldError[]} errors
 * @returns {import("../api-errors.js").FieldError[]}
 */
export function showFieldErrors(form, errors) {
  const unmatched = [];
  let first = null;
  for (const error of errors) {
    // Whole-body rules ("start_date must be before end_date") name their field first.
    const named = !error.field ? /^([a-z_]+)\b/.exec(error.message)?.[1] : null;
    const path = error.field || named;
    const wrapper = path ? findField(form, path) : null;
    if (!wrapper) {
      unmatched.push(error);
      continue;
    }
    const slot = wrapper.querySelector(":scope > .field-error") || wrapper.querySelector(".field-error");
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent} ${error.message}` : error.message;
    }
    /** @type {HTMLElement | null} */
    const control = wrapper.matches("input, select, textarea")
      ? wrapper
      : wrapper.querySelector("input, select, textarea");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      first = first || control;
    }
  }
  if (first) first.focus();
  return unmatched;
}
