// New backtest (#/new, #/new?from=<id> to start from an earlier run's settings).

import { api, cached } from "../api.js";
import { field, h, replace } from "../dom.js";
import { clock, duration, int } from "../format.js";
import { navigate } from "../router.js";
import { clearFieldErrors, showFieldErrors } from "./form-errors.js";
import { createScreenBuilder, DEFAULT_SCREEN } from "./screen-builder.js";
import { createSymbolPicker } from "./symbol-picker.js";
import { createUniverseChoice } from "./universe-choice.js";

const RETRY_KEY = "backtest.retryAt";
const MAX_SPAN_YEARS = 10;

// Percent inputs: checked here, in the unit the user typed, before the API sees fractions.
const PERCENT_LIMITS = {
  commission: { max: 10, label: "Commission" },
  slippage: { max: 5, label: "Slippage" },
  risk_free_rate: { max: 20, label: "Risk-free rate" },
};

function shiftYears(iso, years) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.toISOString().slice(0, 10);
}

function radioGroup(name, options, value, legend) {
  return h("div", { class: "segmented", role: "radiogroup", "aria-label": legend },
    options.map((o) => h("label", {},
      h("input", { type: "radio", name, value: o.value, checked: o.value === value }), o.label)));
}

function numberInput(attrs) {
  return h("input", { type: "number", inputmode: "decimal", ...attrs });
}

