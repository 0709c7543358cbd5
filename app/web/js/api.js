// The API client: JSON over fetch, bearer token, one error type for every failure.

import { clearSession, getToken, setFlash } from "./session.js";

export class ApiError extends Error {
  constructor({ status, code, message, details, taskId, retryAfter }) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.details = details;
    this.taskId = taskId;
    this.retryAfter = retryAfter;
  }

  /** [{field, message}] with "body." stripped from the field paths. */
  get fieldErrors() {
    if (!Array.isArray(this.details)) return [];
    return this.details
      .filter((d) => d && typeof d === "object")
      .map((d) => ({
        field: String(d.field ?? "").replace(/^body\.?/, ""),
        message: String(d.message ?? "").replace(/^Value error, /, ""),
      }));
  }
}

let onUnauthorized = () => {};

/** Called once when an authenticated request answers 401 (expired or revoked token). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    url.searchParams.set(key, String(value));
  }
  return url.pathname + url.search;
}

function parseRetryAfter(header) {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, Math.round((at - Date.now()) / 1000));
}

/**
 * request("GET", "/v1/backtest/history", {query: {limit: 20}}) →
 * {data, headers, status}. Throws ApiError on any non-2xx answer or network failure.
 */
export async function request(method, path, { body, query, auth = true, signal } = {}) {
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
    throw new ApiError({
      status: 0,
      code: "NetworkError",
      message: "Cannot reach the server. Check your connection and try again.",
    });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (response.ok) return { data, headers: response.headers, status: response.status };

  const envelope = data && typeof data === "object" ? data : {};
  const error = new ApiError({
    status: response.status,
    code: envelope.error,
    message: envelope.message || response.statusText || `HTTP ${response.status}`,
    details: envelope.details,
    taskId: envelope.task_id,
    retryAfter: parseRetryAfter(response.headers.get("Retry-After")),
  });
  if (response.status === 401 && token) {
    clearSession();
    setFlash("Your session has expired. Please log in again.", "warn");
    onUnauthorized();
  }
  throw error;
}

export const api = {
  register: (username, password) =>
    request("POST", "/v1/auth/register", { body: { username, password }, auth: false }),
  login: (username, password) =>
    request("POST", "/v1/auth/login", { body: { username, password }, auth: false }),
  me: () => request("GET", "/v1/auth/me"),
  strategies: () => request("GET", "/v1/strategies"),
  symbols: () => request("GET", "/v1/symbols"),
  submit: (body) => request("POST", "/v1/backtest", { body }),
  status: (id) => request("GET", `/v1/backtest/${encodeURIComponent(id)}`),
  trades: (id, query) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/trades`, { query }),
  chart: (id, maxPoints = 1000) =>
    request("GET", `/v1/backtest/${encodeURIComponent(id)}/chart`, {
      query: { max_points: maxPoints },
    }),
  history: (query) => request("GET", "/v1/backtest/history", { query }),
  remove: (id) => request("DELETE", `/v1/backtest/${encodeURIComponent(id)}`),
  share: (id) => request("POST", `/v1/backtest/${encodeURIComponent(id)}/share`),
  unshare: (id) => request("DELETE", `/v1/backtest/${encodeURIComponent(id)}/share`),
  saveTemplate: (name, config) => request("POST", "/v1/templates", { body: { name, config } }),
  templates: () => request("GET", "/v1/templates"),
  runTemplate: (id) => request("POST", `/v1/templates/${encodeURIComponent(id)}/run`),
  deleteTemplate: (id) => request("DELETE", `/v1/templates/${encodeURIComponent(id)}`),
};

/** The X-Total-Count header as a number (falls back to the page length). */
export function totalCount(result) {
  const header = result.headers.get("X-Total-Count");
  const n = Number(header);
  return header !== null && Number.isFinite(n) ? n : (result.data?.length ?? 0);
}

export function progressSocketUrl(id) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const token = encodeURIComponent(getToken() ?? "");
  return `${scheme}://${window.location.host}/v1/backtest/${encodeURIComponent(id)}/progress?token=${token}`;
}

/** Symbols and strategies change only with a new dataset: fetch them once per page load. */
const memo = new Map();
export function cached(key, loader) {
  if (!memo.has(key)) {
    memo.set(
      key,
      loader().catch((err) => {
        memo.delete(key);
        throw err;
      }),
    );
  }
  return memo.get(key);
}
