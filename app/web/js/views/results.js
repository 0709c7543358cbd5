// Results of a completed backtest: metric cards, charts, monthly heatmap, trades.

import { api, cached } from "../api.js";
import { drawdownChart, equityChart } from "../charts.js";
import { toCsv } from "../csv.js";
import { confirmDialog, downloadText, h, replace } from "../dom.js";
import { date, dateTime, money, pct } from "../format.js";
import { BENCHMARK, BY_KEY, DETAIL, HEADLINE, formatMetric, metricTone } from "../metrics.js";
import { navigate } from "../router.js";
import { strategyLabel } from "./new-backtest.js";
import { saveTemplateButton, shareControl } from "./share.js";
import { createTradesTable } from "./trades.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function metricCard(key, value) {
  const def = BY_KEY[key];
  return h("div", { class: "metric", dataset: { metric: key, value: value ?? "" }, title: def.help },
    h("div", { class: "metric-label" }, def.label),
    h("div", { class: `metric-value ${metricTone(key, value)}`.trim() }, formatMetric(key, value)));
}

function metricRow(key, value) {
  const def = BY_KEY[key];
  return h("div", { class: "kv", dataset: { metric: key, value: value ?? "" }, title: def.help },
    h("dt", {}, def.label), h("dd", { class: metricTone(key, value) }, formatMetric(key, value)));
}

function configSummary(status, strategies) {
  const c = status.config || {};
  const strategy = c.filter_criteria
    ? "Custom screen"
    : strategyLabel(strategies.find((s) => s.id === Number(c.strategy_id))) || (c.strategy_id ? `Strategy ${c.strategy_id}` : "—");
  const params = c.strategy_params && Object.keys(c.strategy_params).length
    ? ` (${Object.entries(c.strategy_params).map(([k, v]) => `${k} ${v}`).join(", ")})` : "";
  const commission = c.commission ?? c.commission_rate;
  const slippage = c.slippage ?? c.slippage_rate;
  const symbols = Array.isArray(c.symbols) && c.symbols.length
    ? (c.symbols.length <= 6 ? c.symbols.join(", ") : `${c.symbols.length} symbols`) : "All stocks";
  const item = (label, value) => h("span", {}, `${label} `, h("b", {}, value));
  return h("div", { class: "config-summary", id: "config-summary" },
    item("Strategy", strategy + params),
    item("Period", `${date(c.start_date)} → ${date(c.end_date)}`),
    item("Universe", symbols),
    item("Capital", money(c.initial_capital, 0)),
    item("Rebalancing", c.rebalancing || "—"),
    item("Costs", `${pct(commission, { digits: 2 })} commission, ${pct(slippage, { digits: 2 })} slippage`),
    item("Execution", c.execution === "close" ? "same-day close" : "next open"),
    item("Benchmark", c.benchmark || "none"));
}

function heatmap(monthly) {
  const entries = Object.entries(monthly || {}).filter(([, v]) => typeof v === "number");
  if (!entries.length) return h("p", { class: "muted" }, "No monthly returns.");
  const byYear = new Map();
  for (const [key, value] of entries) {
    const [year, month] = key.split("-");
    if (!byYear.has(year)) byYear.set(year, new Array(12).fill(null));
    byYear.get(year)[Number(month) - 1] = value;
  }
  const years = [...byYear.keys()].sort();
  const cell = (v, extra = "") => {
    if (v === null) return h("td", { class: `empty ${extra}`.trim() }, "");
    const intensity = Math.min(1, Math.abs(v) / 0.08);
    const alpha = 0.1 + 0.75 * intensity;
    const bg = v >= 0 ? `rgba(11, 122, 62, ${alpha.toFixed(3)})` : `rgba(193, 39, 45, ${alpha.toFixed(3)})`;
    return h("td", {
      class: extra,
      style: { background: bg, color: intensity > 0.55 ? "#fff" : "#17202b" },
      dataset: { value: v },
    }, pct(v, { digits: 1 }));
  };
  return h("div", { class: "heatmap-wrap" },
    h("table", { class: "heatmap", id: "monthly-heatmap" },
      h("caption", { class: "visually-hidden" }, "Monthly returns by year and month; the last column compounds the year."),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Year"), MONTHS.map((m) => h("th", { scope: "col" }, m)), h("th", { scope: "col" }, "Year"))),
      h("tbody", {}, years.map((year) => {
        const months = byYear.get(year);
        const compounded = months.reduce((acc, v) => (v === null ? acc : acc * (1 + v)), 1) - 1;
        return h("tr", { dataset: { year } }, h("th", { scope: "row" }, year), months.map((v) => cell(v)), cell(compounded, "year-total"));
      }))));
}

function toggleGroup(label, options, current, onPick) {
  const buttons = options.map((o) => h("button", {
    type: "button",
    class: "btn btn-s",
    "aria-pressed": String(o.value === current),
    dataset: { value: o.value },
    onclick: () => {
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === buttonFor(o.value))));
      onPick(o.value);
    },
  }, o.label));
  const buttonFor = (value) => buttons.find((b) => b.dataset.value === value);
  return h("div", { class: "btn-group", role: "group", "aria-label": label }, buttons);
}

