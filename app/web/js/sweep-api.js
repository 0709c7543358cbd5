// @ts-check
// The /v1/sweeps endpoints the sweep screens use (request() does auth and errors).

import { request } from "./api.js";
import { getToken } from "./session.js";

/** @typedef {import("./api.js").Query} Query */

const path = (/** @type {string} */ id, /** @type {string} */ tail = "") => `/v1/sweeps/${encodeURIComponent(id)}${tail}`;

export const sweepApi = {
  limits: () => request("GET", "/v1/sweeps/limits"),
  /** @param {object} body */
  submit: (body) => request("POST", "/v1/sweeps", { body }),
  /** @param {Query} query */
  list: (query) => request("GET", "/v1/sweeps", { query }),
  /** @param {string} id */
  status: (id) => request("GET", path(id)),
  /** @param {string} id */
  remove: (id) => request("DELETE", path(id)),
  /** @param {string} id @param {Query} query */
  results: (id, query) => request("GET", path(id, "/results"), { query }),
  /** @param {string} id @param {Query} query */
  heatmap: (id, query) => request("GET", path(id, "/heatmap"), { query }),
  /** @param {string} id */
  chart: (id) => request("GET", path(id, "/chart")),
  /** @param {string} id @param {number} index */
  backtestRow: (id, index) => request("POST", path(id, `/results/${index}/backtest`)),
};

/** @param {string} id */
export function sweepSocketUrl(id) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const token = encodeURIComponent(getToken() ?? "");
  return `${scheme}://${window.location.host}${path(id, "/progress")}?token=${token}`;
}
