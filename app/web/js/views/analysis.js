// @ts-check
// The "Analysis" card of a completed backtest: significance and tail risk, deepest
// drawdowns, annual returns, crisis windows and the bootstrap, as stored by the
// worker (GET /v1/backtest/{id}/analysis); plus the report download and the exports.

import { api, downloadFile } from "../api.js";
import { rollingCharts } from "../components/analysis-charts.js";
import { h, replace } from "../dom.js";
import { int, num, pct, tone } from "../format.js";

/**
 * @typedef {Record<string, any>} Analysis
 */

/** @param {unknown} v */
const signedPct = (v) => h("span", { class: tone(v) }, pct(v, { signed: true }));

/**
 * @param {string[]} header
 * @param {Array<Array<any>>} rows
 * @param {string} id
 */
function table(header, rows, id) {
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id },
    h("thead", {}, h("tr", {}, header.map((x, i) => h("th", { scope: "col", class: i ? "r" : null }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: i ? "r" : null }, c)))))));
}

/** @param {Analysis} a */
function riskList(a) {
  /** @type {Array<[string, string, string]>} */
  const items = [
    ["psr", "Probabilistic Sharpe (vs 0)", pct(a.psr)],
    ["t_stat", "t-statistic of the mean return", num(a.t_stat, 2)],
    ["p_value", "p-value (two-sided)", num(a.p_value, 4)],
    ["var_95", "1-day VaR 95 %", pct(a.var_95)],
    ["cvar_95", "1-day CVaR 95 %", pct(a.cvar_95)],
    ["var_99", "1-day VaR 99 %", pct(a.var_99)],
    ["cvar_99", "1-day CVaR 99 %", pct(a.cvar_99)],
  ];
  for (const [name, c] of Object.entries(a.capture || {})) {
    items.push([`capture-${name}`, `Up / down capture vs ${name}`, `${num(c.up, 2)} / ${num(c.down, 2)}`]);
  }
  return h("dl", { class: "kv-grid", id: "analysis-risk" },
    items.map(([key, label, value]) => h("div", { class: "kv", dataset: { stat: key } }, h("dt", {}, label), h("dd", {}, value))));
}

/** @param {Analysis} a */
function bootstrapBlock(a) {
  const b = a.bootstrap;
  if (!b) return h("p", { class: "muted small" }, "Too short for a bootstrap.");
  /** @type {Array<[string, string, (v: unknown) => string]>} */
  const rows = [["cagr", "CAGR", (v) => pct(v)], ["sharpe", "Sharpe ratio", (v) => num(v, 2)], ["max_drawdown", "Max drawdown", (v) => pct(v)]];
  return h("div", {},
    table(["Statistic", "5th", "Median", "95th"],
      rows.map(([k, label, f]) => [label, f(b[k]?.p5), f(b[k]?.p50), f(b[k]?.p95)]), "analysis-bootstrap"),
    h("p", { class: "muted small" },
      `${int(b.resamples)} resampled paths (stationary blocks of ${int(b.mean_block_sessions)} sessions on average, seed ${b.seed}). `
      + `Probability of a loss ${pct(b.probability_of_loss)}; Sharpe against zero-mean paths p = ${num(b.p_value_sharpe, 3)}.`));
}

/**
 * @param {Analysis} a
 * @param {string | undefined} bench
 * @param {HTMLElement} rolling
 */
