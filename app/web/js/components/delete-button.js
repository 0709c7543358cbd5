// @ts-check
// "Delete" for one backtest: asks first, then deletes and goes to the history.

import { api } from "../api.js";
import { confirmDialog, h } from "../dom.js";
import { navigate } from "../router.js";

/**
 * @param {string} taskId
 * @param {{id?: string, onError: (message: string) => void}} spec
 */
export function deleteBacktestButton(taskId, { id, onError }) {
  return h("button", {
    type: "button",
    class: "btn btn-danger",
    id,
    onclick: async () => {
      const ok = await confirmDialog({
        title: "Delete this backtest?",
        message: "Its results and trades are removed for good.",
        confirmLabel: "Delete",
        danger: true,
      });
      if (!ok) return;
      try {
        await api.remove(taskId);
        navigate("history");
      } catch (err) {
        if (err.status !== 401) onError(err.message);
      }
    },
  }, "Delete");
}
