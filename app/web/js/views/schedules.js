// @ts-check
// Scheduled backtests (#/schedules): create one from a saved template (cron and time
// zone), list them with next run, last run and the last refusal, pause / resume,
// delete.

import { api } from "../api.js";
import { confirmDialog, h, replace } from "../dom.js";
import { dateTime } from "../format.js";
import { notifyApi } from "../notify-api.js";

/** @param {any} s @param {Map<string, string>} names @param {{note: HTMLElement, reload: () => Promise<void>}} ctx */
function scheduleRow(s, names, { note, reload }) {
  const label = names.get(s.template_id) || s.template_id;
  /** @param {any} err */
  const fail = (err) => { if (err.status !== 401) note.textContent = err.message; };
  const toggle = s.status === "active" ? "pause" : "resume";
  const flip = h("button", {
    type: "button", class: "btn btn-s", "aria-label": `${toggle === "pause" ? "Pause" : "Resume"} ${label}`,
    onclick: async () => {
      try {
        await notifyApi.setSchedule(s.id, toggle);
        await reload();
      } catch (err) { fail(err); }
    },
  }, toggle === "pause" ? "Pause" : "Resume");
  const remove = h("button", {
    type: "button", class: "btn btn-s btn-danger", "aria-label": `Delete schedule of ${label}`,
    onclick: async () => {
      const ok = await confirmDialog({ title: "Delete this schedule?", message: "Runs it already started are kept.", confirmLabel: "Delete", danger: true });
      if (!ok) return;
      try {
        await notifyApi.deleteSchedule(s.id);
        await reload();
      } catch (err) { fail(err); }
    },
  }, "Delete");
  const last = s.last_job_id
    ? h("a", { href: `#/backtest/${s.last_job_id}` }, dateTime(s.last_run))
    : dateTime(s.last_run);
  return h("tr", { dataset: { scheduleId: s.id } },
    h("td", {}, label),
    h("td", { class: "mono" }, s.cron),
    h("td", {}, s.timezone),
    h("td", {}, s.status),
    h("td", { class: "next-run" }, dateTime(s.next_run)),
    h("td", {}, last),
    h("td", { class: "last-error" }, s.last_error || ""),
    h("td", { class: "row" }, flip, remove));
}

/** @param {any[]} templates @param {() => Promise<void>} reload */
function createForm(templates, reload) {
  const summary = h("div", { class: "alert alert-error", role: "alert", id: "schedule-errors", tabindex: "-1" });
  const template = h("select", { class: "input", id: "schedule-template" },
    templates.map((t) => h("option", { value: t.id }, t.name)));
  const cron = h("input", { class: "input mono", id: "schedule-cron", value: "0 6 * * 1-5" });
  const zone = h("input", { class: "input", id: "schedule-timezone", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  const form = h("form", { id: "schedule-form", novalidate: true },
    summary,
    h("div", { class: "field" }, h("label", { for: "schedule-template" }, "Template"), template),
    h("div", { class: "field" }, h("label", { for: "schedule-cron" }, "Cron (minute hour day month weekday)"), cron),
    h("div", { class: "field" }, h("label", { for: "schedule-timezone" }, "Time zone"), zone),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", disabled: !templates.length }, "Create schedule")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    summary.textContent = "";
    const value = (/** @type {Element} */ el) => /** @type {HTMLInputElement} */ (el).value.trim();
    try {
      await notifyApi.createSchedule({ template_id: value(template), cron: value(cron), timezone: value(zone) });
      await reload();
    } catch (err) {
      if (err.status !== 401) replace(summary, h("strong", {}, "The schedule was not created. "), err.message);
    }
  });
  return form;
}

/** @param {HTMLElement} container */
export async function renderSchedules(container) {
  const note = h("p", { class: "muted small", id: "schedules-note", role: "status" });
  const body = h("tbody");
  const { data: templates } = await api.templates();
  const names = new Map(templates.map((/** @type {any} */ t) => [t.id, t.name]));
  const reload = async () => {
    const { data } = await notifyApi.schedules();
    replace(body, ...(data.length
      ? data.map((/** @type {any} */ s) => scheduleRow(s, names, { note, reload }))
      : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No schedules yet."))]));
  };
  container.append(
    h("div", { class: "page-head" }, h("h1", {}, "Schedules")),
    h("section", { class: "card" }, h("h2", {}, "New schedule"),
      templates.length ? null : h("p", { class: "muted" }, "Save a template first (“Save as template” on the form or a result)."),
      createForm(templates, reload)),
    h("section", { class: "card" },
      h("table", { class: "table", id: "schedules-table" },
        h("thead", {}, h("tr", {}, ...["Template", "Cron", "Time zone", "Status", "Next run", "Last run", "Last refusal", ""].map((t) => h("th", {}, t)))),
        body),
      note));
  await reload();
}
