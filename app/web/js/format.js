// @ts-check
// Number and date formatting: one place so every screen reads the same way.

const LOCALE = "en-US";
const DASH = "—";

/** @type {Map<string, Intl.NumberFormat>} */
const cache = new Map();
/** @param {Intl.NumberFormatOptions} options */
function nf(options) {
  const key = JSON.stringify(options);
  let format = cache.get(key);
  if (!format) {
    format = new Intl.NumberFormat(LOCALE, options);
    cache.set(key, format);
  }
  return format;
}

/** @type {(v: unknown) => v is number} */
const isNum = (v) => typeof v === "number" && Number.isFinite(v);

/** 0.1234 → "+12.34%" (signed) or "12.34%". */
/** @param {unknown} value @param {{digits?: number, signed?: boolean}} [options] */
export function pct(value, { digits = 2, signed = false } = {}) {
  if (!isNum(value)) return DASH;
  return nf({
    style: "percent",
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
    signDisplay: signed ? "exceptZero" : "auto",
  }).format(value);
}

/** 1234.5 → "1,234.50". */
/** @param {unknown} value @param {number} [digits] */
export function num(value, digits = 2) {
  if (!isNum(value)) return DASH;
  return nf({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

/** @param {unknown} value */
export function int(value) {
  if (!isNum(value)) return DASH;
  return nf({ maximumFractionDigits: 0 }).format(value);
}

/** Dollars: whole dollars above 1,000, cents below. */
/** @param {unknown} value @param {number} [digits] */
export function money(value, digits) {
  if (!isNum(value)) return DASH;
  const d = digits ?? (Math.abs(value) >= 1000 ? 0 : 2);
  return nf({
    style: "currency",
    currency: "USD",
    minimumFractionDigits: d,
    maximumFractionDigits: d,
  }).format(value);
}

/** @param {unknown} value */
export function signedMoney(value) {
  if (!isNum(value)) return DASH;
  return nf({
    style: "currency",
    currency: "USD",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
    signDisplay: "exceptZero",
  }).format(value);
}

/** Shares may be fractional; show up to 4 decimals. */
/** @param {unknown} value */
export function qty(value) {
  if (!isNum(value)) return DASH;
  return nf({ maximumFractionDigits: 4 }).format(value);
}

/** "gain" | "loss" | "" for colouring. */
/** @param {unknown} value @returns {"gain" | "loss" | ""} */
export function tone(value) {
  if (!isNum(value) || value === 0) return "";
  return value > 0 ? "gain" : "loss";
}

/** ISO date-time → "2024-08-26 14:03" in the viewer's time zone. */
/** @param {string | null | undefined} iso */
export function dateTime(iso) {
  /** @param {number} n */
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** @param {string | null | undefined} iso */
export function date(iso) {
  return iso ? String(iso).slice(0, 10) : DASH;
}

/** Seconds → "45 s", "3 min 05 s", "1 h 02 min". */
/** @param {unknown} seconds */
export function duration(seconds) {
  if (!isNum(seconds) || seconds < 0) return DASH;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** Local clock time "14:03:27". */
/** @param {Date} d */
export function clock(d) {
  /** @param {number} n */
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export const dash = DASH;
