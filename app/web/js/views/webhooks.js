// @ts-check
// Webhook endpoints (#/webhooks): register one (its signing secret is shown once),
// list them, rotate a secret (the new one shown once), delete, and see an
// endpoint's recent deliveries.

import { h, confirmDialog, replace } from "../dom.js";
import { dateTime } from "../format.js";
import { notifyApi, WEBHOOK_EVENTS } from "../notify-api.js";

/** The secret, shown once with a warning. @param {HTMLElement} box @param {string} secret @param {string} what */
function showSecret(box, secret, what) {
  replace(box,
    h("strong", {}, `${what} Copy the signing secret now: it is not shown again.`),
    h("input", { class: "input mono", id: "webhook-secret", readonly: true, value: secret, "aria-label": "Signing secret" }));
  box.hidden = false;
}

/** @param {any} d */
function deliveryRow(d) {
  return h("tr", {},
    h("td", {}, d.event_type),
    h("td", {}, d.status),
    h("td", {}, String(d.attempts)),
    h("td", {}, d.response_code == null ? (d.last_error || "") : String(d.response_code)),
    h("td", {}, dateTime(d.next_attempt_at)),
    h("td", {}, dateTime(d.created_at)));
}

/** @param {any} hook @param {{note: HTMLElement, secretBox: HTMLElement, reload: () => Promise<void>}} ctx */
function webhookRow(hook, { note, secretBox, reload }) {
  const detail = h("tr", { hidden: true, class: "deliveries-row" });
  /** @param {any} err */
  const fail = (err) => { if (err.status !== 401) note.textContent = err.message; };
  const deliveries = h("button", {
    type: "button", class: "btn btn-s", "aria-label": `Deliveries of ${hook.url}`,
    onclick: async () => {
      if (!detail.hidden) return void (detail.hidden = true);
      try {
        const { data } = await notifyApi.deliveries(hook.id);
        replace(detail, h("td", { colspan: 5 },
          data.length
            ? h("table", { class: "table deliveries" },
              h("thead", {}, h("tr", {}, ...["Event", "Status", "Attempts", "Response", "Next attempt", "Created"].map((t) => h("th", {}, t)))),
              h("tbody", {}, data.map(deliveryRow)))
            : h("p", { class: "muted" }, "No deliveries yet.")));
        detail.hidden = false;
      } catch (err) { fail(err); }
    },
  }, "Deliveries");
  const rotate = h("button", {
    type: "button", class: "btn btn-s", "aria-label": `Rotate secret of ${hook.url}`,
    onclick: async () => {
      const ok = await confirmDialog({ title: "Rotate the signing secret?", message: "Deliveries are signed with the new secret from now on.", confirmLabel: "Rotate" });
      if (!ok) return;
      try {
        const { data } = await notifyApi.rotateSecret(hook.id);
        showSecret(secretBox, data.secret, "Secret rotated.");
      } catch (err) { fail(err); }
    },
  }, "Rotate secret");
  const remove = h("button", {
    type: "button", class: "btn btn-s btn-danger", "aria-label": `Delete ${hook.url}`,
    onclick: async () => {
      const ok = await confirmDialog({ title: "Delete this endpoint?", message: "Its delivery log is deleted with it.", confirmLabel: "Delete", danger: true });
      if (!ok) return;
      try {
        await notifyApi.deleteWebhook(hook.id);
        await reload();
      } catch (err) { fail(err); }
    },
  }, "Delete");
  const status = hook.status === "active" ? "active" : `disabled: ${hook.status_note || ""}`;
  return [
    h("tr", { dataset: { webhookId: hook.id } },
      h("td", { class: "mono" }, hook.url, hook.description ? h("div", { class: "muted small" }, hook.description) : null),
      h("td", {}, hook.events.join(", ")),
      h("td", {}, status),
      h("td", {}, dateTime(hook.created_at)),
      h("td", { class: "row" }, deliveries, rotate, remove)),
    detail,
  ];
}

/** @param {{secretBox: HTMLElement, reload: () => Promise<void>}} ctx */
function createForm({ secretBox, reload }) {
  const summary = h("div", { class: "alert alert-error", role: "alert", id: "webhook-errors", tabindex: "-1" });
  const url = h("input", { class: "input", id: "webhook-url", type: "url", required: true, placeholder: "https://example.com/hooks" });
  const description = h("input", { class: "input", id: "webhook-description", maxlength: 200 });
  const boxes = WEBHOOK_EVENTS.map((event) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: event, checked: event.startsWith("backtest.") }), ` ${event}`));
  const form = h("form", { id: "webhook-form", novalidate: true },
    summary,
    h("div", { class: "field" }, h("label", { for: "webhook-url" }, "URL"), url),
    h("fieldset", { class: "field" }, h("legend", {}, "Events"), ...boxes),
    h("div", { class: "field" }, h("label", { for: "webhook-description" }, "Description (optional)"), description),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Create webhook")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    summary.textContent = "";
    const events = boxes
      .map((b) => /** @type {HTMLInputElement} */ (b.querySelector("input")))
      .filter((i) => i.checked).map((i) => i.value);
    const body = { url: /** @type {HTMLInputElement} */ (url).value.trim(), events,
      .../** @type {HTMLInputElement} */ (description).value.trim() ? { description: /** @type {HTMLInputElement} */ (description).value.trim() } : {} };
    try {
      const { data } = await notifyApi.createWebhook(body);
      showSecret(secretBox, data.secret, "Webhook created.");
      form.reset();
      await reload();
    } catch (err) {
      if (err.status !== 401) replace(summary, h("strong", {}, "The webhook was not created. "), err.message);
    }
  });
  return form;
}

/** @param {HTMLElement} container */
export async function renderWebhooks(container) {
  const note = h("p", { class: "muted small", id: "webhooks-note", role: "status" });
  const secretBox = h("div", { class: "alert", id: "webhook-secret-box", role: "status", hidden: true });
  const body = h("tbody");
  const reload = async () => {
    const { data } = await notifyApi.webhooks();
    replace(body, ...(data.length
      ? data.flatMap((/** @type {any} */ w) => webhookRow(w, { note, secretBox, reload }))
      : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No webhook endpoints yet."))]));
  };
  container.append(
    h("div", { class: "page-head" }, h("h1", {}, "Webhooks")),
    h("section", { class: "card" }, h("h2", {}, "New endpoint"), createForm({ secretBox, reload }), secretBox),
    h("section", { class: "card" },
      h("table", { class: "table", id: "webhooks-table" },
        h("thead", {}, h("tr", {}, ...["URL", "Events", "Status", "Created", ""].map((t) => h("th", {}, t)))),
        body),
      note));
  await reload();
}
