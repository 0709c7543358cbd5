// @ts-check
// Tiny DOM helpers: build elements without innerHTML (names and symbols are user data).

/** @typedef {Node | string | number | null | undefined | false | any[]} Child */
/** @typedef {Record<string, any>} Attrs */

/**
 * h("button", {class: "btn", onclick: fn}, "Save") → HTMLButtonElement.
 * Attributes: on* functions become listeners; class, dataset, style objects; `value`,
 * `checked`, `selected`, `disabled` are set as properties after the children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  /** @type {Record<string, unknown>} */
  const props = {};
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(el.style, value);
    } else if (["value", "checked", "selected", "disabled", "indeterminate"].includes(key)) {
      props[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  Object.assign(el, props);
  return el;
}

/**
 * @template {Element} E
 * @param {E} parent
 * @param {Child} children
 * @returns {E}
 */
export function append(parent, children) {
  for (const child of /** @type {any[]} */ ([children]).flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** @template {Element} E @param {E} el @returns {E} */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** @template {Element} E @param {E} el @param {...Child} children @returns {E} */
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

let idCounter = 0;
/** @param {string} [prefix] */
export function uid(prefix = "id") {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/**
 * A labelled form field: label, control, hint and an error slot (aria-describedby).
 * @param {{label: string, control: HTMLElement, hint?: string | null, name?: string, className?: string}} spec
 */
export function field({ label, control, hint = null, name, className = "" }) {
  const id = control.id || uid("f");
  control.id = id;
  const hintEl = hint ? h("div", { class: "hint", id: `${id}-hint` }, hint) : null;
  const errorEl = h("div", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  const described = [hintEl ? hintEl.id : null, errorEl.id].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  const wrapper = h(
    "div",
    { class: `field ${className}`.trim(), dataset: name ? { field: name } : {} },
    h("label", { for: id }, label),
    control,
    hintEl,
    errorEl,
  );
  return wrapper;
}

/**
 * A modal confirmation built on <dialog>; resolves true when confirmed.
 * @param {{title: string, message: string, confirmLabel?: string, danger?: boolean}} spec
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid("dlg");
    const dialog = h("dialog", { "aria-labelledby": titleId });
    /** @param {boolean} answer */
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    append(dialog, [
      h("h2", { id: titleId }, title),
      h("p", { class: "muted", style: { marginTop: "8px" } }, message),
      h(
        "div",
        { class: "form-actions" },
        h("button", { type: "button", class: "btn", onclick: () => close(false) }, "Keep"),
        h(
          "button",
          {
            type: "button",
            class: danger ? "btn btn-danger-solid" : "btn btn-primary",
            onclick: () => close(true),
            "data-confirm": "",
          },
          confirmLabel,
        ),
      ),
    ]);
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * Trigger a download of text content as a file.
 * @param {string} filename @param {string} text @param {string} [type]
 */
export function downloadText(filename, text, type = "text/csv;charset=utf-8") {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, style: { display: "none" } });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
