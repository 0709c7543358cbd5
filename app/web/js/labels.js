// @ts-check
// Words for what the API names in code: strategy and parameter labels, hint sentences,
// and the percent ↔ fraction conversions of the form. Pure (tests/web/labels.test.mjs).

/** "short-term-reversal" → "Short-term reversal"; names with capitals or spaces stay. @param {{name?: string} | null | undefined} strategy */
export function strategyLabel(strategy) {
  const name = String(strategy?.name ?? "");
  if (/[A-Z ]/.test(name)) return name;
  const words = name.split("-");
  const text = words.length > 2 ? `${words.slice(0, -1).join("-")} ${words.at(-1)}` : words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** "top_n" → "Top N", "lookback_days" → "Lookback days". @param {string} paramName */
export function paramLabel(paramName) {
  const words = paramName.split("_").map((w) => (w.length === 1 ? w.toUpperCase() : w));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * A parameter's hint: its description as a sentence, then its range and default.
 * @param {{description?: string, min?: number | null, max?: number | null, default?: number}} p
 */
export function paramHint(p) {
  const range = p.min !== undefined && p.max !== undefined && p.min !== null ? ` Range ${p.min}–${p.max}, default ${p.default}.` : "";
  const desc = String(p.description || "").trim();
  const sentence = desc ? `${desc.charAt(0).toUpperCase()}${desc.slice(1)}${desc.endsWith(".") ? "" : "."}` : "";
  return `${sentence}${range}`;
}

/** Round a percent → fraction conversion so 0.1% becomes 0.001, not 0.0010000000000000002. @param {unknown} value */
export function fromPercent(value) {
  return typeof value === "number" ? Number((value / 100).toPrecision(12)) : value;
}

/** 0.001 → 0.1 (percent), non-numbers → "". @param {unknown} value */
export function toPercent(value) {
  return typeof value === "number" ? Number((value * 100).toPrecision(12)) : "";
}

/** An input's text as a number; "" → null; text that is no number stays text (the API says why). @param {string} raw */
export function parseNumber(raw) {
  const text = raw.trim();
  if (text === "") return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

/** "2024-08-26" moved by whole years (UTC). @param {string} iso @param {number} years */
export function shiftYears(iso, years) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.toISOString().slice(0, 10);
}
