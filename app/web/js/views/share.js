// @ts-check
// Result actions of issue 21: a public share link (create / revoke) and "Save as
// template". Each is a small component that owns its element and listeners.

import { api } from "../api.js";
import { h, replace } from "../dom.js";

// Fields of a stored config that are not part of a reusable submission (a run of
// the template is named after the template).
const NOT_TEMPLATED = new Set(["name", "callback_url", "notify_email"]);

/** A "Share link" button; once shared, the public URL and a "Revoke" button.
 * @param {string} id */
export function shareControl(id) {
  const note = h("span", { class: "muted small", id: "share-note", role: "status" });
  const root = h("div", { class: "row", id: "share-control" });
  const absolute = (/** @type {string} */ url) => new URL(url, window.location.origin).href;

  const shareBtn = h("button", {
    type: "button", class: "btn", id: "share-backtest",
    onclick: async () => {
      shareBtn.disabled = true;
      try {
        const { data } = await api.share(id);
        const link = h("input", { type: "text", readonly: true, class: "input", id: "share-url", value: absolute(data.url), "aria-label": "Public link" });
        replace(root, link, revokeBtn, note);
        note.textContent = "Anyone with this link can see the results (not your account).";
        link.select();
      } catch (err) {
        note.textContent = err.status === 401 ? "" : err.message;
      } finally {
        shareBtn.disabled = false;
      }
    },
  }, "Share link");

  const revokeBtn = h("button", {
    type: "button", class: "btn btn-danger", id: "revoke-share",
    onclick: async () => {
      try {
        await api.unshare(id);
        replace(root, shareBtn, note);
        note.textContent = "Link revoked.";
      } catch (err) {
        note.textContent = err.status === 401 ? "" : err.message;
      }
    },
  }, "Revoke link");

  replace(root, shareBtn, note);
  return root;
}

/** "Save as template": stores this run's configuration under a name.
 * @param {{name?: string | null, config?: Record<string, any>}} status */
export function saveTemplateButton(status) {
  const note = h("span", { class: "muted small", id: "template-note", role: "status" });
  const button = h("button", {
    type: "button", class: "btn", id: "save-template",
    onclick: async () => {
      const name = window.prompt("Template name", status.name || "");
      if (!name) return;
      const config = Object.fromEntries(
        Object.entries(status.config || {}).filter(([k]) => !NOT_TEMPLATED.has(k)));
      try {
        await api.saveTemplate(name, config);
        note.textContent = `Saved as template "${name}".`;
      } catch (err) {
        note.textContent = err.status === 401 ? "" : err.message;
      }
    },
  }, "Save as template");
  return h("span", { class: "row" }, button, note);
}