function readNumber(input) {
  const raw = input.value.trim();
  if (raw === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : raw;
}

/** Round a percent → fraction conversion so 0.1% becomes 0.001, not 0.0010000000000000002. */
function fromPercent(value) {
  return typeof value === "number" ? Number((value / 100).toPrecision(12)) : value;
}

function toPercent(value) {
  return typeof value === "number" ? Number((value * 100).toPrecision(12)) : "";
}

export async function renderNewBacktest(container, route) {
  container.append(h("div", { class: "loading" }, "Loading strategies and symbols…"));
  const [strategiesRes, symbolsRes, previous] = await Promise.all([
    cached("strategies", api.strategies),
    cached("symbols", api.symbols),
    route.query.from ? api.status(route.query.from).then((r) => r.data).catch(() => null) : null,
  ]);
  const strategies = strategiesRes.data || [];
  const universe = symbolsRes.data;
  const stocks = universe.symbols.filter((s) => s.type !== "etf");
  const cfg = previous?.config || {};
  const timers = [];

  // ---- strategy ------------------------------------------------------------------
  const firstStrategy = strategies[0]?.id;
  const mode = cfg.filter_criteria ? "screen" : "strategy";
  const modeGroup = radioGroup("strategy-mode", [
    { value: "strategy", label: "Predefined strategy" },
    { value: "screen", label: "Custom screen" },
  ], mode, "Strategy type");
  const strategySelect = h("select", { name: "strategy_id" },
    strategies.map((s) => h("option", { value: s.id, selected: s.id === (cfg.strategy_id ?? firstStrategy) }, strategyLabel(s))));
  const strategyDesc = h("div", { class: "strategy-desc" });
  const paramGrid = h("div", { class: "param-grid" });
  const paramInputs = new Map();
  const renderParams = () => {
    const strat = strategies.find((s) => String(s.id) === strategySelect.value);
    // Descriptions mark parameter names and formulas with `backticks`.
    replace(strategyDesc, String(strat?.description || "").split("`")
      .map((part, i) => (i % 2 ? h("code", {}, part) : part)));
    paramInputs.clear();
    const given = Number(cfg.strategy_id) === strat?.id ? cfg.strategy_params || {} : {};
    replace(paramGrid, (strat?.parameters || []).map((p) => {
      const input = numberInput({
        name: `param-${p.name}`,
        min: p.min ?? null,
        max: p.max ?? null,
        step: p.type === "int" ? 1 : "any",
        value: given[p.name] ?? p.default,
      });
      paramInputs.set(p.name, input);
      const range = p.min !== undefined && p.max !== undefined && p.min !== null ? ` Range ${p.min}–${p.max}, default ${p.default}.` : "";
      const desc = String(p.description || "").trim();
      const sentence = desc ? `${desc.charAt(0).toUpperCase()}${desc.slice(1)}${desc.endsWith(".") ? "" : "."}` : "";
      return field({ label: labelFor(p.name), control: input, name: `strategy_params.${p.name}`, hint: `${sentence}${range}` });
    }));
    updatePreview();
  };
  strategySelect.addEventListener("change", renderParams);
  const strategyPane = h("div", { dataset: { pane: "strategy" } },
    field({ label: "Strategy", control: strategySelect, name: "strategy_id" }), strategyDesc, paramGrid);

  const screen = createScreenBuilder({ initial: cfg.filter_criteria || DEFAULT_SCREEN, onChange: () => updatePreview() });
  const screenJson = h("pre", { class: "json-preview", "aria-label": "filter_criteria JSON" });
  const screenPane = h("div", { dataset: { pane: "screen" } }, screen.element,
    h("details", { style: { marginTop: "16px" } }, h("summary", {}, "Show as filter_criteria JSON"), screenJson));

  // ---- universe -------------------------------------------------------------------
  const chosen = Array.isArray(cfg.symbols) && cfg.symbols.length ? cfg.symbols : [];
  const universeGroup = radioGroup("universe-mode", [
    { value: "all", label: `All stocks (${int(stocks.length)})` },
    { value: "chosen", label: "Chosen symbols" },
  ], chosen.length ? "chosen" : "all", "Universe");
  const picker = createSymbolPicker({ symbols: universe.symbols, initial: chosen, onChange: () => updatePreview() });
  const pickerErr = h("div", { class: "field-error", id: "symbols-error", "aria-live": "polite" });
  picker.input.setAttribute("aria-describedby", "symbols-error");
  const pickerField = h("div", { class: "field", dataset: { field: "symbols" } },
    h("label", { for: picker.input.id }, "Symbols"), picker.element, pickerErr);
  const membership = createUniverseChoice({ initial: cfg.universe, listed: chosen.length > 0 });

  // ---- period and costs -------------------------------------------------------------
  const first = universe.first_date;
  const last = universe.last_date;
  const start = h("input", { type: "date", name: "start_date", min: first, max: last,
    value: cfg.start_date || (shiftYears(last, -5) < first ? first : shiftYears(last, -5)) });
  const end = h("input", { type: "date", name: "end_date", min: first, max: last, value: cfg.end_date || last });
  const capital = numberInput({ name: "initial_capital", min: 1000, max: 10000000, step: 1000, value: cfg.initial_capital ?? 100000 });
  const rebalancing = h("select", { name: "rebalancing" },
    ["daily", "weekly", "monthly", "quarterly"].map((v) =>
      h("option", { value: v, selected: v === (cfg.rebalancing ?? "monthly") }, v[0].toUpperCase() + v.slice(1))));
  const commission = numberInput({ name: "commission", min: 0, max: 10, step: 0.01, value: toPercent(cfg.commission ?? cfg.commission_rate ?? 0.001) });
  const slippage = numberInput({ name: "slippage", min: 0, max: 5, step: 0.01, value: toPercent(cfg.slippage ?? cfg.slippage_rate ?? 0.0005) });
  const execution = h("select", { name: "execution" },
    h("option", { value: "next_open", selected: cfg.execution !== "close" }, "Next day's open"),
    h("option", { value: "close", selected: cfg.execution === "close" }, "Same day's close"));
  const dividends = h("input", { type: "checkbox", name: "dividends", checked: cfg.dividends ?? true });
  const benchmark = h("select", { name: "benchmark" },
    h("option", { value: "" }, "None"),
    (universe.benchmarks || []).map((b) => h("option", { value: b, selected: b === (cfg.benchmark ?? (universe.benchmarks.includes("SPY") ? "SPY" : "")) },
      `${b}${nameOf(universe, b)}`)));
  const riskFree = numberInput({ name: "risk_free_rate", min: 0, max: 20, step: 0.1, value: toPercent(cfg.risk_free_rate ?? 0) });
  const name = h("input", { type: "text", name: "name", maxlength: 200,
    value: previous ? `${previous.name || "Backtest"} (copy)` : "", placeholder: "e.g. Momentum top 20, 2019–2024" });

  // ---- submit, errors, rate limit -----------------------------------------------------
  const summary = h("div", { class: "alert alert-error", role: "alert", id: "form-errors", tabindex: "-1" });
  const rateBanner = h("div", { class: "alert alert-warn", role: "status", id: "rate-limit", hidden: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "submit-backtest" }, "Run backtest");
  const requestJson = h("pre", { class: "json-preview", "aria-label": "Request JSON" });

  const form = h("form", { novalidate: true, id: "new-backtest-form", "aria-labelledby": "new-title" },
    summary,
    rateBanner,
    h("section", { class: "card" },
      h("h2", {}, "Strategy"),
      modeGroup, strategyPane, screenPane),
    h("section", { class: "card" },
      h("h2", {}, "Universe"),
      universeGroup, pickerField, membership.element),
    h("section", { class: "card" },
      h("h2", {}, "Period, capital and costs"),
      h("div", { class: "grid-4" },
        field({ label: "Start date", control: start, name: "start_date", hint: `Data from ${first}` }),
        field({ label: "End date", control: end, name: "end_date", hint: `Data until ${last} · span ≤ ${MAX_SPAN_YEARS} years` }),
        field({ label: "Initial capital ($)", control: capital, name: "initial_capital", hint: "1,000 – 10,000,000" }),
        field({ label: "Rebalancing", control: rebalancing, name: "rebalancing" })),
      h("div", { class: "grid-4", style: { marginTop: "16px" } },
        field({ label: "Commission (%)", control: commission, name: "commission", hint: "Of traded notional; 0.10% = 10 bp" }),
        field({ label: "Slippage (%)", control: slippage, name: "slippage", hint: "Added to buys, taken off sells" }),
        field({ label: "Execution", control: execution, name: "execution", hint: "When orders decided at a close are filled" }),
        field({ label: "Benchmark", control: benchmark, name: "benchmark" })),
      h("div", { class: "grid-4", style: { marginTop: "16px" } },
        field({ label: "Risk-free rate (%/year)", control: riskFree, name: "risk_free_rate", hint: "For Sharpe, Sortino and alpha" }),
        h("div", { class: "field", dataset: { field: "dividends" } },
          h("span", { class: "label" }, "Dividends"),
          h("label", { class: "choice", style: { minHeight: "36px" } }, dividends, "Include cash dividends (total return)"),
          h("div", { class: "field-error" })),
        field({ label: "Name (optional)", control: name, name: "name", className: "span-2" }))),
    h("details", { class: "card" }, h("summary", {}, "Show the request as JSON (POST /v1/backtest)"), requestJson),
    h("div", { class: "form-actions" }, submit,
      h("a", { class: "btn", href: "#/history" }, "Cancel"),
      h("span", { class: "hint", id: "submit-note" }, "")),
  );

  function syncModes() {
    const m = form.querySelector('input[name="strategy-mode"]:checked').value;
    strategyPane.hidden = m !== "strategy";
    screenPane.hidden = m !== "screen";
    const u = form.querySelector('input[name="universe-mode"]:checked').value;
    pickerField.hidden = u !== "chosen";
    membership.follow(u === "chosen");
    updatePreview();
  }

  function buildBody() {
    const body = {};
    if (name.value.trim()) body.name = name.value.trim();
    if (form.querySelector('input[name="strategy-mode"]:checked').value === "strategy") {
      body.strategy_id = Number(strategySelect.value);
      const params = {};
      for (const [key, input] of paramInputs) params[key] = readNumber(input);
      if (paramInputs.size) body.strategy_params = params;
    } else {
      body.filter_criteria = screen.getCriteria();
    }
    if (form.querySelector('input[name="universe-mode"]:checked').value === "chosen") {
      body.symbols = picker.getSelected();
    }
    body.universe = membership.value();
    body.start_date = start.value || null;
    body.end_date = end.value || null;
    body.initial_capital = readNumber(capital);
    body.rebalancing = rebalancing.value;
    body.commission = fromPercent(readNumber(commission));
    body.slippage = fromPercent(readNumber(slippage));
    body.execution = execution.value;
    body.dividends = dividends.checked;
    if (benchmark.value) body.benchmark = benchmark.value;
    const rf = fromPercent(readNumber(riskFree));
    if (rf !== null && rf !== 0) body.risk_free_rate = rf;
    return body;
  }

  function updatePreview() {
    screenJson.textContent = JSON.stringify(screen.getCriteria(), null, 2);
    requestJson.textContent = JSON.stringify(buildBody(), null, 2);
  }

  function localErrors() {
    const errors = [];
    const inputs = { commission, slippage, risk_free_rate: riskFree };
    for (const [key, limit] of Object.entries(PERCENT_LIMITS)) {
      const v = readNumber(inputs[key]);
      if (v === null && key === "risk_free_rate") continue;
      if (typeof v !== "number" || v < 0 || v > limit.max) {
        errors.push({ field: key, message: `${limit.label} must be between 0% and ${limit.max}%.` });
      }
    }
    return errors;
  }

  // Rate limit: remember until when, count down, keep Run disabled until then.
  function applyRateLimit() {
    const until = Number(sessionStorage.getItem(RETRY_KEY) || 0);
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      sessionStorage.removeItem(RETRY_KEY);
      rateBanner.hidden = true;
      submit.disabled = false;
      return false;
    }
    rateBanner.hidden = false;
    rateBanner.textContent = `Submission limit reached. You can submit the next backtest at ${clock(new Date(until))} (in ${duration(left)}).`;
    submit.disabled = true;
    return true;
  }
  const rateTimer = setInterval(applyRateLimit, 1000);
  timers.push(rateTimer);

  form.addEventListener("change", (e) => {
    if (e.target.name === "strategy-mode" || e.target.name === "universe-mode") syncModes();
    else updatePreview();
  });
  form.addEventListener("input", updatePreview);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (applyRateLimit()) return;
    clearFieldErrors(form);
    summary.textContent = "";
    const local = localErrors();
    if (local.length) {
      showFieldErrors(form, local);
      summary.textContent = "Please correct the highlighted fields.";
      return;
    }
    submit.disabled = true;
    submit.textContent = "Submitting…";
    try {
      const { data } = await api.submit(buildBody());
      navigate(`backtest/${data.task_id}`);
    } catch (err) {
      submit.textContent = "Run backtest";
      submit.disabled = false;
      if (err.status === 429) {
        const wait = err.retryAfter ?? 60;
        sessionStorage.setItem(RETRY_KEY, String(Date.now() + wait * 1000));
        applyRateLimit();
        rateBanner.focus?.();
        return;
      }
      if (err.status === 401) return;
      const fieldErrors = err.fieldErrors;
      const unmatched = showFieldErrors(form, fieldErrors);
      const items = unmatched.map((e) => h("li", {}, e.field ? `${e.field}: ${e.message}` : e.message));
      if (fieldErrors.length) {
        replace(summary, h("strong", {}, "The backtest was not started. Please correct the highlighted fields."),
          items.length ? h("ul", {}, items) : null);
      } else {
        replace(summary, h("strong", {}, "The backtest was not started. "), err.message);
      }
      if (!fieldErrors.length || unmatched.length === fieldErrors.length) summary.focus();
    }
  });

  container.replaceChildren(
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { id: "new-title" }, "New backtest"),
        h("div", { class: "sub" }, `Dataset ${universe.dataset}: ${int(universe.symbols.length)} symbols, ${first} to ${last}.`))),
    form,
  );
  renderParams();
  syncModes();
  applyRateLimit();
  return () => timers.forEach(clearInterval);
}

/** "short-term-reversal" → "Short-term reversal". */
export function strategyLabel(strategy) {
  const name = String(strategy?.name ?? "");
  if (/[A-Z ]/.test(name)) return name;
  const words = name.split("-");
  const text = words.length > 2 ? `${words.slice(0, -1).join("-")} ${words.at(-1)}` : words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function labelFor(paramName) {
  const words = paramName.split("_").map((w) => (w.length === 1 ? w.toUpperCase() : w));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function nameOf(universe, symbol) {
  const entry = universe.symbols.find((s) => s.symbol === symbol);
  return entry?.name ? ` — ${entry.name}` : "";
}