function body(a, bench, rolling) {
  const years = a.annual_returns || [];
  const crises = a.crises || [];
  // every benchmark the analysis covers (stored before the list existed: the config's)
  /** @type {string[]} */
  const names = a.benchmarks || (bench ? [bench] : []);
  return h("div", {},
    h("h3", {}, "Significance and tail risk"), riskList(a),
    h("h3", {}, "Deepest drawdowns"),
    (a.drawdowns || []).length
      ? table(["Peak", "Trough", "Recovery", "Depth", "Sessions"],
        a.drawdowns.map((/** @type {any} */ d) => [d.peak, d.trough, d.recovery || "not recovered", signedPct(d.depth), int(d.length_sessions)]),
        "analysis-drawdowns")
      : h("p", { class: "muted small" }, "Never under water."),
    h("h3", {}, "Annual returns"),
    table(["Year", "Portfolio", ...(names.length ? names : ["Benchmark"])],
      years.map((/** @type {any} */ y) => [String(y.year), signedPct(y.portfolio), ...(names.length ? names.map((n) => signedPct(y.benchmarks?.[n])) : ["—"])]),
      "analysis-annual"),
    h("h3", {}, "Crisis windows"),
    crises.length
      ? table(["Window", "Sessions", "Portfolio", ...(names.length ? names : ["Benchmark"])],
        crises.map((/** @type {any} */ c) => [c.name + (c.complete ? "" : " (in part)"), `${c.from} → ${c.to}`, signedPct(c.portfolio),
          ...(names.length ? names.map((n) => signedPct(c.benchmarks?.[n])) : ["—"])]),
        "analysis-crises")
      : h("p", { class: "muted small" }, "The backtest overlaps none of the crisis windows."),
    rolling,
    h("h3", {}, "Bootstrap"), bootstrapBlock(a));
}

/**
 * @param {string} id
 * @param {Record<string, any>} config
 * @returns {{element: HTMLElement, destroy: () => void}}
 */
export function createAnalysisPanel(id, config) {
  let disposed = false;
  /** @type {import("../components/analysis-charts.js").ChartCard | null} */
  let charts = null;
  const slot = h("div", { id: "analysis-body" }, h("div", { class: "loading" }, "Loading…"));
  const note = h("span", { class: "muted small", id: "download-note", "aria-live": "polite" }, "");
  const path = `/v1/backtest/${encodeURIComponent(id)}`;

  /** @param {HTMLButtonElement} button @param {string} route @param {Record<string, string>} query @param {string} fallback */
  async function download(button, route, query, fallback) {
    button.disabled = true;
    note.textContent = "Preparing…";
    try {
      const { filename, size } = await downloadFile(`${path}/${route}`, query, fallback);
      note.textContent = `${filename} downloaded (${int(Math.round(size / 1024))} KiB).`;
    } catch (err) {
      note.textContent = `Download failed: ${/** @type {Error} */ (err).message}`;
    } finally {
      button.disabled = false;
    }
  }

  const reportBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "btn btn-s btn-primary", id: "download-report" }, "Download report"));
  reportBtn.addEventListener("click", () => download(reportBtn, "report", { download: "true" }, `report-${id}.html`));
  const format = /** @type {HTMLSelectElement} */ (h("select", { id: "export-format", "aria-label": "Export format", style: { width: "auto" } },
    h("option", { value: "csv" }, "CSV"), h("option", { value: "parquet" }, "Parquet"), h("option", { value: "json" }, "JSON")));
  const exportBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "btn btn-s", id: "export-equity" }, "Export daily series"));
  exportBtn.addEventListener("click", () => download(exportBtn, "equity", { format: format.value }, `equity-${id}.${format.value}`));

  const element = h("section", { class: "card", "aria-labelledby": "analysis-title", id: "analysis" },
    h("div", { class: "card-head" },
      h("h2", { id: "analysis-title" }, "Analysis"),
      h("div", { class: "row", style: { alignItems: "center" } }, note, format, exportBtn, reportBtn)),
    slot);

  api.analysis(id).then(({ data }) => {
    if (disposed) return;
    charts = rollingCharts(data?.rolling || {});
    replace(slot, body(data || {}, config.benchmark || undefined, charts.element));
    charts.mount();
  }).catch((err) => {
    if (disposed || err.status === 401) return;
    replace(slot, h("div", { class: "alert alert-error" }, `The analysis could not be loaded: ${err.message}`));
  });

  return { element, destroy: () => { disposed = true; charts?.destroy(); } };
}
