// @ts-check
// "Save as template" on the new-backtest form: the form's request (as "Run backtest"
// would send it, without name and notification fields) stored under a name the user
// gives. A refusal (name taken: 409; an invalid configuration: 400) shows in the
// form's error summary, like a refused submission.

import { api } from "../api.js";
import { h, replace } from "../dom.js";

/** Fields of a submission that belong to one run, not to a reusable configuration. */
export const NOT_TEMPLATED = new Set(["name", "callback_url", "notify_email"]);

/** @param {Record<string, any>} config */
export function templateConfig(config) {
  return Object.fromEntries(Object.entries(config).filter(([k]) => !NOT_TEMPLATED.has(k)));
}

/**
 * @param {{body: () => Record<string, any>, summary: HTMLElement}} parts
 *   `body` builds the form's request; `summary` is the form's error summary.
 */
export function saveFormAsTemplate({ body, summary }) {
  const note = h("span", { class: "muted small", id: "form-template-note", role: "status" });
  const button = h("button", {
    type: "button", class: "btn", id: "save-form-template",
    onclick: async () => {
      const request = body();
      const name = window.prompt("Template name", String(request.name || ""));
      if (!name) return;
      summary.textContent = "";
      note.textContent = "";
      try {
        await api.saveTemplate(name, templateConfig(request));
        note.textContent = `Saved as template "${name}".`;
      } catch (err) {
        if (err.status === 401) return;
        replace(summary, h("strong", {}, "The template was not saved. "), err.message);
        summary.focus();
      }
    },
  }, "Save as template");
  return h("span", { class: "row" }, button, note);
}