/** Renders synchronously, loads charts and trades in the background; returns cleanup. */
export function renderResults(container, status) {
  const id = status.task_id;
  const m = status.metrics || {};
  const charts = [];
  let disposed = false;
  const benchName = status.config?.benchmark;

  const summarySlot = h("div", {});
  const equityEl = h("div", { class: "chart", id: "equity-chart", "aria-label": "Equity curve chart", role: "img" });
  const drawdownEl = h("div", { class: "chart", id: "drawdown-chart", "aria-label": "Drawdown chart", role: "img" });
  const heatSlot = h("div", { id: "heatmap-slot" }, h("div", { class: "loading" }, "Loading…"));
  const chartNote = h("div", { class: "legend-note", id: "chart-note" }, "Drag across a chart to zoom; double-click to reset.");
  let equity = null;
  let drawdown = null;

  const scaleToggle = toggleGroup("Scale", [{ value: "linear", label: "Linear" }, { value: "log", label: "Log" }], "linear",
    (v) => equity?.setLog(v === "log"));
  const resetZoom = h("button", { type: "button", class: "btn btn-s", id: "reset-zoom", onclick: () => { equity?.resetZoom(); drawdown?.resetZoom(); } }, "Reset zoom");
  const equityCsv = h("button", {
    type: "button", class: "btn btn-s", id: "download-equity",
    onclick: async () => {
      equityCsv.disabled = true;
      try {
        const full = (await api.chart(id, 10000)).data;
        const dd = new Map((full.drawdown_series || []).map((p) => [p.date, p.drawdown]));
        const rows = (full.equity_curve || []).map((p) => [p.date, p.equity, p.benchmark ?? "", dd.get(p.date) ?? ""]);
        downloadText(`backtest-${id}-equity.csv`, toCsv(["date", "equity", "benchmark", "drawdown"], rows));
      } catch (err) {
        chartNote.textContent = `Download failed: ${err.message}`;
      } finally {
        equityCsv.disabled = false;
      }
    },
  }, "Download equity CSV");

  const trades = createTradesTable(id, status.config || {});

  const deleteBtn = h("button", {
    type: "button", class: "btn btn-danger", id: "delete-backtest",
    onclick: async () => {
      const ok = await confirmDialog({ title: "Delete this backtest?", message: "Its results and trades are removed for good.", confirmLabel: "Delete", danger: true });
      if (!ok) return;
      try {
        await api.remove(id);
        navigate("history");
      } catch (err) {
        if (err.status !== 401) chartNote.textContent = err.message;
      }
    },
  }, "Delete");

  container.append(
    h("div", { class: "page-head" },
      h("div", {},
        h("h1", { id: "result-title" }, status.name || "Backtest results"),
        h("div", { class: "sub" }, `Completed ${dateTime(status.completed_at)} · `, h("span", { class: "badge badge-completed", dataset: { status: "completed" } }, "completed"))),
      h("div", { class: "row" },
        h("a", { class: "btn", href: `#/new?from=${encodeURIComponent(id)}` }, "Run again with changes"),
        h("a", { class: "btn", href: `#/compare?ids=${encodeURIComponent(id)}` }, "Compare…"),
        saveTemplateButton(status),
        deleteBtn)),
    shareControl(id),
    h("section", { class: "card", "aria-label": "Settings" }, summarySlot),
    h("h2", { class: "visually-hidden" }, "Key metrics"),
    h("div", { class: "metric-grid", id: "metric-cards" }, HEADLINE.map((k) => metricCard(k, m[k]))),
    h("section", { class: "card", "aria-labelledby": "equity-title" },
      h("div", { class: "card-head" },
        h("h2", { id: "equity-title" }, "Equity curve"),
        h("div", { class: "chart-toolbar" }, scaleToggle, resetZoom, equityCsv)),
      equityEl,
      chartNote),
    h("section", { class: "card", "aria-labelledby": "dd-title" },
      h("div", { class: "card-head" }, h("h2", { id: "dd-title" }, "Drawdown")),
      drawdownEl),
    h("section", { class: "card", "aria-labelledby": "bench-title" },
      h("h2", { id: "bench-title" }, benchName ? `Against the benchmark (${benchName})` : "Against the benchmark"),
      benchName ? null : h("p", { class: "muted small" }, "No benchmark was chosen for this run."),
      h("div", { class: "metric-grid metric-grid-7", id: "benchmark-cards" },
        BENCHMARK.map((k) => metricCard(k, m[k])))),
    h("section", { class: "card", "aria-labelledby": "risk-title" },
      h("h2", { id: "risk-title" }, "Risk and trading"),
      h("dl", { class: "kv-grid", id: "detail-metrics" }, DETAIL.map((k) => metricRow(k, m[k])))),
    h("section", { class: "card", "aria-labelledby": "heat-title" },
      h("h2", { id: "heat-title" }, "Monthly returns"),
      heatSlot),
    trades.element,
  );

  cached("strategies", api.strategies)
    .then((r) => !disposed && replace(summarySlot, configSummary(status, r.data || [])))
    .catch(() => !disposed && replace(summarySlot, configSummary(status, [])));

  api.chart(id, 1000).then(({ data }) => {
    if (disposed) return;
    // Equity and drawdown share cursor and zoom.
    equity = equityChart(equityEl, data, { syncKey: `bt-${id}`, onZoom: (min, max) => drawdown?.setRange(min, max) });
    drawdown = drawdownChart(drawdownEl, data, { syncKey: `bt-${id}`, onZoom: (min, max) => equity?.setRange(min, max) });
    charts.push(equity, drawdown);
    replace(heatSlot, heatmap(data.monthly_returns));
  }).catch((err) => {
    if (disposed || err.status === 401) return;
    replace(heatSlot, h("div", { class: "alert alert-error" }, `Charts could not be loaded: ${err.message}`));
  });

  return () => {
    disposed = true;
    charts.forEach((c) => c.destroy());
    trades.destroy();
  };
}
