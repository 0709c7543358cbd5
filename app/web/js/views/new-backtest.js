// @ts-check
// New backtest (#/new, #/new?from=<id> to start from an earlier run's settings).

import { api, cached } from "../api.js";
import { clearFieldErrors, showFieldErrors } from "../components/form-errors.js";
import { pageHead } from "../components/page-head.js";
import { periodSection } from "../components/period-section.js";
import { portfolioSection } from "../components/portfolio-section.js";
import { rateLimitBanner } from "../components/rate-limit.js";
import { saveFormAsTemplate } from "../components/save-template.js";
import { strategySection } from "../components/strategy-section.js";
import { universeSection } from "../components/universe-section.js";
import { h, replace } from "../dom.js";
import { int } from "../format.js";
import { navigate } from "../router.js";

export { strategyLabel } from "../labels.js";

/**
 * @typedef {{max_span_years: number, max_symbols: number, min_capital: number, max_capital: number,
 *   max_commission: number, max_slippage: number, max_risk_free_rate: number}} RequestLimits
 * @typedef {{symbol: string, name?: string, sector?: string, type?: string}} SymbolInfo
 * @typedef {{dataset: string, first_date: string, last_date: string, benchmarks: string[],
 *   symbols: SymbolInfo[], limits: RequestLimits}} Universe
 * @typedef {{factors: {name: string, description: string, needs_window: boolean}[], operators: string[],
 *   weightings: string[], max_window: number}} Screening
 */

/**
 * The summary above the form after a refused submission.
 * @param {HTMLElement} summary @param {HTMLFormElement} form @param {any} err
 */
function showSubmitErrors(summary, form, err) {
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

/**
 * Checks locally, submits, goes to the new run; a 429 starts the rate-limit countdown.
 * @param {{form: HTMLFormElement, summary: HTMLElement, submit: HTMLButtonElement,
 *   rate: ReturnType<typeof rateLimitBanner>, body: () => object, localErrors: () => import("../api-errors.js").FieldError[]}} parts
 */
function onSubmit({ form, summary, submit, rate, body, localErrors }) {
  /** @param {Event} event @returns {Promise<void>} */
  return async (event) => {
    event.preventDefault();
    if (rate.apply()) return;
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
      const { data } = await api.submit(body());
      navigate(`backtest/${data.task_id}`);
    } catch (err) {
      submit.textContent = "Run backtest";
      submit.disabled = false;
      if (err.status === 429) return void rate.limit(err.retryAfter ?? 60);
      if (err.status !== 401) showSubmitErrors(summary, form, err);
    }
  };
}

/**
 * The whole form; `cfg` is an earlier run's config to start from ({} for a fresh one).
 * @param {{strategies: any[], universe: Universe, screening: Screening, cfg: Record<string, any>, name: string}} data
 */
function backtestForm({ strategies, universe, screening, cfg, name }) {
  const requestJson = h("pre", { class: "json-preview", "aria-label": "Request JSON" });
  const update = () => {
    strategy.refresh();
    requestJson.textContent = JSON.stringify(body(), null, 2);
  };
  const strategy = strategySection(strategies, screening, cfg, update, universe.symbols);
  const universeCard = universeSection(universe, cfg, update);
  const period = periodSection(universe, cfg, name);
  const portfolio = portfolioSection(universe, cfg, { primary: () => period.body().benchmark || "", onChange: update,
    period: () => ({ start: period.body().start_date, end: period.body().end_date }) });
  // A fixed allocation names its own symbols: no universe fields then.
  const body = () => ({ ...period.nameField(), ...strategy.body(), ...(strategy.isAllocation() ? {} : universeCard.body()),
    ...period.body(), ...portfolio.body() });
  const localErrors = () => [...strategy.localErrors(), ...period.localErrors(), ...portfolio.localErrors()];
  const summary = h("div", { class: "alert alert-error", role: "alert", id: "form-errors", tabindex: "-1" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "submit-backtest" }, "Run backtest");
  const rate = rateLimitBanner(submit);
  const form = h("form", { novalidate: true, id: "new-backtest-form", "aria-labelledby": "new-title" },
    summary, rate.element, strategy.element, universeCard.element, period.element, portfolio.element,
    h("details", { class: "card" }, h("summary", {}, "Show the request as JSON (POST /v1/backtest)"), requestJson),
    h("div", { class: "form-actions" }, submit,
      h("a", { class: "btn", href: "#/history" }, "Cancel"),
      saveFormAsTemplate({ body, summary }),
      h("span", { class: "hint", id: "submit-note" }, "")));
  form.addEventListener("change", (e) => {
    const target = /** @type {HTMLInputElement} */ (e.target);
    if (target.name === "strategy-mode" || target.name === "universe-mode") {
      strategy.sync();
      universeCard.sync();
      universeCard.element.hidden = strategy.isAllocation();
    }
    portfolio.sync();
    update();
  });
  form.addEventListener("input", update);
  form.addEventListener("submit", onSubmit({ form, summary, submit, rate, body, localErrors }));
  strategy.sync();
  universeCard.sync();
  universeCard.element.hidden = strategy.isAllocation();
  update();
  rate.apply();
  return { form, stop: rate.stop };
}

/**
 * The run a "start from" link names, or null (none, deleted, not ours).
 * @param {string | undefined} id @returns {Promise<{name?: string, config?: Record<string, any>} | null>}
 */
async function previousRun(id) {
  if (!id) return null;
  try {
    return (await api.status(id)).data;
  } catch {
    return null;
  }
}

/** @param {HTMLElement} container @param {import("../router.js").Route} route */
export async function renderNewBacktest(container, route) {
  container.append(h("div", { class: "loading" }, "Loading strategies and symbols…"));
  const [strategiesRes, symbolsRes, screeningRes, previous] = await Promise.all([
    cached("strategies", api.strategies),
    cached("symbols", api.symbols),
    cached("screening", api.screening),
    previousRun(route.query.from),
  ]);
  /** @type {Universe} */
  const universe = symbolsRes.data;
  const { form, stop } = backtestForm({
    strategies: strategiesRes.data || [],
    universe,
    screening: screeningRes.data,
    cfg: previous?.config || {},
    name: previous ? `${previous.name || "Backtest"} (copy)` : "",
  });
  container.replaceChildren(
    pageHead({ title: "New backtest", titleId: "new-title",
      sub: `Dataset ${universe.dataset}: ${int(universe.symbols.length)} symbols, ${universe.first_date} to ${universe.last_date}.` }),
    form,
  );
  return stop;
}
