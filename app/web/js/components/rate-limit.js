// @ts-check
// The submission rate limit: after a 429, say until when, count down, and keep the
// submit button disabled until then (remembered for the tab in sessionStorage).

import { h } from "../dom.js";
import { clock, duration } from "../format.js";

const RETRY_KEY = "backtest.retryAt";

/** @param {HTMLButtonElement} submit */
export function rateLimitBanner(submit) {
  const element = h("div", { class: "alert alert-warn", role: "status", id: "rate-limit", hidden: true });
  /** Repaint; true while the limit holds. */
  const apply = () => {
    const until = Number(sessionStorage.getItem(RETRY_KEY) || 0);
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      sessionStorage.removeItem(RETRY_KEY);
      element.hidden = true;
      submit.disabled = false;
      return false;
    }
    element.hidden = false;
    element.textContent = `Submission limit reached. You can submit the next backtest at ${clock(new Date(until))} (in ${duration(left)}).`;
    submit.disabled = true;
    return true;
  };
  const timer = setInterval(apply, 1000);
  return {
    element,
    apply,
    /** A 429 said: wait `seconds`. @param {number} seconds */
    limit(seconds) {
      sessionStorage.setItem(RETRY_KEY, String(Date.now() + seconds * 1000));
      apply();
      element.focus?.();
    },
    stop: () => clearInterval(timer),
  };
}
