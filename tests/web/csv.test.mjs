// RFC 4180 CSV with formula neutralising (app/web/js/csv.js), checked by reading the
// output back with an independent parser written here from the RFC's grammar.
import assert from "node:assert/strict";
import { test } from "node:test";

import { toCsv } from "../../app/web/js/csv.js";

/** RFC 4180: records end with CRLF; a field is quoted when it holds , " CR or LF; "" is a quote. */
function parseCsv(text) {
  const records = [];
  let record = [];
  let i = 0;
  while (i < text.length) {
    let value = "";
    if (text[i] === '"') {
      i += 1;
      for (;;) {
        const q = text.indexOf('"', i);
        assert.ok(q >= 0, "unterminated quoted field");
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
    } else {
      const end = text.slice(i).search(/,|\r\n/);
      value = end < 0 ? text.slice(i) : text.slice(i, i + end);
      assert.ok(!/["\r\n]/.test(value), `bare field with a special character: ${JSON.stringify(value)}`);
      i += value.length;
    }
    record.push(value);
    if (text.startsWith(",", i)) {
      i += 1;
    } else {
      assert.ok(text.startsWith("\r\n", i), `expected CRLF at ${i}`);
      i += 2;
      records.push(record);
      record = [];
    }
  }
  return records;
}

test("plain values, empty cells for null/undefined, CRLF after every record", () => {
  const text = toCsv(["a", "b", "c"], [[1, null, "x"], [2.5, undefined, true]]);
  assert.equal(text, "a,b,c\r\n1,,x\r\n2.5,,true\r\n");
});

test("awkward text survives a round trip through an independent parser", () => {
  const nasty = ['say "hi"', "a,b", "line\nbreak", "cr\rhere", "crlf\r\nhere", "", " padded ", "ünïcødé €"];
  const rows = nasty.map((s, i) => [i, s]);
  const parsed = parseCsv(toCsv(["i", "text"], rows));
  assert.deepEqual(parsed, [["i", "text"], ...rows.map(([i, s]) => [String(i), s])]);
});

test("formula-looking text is prefixed with an apostrophe; negative numbers are not", () => {
  const cells = ["=SUM(A1:A2)", "+1+1", "-cmd", "@import", "\tx", -12.5, "-12.5", "-0.3e2"];
  const [, row] = parseCsv(toCsv(cells.map((_, i) => `c${i}`), [cells]));
  assert.deepEqual(row, ["'=SUM(A1:A2)", "'+1+1", "'-cmd", "'@import", "'\tx", "-12.5", "-12.5", "-0.3e2"]);
});
