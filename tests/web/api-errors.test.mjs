// How an HTTP answer becomes an ApiError (app/web/js/api-errors.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ApiError,
  errorFromResponse,
  fieldErrorsOf,
  networkError,
  parseBody,
  parseRetryAfter,
  totalCount,
} from "../../app/web/js/api-errors.js";

test("the API's 400 envelope maps to field errors a form can match", () => {
  const body = {
    error: "ValidationError",
    message: "Invalid request body.",
    details: [
      { field: "body.end_date", message: "Value error, end_date must be after start_date" },
      { field: "body.filter_criteria.filters[1].window", message: "must be at most 756" },
      { field: "body", message: "whole-body rule" },
      "not an object",
      null,
    ],
  };
  const err = errorFromResponse({ status: 400, statusText: "Bad Request", body });
  assert.ok(err instanceof ApiError && err instanceof Error);
  assert.equal(err.status, 400);
  assert.equal(err.code, "ValidationError");
  assert.equal(err.message, "Invalid request body.");
  assert.deepEqual(err.fieldErrors, [
    { field: "end_date", message: "end_date must be after start_date" },
    { field: "filter_criteria.filters[1].window", message: "must be at most 756" },
    { field: "", message: "whole-body rule" },
  ]);
});

test("without an envelope the status text, then the status, is the message", () => {
  assert.equal(errorFromResponse({ status: 502, statusText: "Bad Gateway", body: "<html>" }).message, "Bad Gateway");
  const bare = errorFromResponse({ status: 503, statusText: "", body: null });
  assert.equal(bare.message, "HTTP 503");
  assert.deepEqual(bare.fieldErrors, []);
  assert.equal(new ApiError({ status: 418, code: "Teapot" }).message, "Teapot");
});

test("a 429 carries Retry-After in seconds, as delta-seconds or an HTTP date", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  const limited = errorFromResponse({ status: 429, body: { error: "RateLimited", message: "slow down", task_id: "t-1" }, retryAfter: "17" }, now);
  assert.equal(limited.retryAfter, 17);
  assert.equal(limited.taskId, "t-1");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 12:01:30 GMT", now), 90);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 11:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter("-5", now), 0);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter(null, now), null);
});

test("fieldErrorsOf ignores anything that is not a list of objects", () => {
  for (const details of [undefined, null, "x", { field: "a" }, 3]) assert.deepEqual(fieldErrorsOf(details), []);
  assert.deepEqual(fieldErrorsOf([{ message: "no field" }]), [{ field: "", message: "no field" }]);
});

test("no answer at all is a network error with status 0", () => {
  const err = networkError();
  assert.equal(err.status, 0);
  assert.equal(err.code, "NetworkError");
  assert.match(err.message, /Cannot reach the server/);
});

test("bodies: JSON, text, or nothing", () => {
  assert.deepEqual(parseBody('{"a":1}'), { a: 1 });
  assert.equal(parseBody("plain text"), "plain text");
  assert.equal(parseBody(""), null);
});

test("totalCount reads X-Total-Count and falls back to the page length", () => {
  assert.equal(totalCount({ headers: new Headers({ "X-Total-Count": "1234" }), data: [1, 2] }), 1234);
  assert.equal(totalCount({ headers: new Headers(), data: [1, 2, 3] }), 3);
  assert.equal(totalCount({ headers: new Headers({ "X-Total-Count": "many" }), data: [1] }), 1);
  assert.equal(totalCount({ headers: new Headers(), data: null }), 0);
});
