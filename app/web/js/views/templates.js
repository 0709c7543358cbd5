// @ts-check
// Saved templates (#/templates): each with Run (a normal submission) and Delete.

import { api } from "../api.js";
import { confirmDialog, h, replace } from "../dom.js";
import { date } from "../format.js";
import { navigate } from "../router.js";

/** @param {{id: string, name: string, config?: Record<string, any>, created_at?: string, updated_at?: string}} template
 * @param {HTMLElement} note @param {() => void} onDeleted */
function templateRow(template, note, onDeleted) {
  const c = template.config || {};
  const run = h("button", {
    type: "button", class: "btn btn-s btn-primary", "aria-label": `Run ${template.name}`,
    onclick: async () => {
      run.disabled = true;
      try {
        const { data } = await api.runTemplate(template.id);
        navigate(`backtest/${data.task_id}`);
      } catch (err) {
        if (err.status !== 401) note.textContent = err.message;
        run.disabled = false;
      }
    },
  }, "Run");
  const remove = h("button", {
    type: "button", class: "btn btn-s btn-danger", "aria-label": `Delete ${template.name}`,
    onclick: async () => {
      const ok = await confirmDialog({ title: `Delete template "${template.name}"?`, message: "Its schedules are deleted with it.", confirmLabel: "Delete", danger: true });
      if (!ok) return;
      try {
        await api.deleteTemplate(template.id);
        onDeleted();
      } catch (err) {
        if (err.status !== 401) note.textContent = err.message;
      }
    },
  }, "Delete");
  return h("tr", { dataset: { templateId: template.id } },
    h("td", {}, template.name),
    h("td", {}, `${c.start_date ?? "?"} → ${c.end_date ?? "?"}`),
    h("td", {}, date(template.updated_at)),
    h("td", { class: "row" }, run, remove));
}

/** @param {HTMLElement} container */
export async function renderTemplates(container) {
  const note = h("p", { class: "muted small", id: "templates-note", role: "status" });
  const body = h("tbody");
  const load = async () => {
    const { data } = await api.templates();
    replace(body, data.length
      ? data.map((/** @type {any} */ t) => templateRow(t, note, load))
      : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No templates yet: use “Save as template” on a result."))]);
  };
  container.append(
    h("div", { class: "page-head" }, h("h1", {}, "Templates")),
    h("section", { class: "card" },
      h("table", { class: "table", id: "templates-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Period"), h("th", {}, "Updated"), h("th", {}, ""))),
        body),
      note));
  await load();
}
