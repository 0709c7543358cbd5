// @ts-check
// How an HTTP answer becomes an error the screens show: one ApiError type for every
// failure, field paths a form can match, Retry-After in seconds. Pure (no DOM, no
// storage), so Node's test runner covers it (tests/web/api-errors.test.mjs).

/**
 * @typedef {{field: string, message: string}} FieldError
 * @typedef {{status: number, code?: string, message?: string, details?: unknown,
 *   taskId?: string, retryAfter?: number | null}} ApiErrorInit
 */

export class ApiError extends Error {
  /** @param {ApiErrorInit} init */
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
    return fieldErrorsOf(this.details);
  }
}

/**
 * The envelope's `details` as [{field, message}]: "body.end_date" → "end_date",
 * pydantic's "Value error, " prefix dropped; anything that is not a list → [].
 * @param {unknown} details
 * @returns {FieldError[]}
 */
export function fieldErrorsOf(details) {
  if (!Array.isArray(details)) return [];
  return details
    .filter((d) => d && typeof d === "object")
    .map((d) => ({
      field: String(d.field ?? "").replace(/^body\.?/, ""),
      message: String(d.message ?? "").replace(/^Value error, /, ""),
    }));
}

/**
 * A Retry-After header (delta-seconds or an HTTP date) → whole seconds from `now`, or null.
 * @param {string | null | undefined} header
 * @param {number} [now] milliseconds since the epoch
 * @returns {number | null}
 */
export function parseRetryAfter(header, now = Date.now()) {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, Math.round((at - now) / 1000));
}

/**
 * A response body as text → parsed JSON, the text itself when it is not JSON, null when empty.
 * @param {string} text
 * @returns {unknown}
 */
export function parseBody(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * A non-2xx answer → ApiError, from the API's envelope {error, message, details, task_id}.
 * @param {{status: number, statusText?: string, body: unknown, retryAfter?: string | null}} answer
 * @param {number} [now]
 */
export function errorFromResponse({ status, statusText, body, retryAfter }, now = Date.now()) {
  /** @type {Record<string, any>} */
  const envelope = body && typeof body === "object" ? body : {};
  return new ApiError({
    status,
    code: envelope.error,
    message: envelope.message || statusText || `HTTP ${status}`,
    details: envelope.details,
    taskId: envelope.task_id,
    retryAfter: parseRetryAfter(retryAfter, now),
  });
}

/** The error of a request that got no answer at all. */
export function networkError() {
  return new ApiError({
    status: 0,
    code: "NetworkError",
    message: "Cannot reach the server. Check your connection and try again.",
  });
}

/**
 * The X-Total-Count header as a number (falls back to the page length).
 * @param {{headers: {get(name: string): string | null}, data: unknown}} result
 */
export function totalCount(result) {
  const header = result.headers.get("X-Total-Count");
  const n = Number(header);
  if (header !== null && Number.isFinite(n)) return n;
  return Array.isArray(result.data) ? result.data.length : 0;
}
