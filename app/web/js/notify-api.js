// @ts-check
// The API calls of the notification screens (webhooks, schedules), on the shared
// `request` helper (same auth, error envelope and 401 handling as api.js).

import { request } from "./api.js";

const enc = encodeURIComponent;

/** Event types an endpoint may subscribe to (the service checks them; the Python
 * client's WEBHOOK_EVENTS lists the same). */
export const WEBHOOK_EVENTS = [
  "backtest.completed", "backtest.failed", "sweep.completed", "sweep.failed", "schedule.refused",
];

export const notifyApi = {
  webhooks: () => request("GET", "/v1/webhooks"),
  /** @param {{url: string, events: string[], description?: string}} body */
  createWebhook: (body) => request("POST", "/v1/webhooks", { body }),
  /** @param {string} id */
  deleteWebhook: (id) => request("DELETE", `/v1/webhooks/${enc(id)}`),
  /** @param {string} id */
  rotateSecret: (id) => request("POST", `/v1/webhooks/${enc(id)}/rotate-secret`),
  /** @param {string} id */
  deliveries: (id) => request("GET", `/v1/webhooks/${enc(id)}/deliveries`, { query: { limit: 20 } }),
  schedules: () => request("GET", "/v1/schedules"),
  /** @param {{template_id: string, cron: string, timezone: string}} body */
  createSchedule: (body) => request("POST", "/v1/schedules", { body }),
  /** @param {string} id @param {"pause" | "resume"} action */
  setSchedule: (id, action) => request("POST", `/v1/schedules/${enc(id)}/${action}`),
  /** @param {string} id */
  deleteSchedule: (id) => request("DELETE", `/v1/schedules/${enc(id)}`),
};
