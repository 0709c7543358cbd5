// @ts-check
// The API client: JSON over fetch, bearer token, one error type for every failure.

import { errorFromResponse, networkError, parseBody, totalCount } from "./api-errors.js";
import { clearSession, getToken, setFlash } from "./session.js";

export { ApiError } from "./api-errors.js";
export { totalCount };

/**
 * @typedef {{data: any, headers: Headers, status: number}} ApiResult
 * @typedef {Record<string, string | number | boolean | null | undefined>} Query
 */

/** @type {() => void} */
let onUnauthorized = () => {};

/**
 * Called once when an authenticated request answers 401 (expired or revoked token).
 * @param {() => void} handler
 */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** @param {string} path @param {Query} [query] */
function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    url.searchParams.set(key, String(value));
  }
  return url.pathname + url.search;
}

/**
 * request("GET", "/v1/backtest/history", {query: {limit: 20}}) →
 * {data, headers, status}. Throws ApiError on any non-2xx answer or network failure.
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, query?: Query, auth?: boolean, signal?: AbortSignal}} [options]
 * @returns {Promise<ApiResult>}
 */
export async function request(method, path, { body, query, auth = true, signal } = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  const token = auth ? getToken() : null;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(buildUrl(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    throw networkError();
  }
  const data = parseBody(await response.text());
  if (response.ok) return { data, headers: response.headers, status: response.status };

  const error = errorFromResponse({
    status: response.status,
    statusText: response.statusText,
    body: data,
    retryAfter: response.headers.get("Retry-After"),
  });
  if (response.status === 401 && token) {
    clearSession();
    setFlash("Your session has expired. Please log in again.", "warn");
    onUnauthorized();
  }
  throw error;
}

/** The endpoints the screens use; each resolves to an ApiResult or throws an ApiError. */
export const api = {
  /** @param {string} username @param {string} password */
  register: (username, password) =>
    request("POST", "/v1/auth/register", { body: { username, password }, auth: false }),
  /** @param {string} username @param {string} password */
  login: (username, password) =>
    request("POST", "/v1/auth/login", { body: { username, password }, auth: false }),
  me: () => request("GET", "/v1/auth/me"),
  strategies: () => request("GET", "/v1/strategies"),
  screening: () => request("GET", "/v1/strategies/screening"),
  symbols: () => request("GET", "/v1/symbols"),
  /** @param {object} body */
  submit: (body) => request("POST", "/v1/backtest", { body }),
  /** @param {string} id */
  status: (id) => request("GET", `/v1/backtest/${encodeURIComponent(id)}`),
  /** @param {string} id @param {Query} query */
  trades: (id, query) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/trades`, { query }),
  /** @param {string} id @param {number} [maxPoints] */
  chart: (id, maxPoints = 1000) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/chart`, {
      query: { max_points: maxPoints },
    }),
  /** @param {string} id */
  analysis: (id) => request("GET", `/v1/backtest/${encodeURIComponent(id)}/analysis`),
  /** @param {string} id @param {number} [maxPoints] */
  exposure: (id, maxPoints = 500) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/exposure`, { query: { max_points: maxPoints } }),
  /** The full-resolution daily series as JSON rows. @param {string} id */
  dailySeries: (id) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/equity`, { query: { format: "json" } }),
  /** @param {string} id @param {string} [day] */
  holdings: (id, day) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/holdings`, { query: { date: day } }),
  /** @param {string} id @param {Query} query */
  positions: (id, query) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/positions`, { query }),
  /** @param {Query} query */
  history: (query) => request("GET", "/v1/backtest/history", { query }),
  /** @param {string} id */
  remove: (id) => request("DELETE", `/v1/backtest/${encodeURIComponent(id)}`),
  /** @param {string} id */
  share: (id) => request("POST", `/v1/backtest/${encodeURIComponent(id)}/share`),
  /** @param {string} id */
  unshare: (id) => request("DELETE", `/v1/backtest/${encodeURIComponent(id)}/share`),
  /** @param {string} name @param {Record<string, any>} config */
  saveTemplate: (name, config) => request("POST", "/v1/templates", { body: { name, config } }),
  templates: () => request("GET", "/v1/templates"),
  /** @param {string} id */
  runTemplate: (id) => request("POST", `/v1/templates/${encodeURIComponent(id)}/run`),
  /** @param {string} id */
  deleteTemplate: (id) => request("DELETE", `/v1/templates/${encodeURIComponent(id)}`),
};

/** @param {string} id */
export function progressSocketUrl(id) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const token = encodeURIComponent(getToken() ?? "");
  return `${scheme}://${window.location.host}/v1/backtest/${encodeURIComponent(id)}/progress?token=${token}`;
}

/** Symbols and strategies change only with a new dataset: fetch them once per page load. */
/** @type {Map<string, Promise<ApiResult>>} */
const memo = new Map();
/** @param {string} key @param {() => Promise<ApiResult>} loader */
export function cached(key, loader) {
  let promise = memo.get(key);
  if (!promise) {
    promise = loader().catch((err) => {
      memo.delete(key);
      throw err;
    });
    memo.set(key, promise);
  }
  return promise;
}

/**
 * Download an authenticated file (report, export) and save it under the server's
 * file name (Content-Disposition) or `fallback`. Throws ApiError like request().
 * @param {string} path
 * @param {Record<string, string>} query
 * @param {string} fallback
 * @returns {Promise<{filename: string, size: number}>}
 */
export async function downloadFile(path, query, fallback) {
  const headers = { Authorization: `Bearer ${getToken() ?? ""}` };
  let response;
  try {
    response = await fetch(buildUrl(path, query), { headers });
  } catch {
    throw networkError();
  }
  if (!response.ok) {
    throw errorFromResponse({
      status: response.status,
      statusText: response.statusText,
      body: parseBody(await response.text()),
      retryAfter: response.headers.get("Retry-After"),
    });
  }
  const blob = await response.blob();
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const filename = match ? match[1] : fallback;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  return { filename, size: blob.size };
}
