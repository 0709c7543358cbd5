// @ts-check
// RFC 4180 CSV, with formula-looking cells neutralised (a file opened in a spreadsheet).

/** @param {unknown} value */
function cell(value) {
  if (value === null || value === undefined) return "";
  let s = String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * A header row and data rows → CSV text (CRLF line ends, a final CRLF).
 * @param {unknown[]} header @param {unknown[][]} rows
 */
export function toCsv(header, rows) {
  return [header, ...rows].map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
}
