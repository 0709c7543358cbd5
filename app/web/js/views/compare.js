// Compare 2–4 completed backtests (#/compare?ids=a,b,c): overlaid equity, metrics side by side.

import { api } from "../api.js";
import { compareChart, PALETTE } from "../charts.js";
import { h, replace } from "../dom.js";
import { date, dateTime, pct, tone } from "../format.js";
import { BY_KEY, METRICS, formatMetric, metricTone } from "../metrics.js";
import { navigate } from "../router.js";
import { MAX_COMPARE } from "./history.js";

const PICK_LIMIT = 100;

function pickerCard(ids, completed, { bare = false } = {}) {
  const chosen = new Set(ids);
  const go = h("button", { type: "submit", class: "btn btn-primary", id: "compare-go" }, "Compare");
  const note = h("span", { class: "hint", "aria-live": "polite" });
  const sync = () => {
    const n = chosen.size;
    go.disabled = n < 2 || n > MAX_COMPARE;
    note.textContent = n > MAX_COMPARE ? `Choose at most ${MAX_COMPARE}.` : `${n} selected · choose 2 to ${MAX_COMPARE}.`;
  };
  const list = completed.length
    ? h("div", { class: "table-wrap" }, h("table", { class: "data", id: "compare-picker" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Select")),
        h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Completed"), h("th", { scope: "col", class: "r" }, "Total return"))),
      h("tbody", {}, completed.map((item) => h("tr", { dataset: { taskId: item.task_id } },
        h("td", {}, h("input", {
          type: "checkbox",
          id: `pick-${item.task_id}`,
          checked: chosen.has(item.task_id),
          onchange: (e) => {
            if (e.target.checked) chosen.add(item.task_id);
            else chosen.delete(item.task_id);
            sync();
          },
        })),
        h("td", { class: "name-cell" }, h("label", { for: `pick-${item.task_id}` }, item.name || "Untitled backtest")),
        h("td", { class: "num" }, dateTime(item.completed_at)),
        h("td", { class: `num r ${tone(item.total_return)}` }, pct(item.total_return, { signed: true })))))))
    : h("p", { class: "muted" }, "No completed backtests yet. ", h("a", { href: "#/new" }, "Run one"), " first.");
  const form = h("form", { class: bare ? "" : "card", id: "compare-form", "aria-labelledby": "pick-title" },
    h("div", { class: "card-head" }, h("h2", { id: "pick-title" }, "Choose backtests"), h("div", { class: "row", style: { alignItems: "center" } }, note, go)),
    list);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    navigate("compare", { ids: [...chosen].join(",") });
  });
  sync();
  return form;
}

function metricsTable(runs) {
  const bestIndex = (key) => {
    const def = BY_KEY[key];
    if (!def.better) return -1;
    const values = runs.map((r) => r.status.metrics?.[key]);
    let best = -1;
    values.forEach((v, i) => {
      if (typeof v !== "number") return;
      if (best < 0 || (def.better === "high" ? v > values[best] : v < values[best])) best = i;
    });
    return values.filter((v) => typeof v === "number").length > 1 ? best : -1;
  };
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id: "compare-metrics" },
    h("caption", { class: "visually-hidden" }, "Metrics side by side; the best value of each row is in bold."),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Metric"),
      runs.map((r, i) => h("th", { scope: "col", class: "r" }, h("span", { class: "swatch", style: { background: PALETTE[i] } }),
        h("a", { href: `#/backtest/${r.id}` }, r.label))))),
    h("tbody", {},
      h("tr", {}, h("th", { scope: "row" }, "Period"), runs.map((r) => h("td", { class: "num r" }, `${date(r.status.config?.start_date)} → ${date(r.status.config?.end_date)}`))),
      METRICS.map((def) => {
        const best = bestIndex(def.key);
        return h("tr", { dataset: { metric: def.key } }, h("th", { scope: "row", title: def.help }, def.label),
          runs.map((r, i) => {
            const v = r.status.metrics?.[def.key];
            return h("td", { class: `num r ${metricTone(def.key, v)} ${i === best ? "best" : ""}`.trim(), dataset: { value: v ?? "" } }, formatMetric(def.key, v));
          }));
      }))));
}

export async function renderCompare(container, route) {
  const ids = [...new Set((route.query.ids || "").split(",").map((s) => s.trim()).filter(Boolean))];
  let chart = null;
  const head = h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, "Compare backtests"), h("div", { class: "sub" }, `Overlay 2 to ${MAX_COMPARE} completed backtests and compare their metrics.`)));
  container.append(head, h("div", { class: "loading" }, "Loading…"));

  const historyRes = await api.history({ status: "completed", limit: PICK_LIMIT, sort: "-created_at" });
  const completed = historyRes.data || [];

  if (ids.length < 2) {
    container.replaceChildren(head, pickerCard(ids, completed));
    return undefined;
  }
  if (ids.length > MAX_COMPARE) {
    container.replaceChildren(head, h("div", { class: "alert alert-warn", role: "alert" }, `Choose at most ${MAX_COMPARE} backtests.`), pickerCard(ids.slice(0, MAX_COMPARE), completed));
    return undefined;
  }

  const loaded = await Promise.allSettled(ids.map(async (id) => {
    const status = (await api.status(id)).data;
    if (status.status !== "completed") throw new Error(`“${status.name || id}” is ${status.status}, not completed.`);
    const chartData = (await api.chart(id, 1000)).data;
    return { id, status, chart: chartData, label: status.name || `Backtest ${id.slice(0, 8)}` };
  }));
  const problems = loaded.filter((r) => r.status === "rejected").map((r) => r.reason?.status === 404 ? "A backtest was not found (deleted?)." : r.reason?.message);
  const runs = loaded.filter((r) => r.status === "fulfilled").map((r) => r.value);

  // Same name twice would make the legend ambiguous.
  const seen = new Map();
  for (const run of runs) {
    const n = (seen.get(run.label) || 0) + 1;
    seen.set(run.label, n);
    if (n > 1) run.label = `${run.label} (${n})`;
  }

  const chartEl = h("div", { class: "chart", id: "compare-chart", role: "img", "aria-label": "Cumulative return of the compared backtests" });
  const toggleButtons = [["linear", "Linear"], ["log", "Log"]].map(([v, label]) => h("button", {
    type: "button", class: "btn btn-s", "aria-pressed": String(v === "linear"), dataset: { value: v },
    onclick: (e) => {
      toggleButtons.forEach((b) => b.setAttribute("aria-pressed", String(b === e.currentTarget)));
      chart?.setLog(v === "log");
    },
  }, label));

  const picker = pickerCard(ids, completed, { bare: true });
  container.replaceChildren(
    head,
    problems.length ? h("div", { class: "alert alert-warn", role: "alert" }, problems.join(" ")) : "",
    runs.length >= 2 ? h("section", { class: "card", "aria-labelledby": "cmp-chart-title" },
      h("div", { class: "card-head" }, h("h2", { id: "cmp-chart-title" }, "Cumulative return"),
        h("div", { class: "chart-toolbar" }, h("div", { class: "btn-group", role: "group", "aria-label": "Scale" }, toggleButtons),
          h("button", { type: "button", class: "btn btn-s", onclick: () => chart?.resetZoom() }, "Reset zoom"))),
      chartEl,
      h("div", { class: "legend-note" }, "Each curve starts at 0% on its own first day, so runs with different capital compare fairly. Drag to zoom.")) : "",
    runs.length >= 2 ? h("section", { class: "card", "aria-labelledby": "cmp-metrics-title" },
      h("h2", { id: "cmp-metrics-title" }, "Metrics"), metricsTable(runs)) : "",
    h("details", { class: "card", open: runs.length < 2 }, h("summary", {}, "Change the selection"), h("div", { style: { marginTop: "12px" } }, picker)),
  );
  if (runs.length >= 2) chart = compareChart(chartEl, runs);
  return () => chart?.destroy();
}
