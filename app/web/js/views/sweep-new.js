// @ts-check
// Parameter sweeps (#/sweeps, #/sweeps?from=<sweep id> to start from an earlier one):
// the grid, the base backtest (the new-backtest form's cards), the objective and an
// optional walk-forward; then "Your sweeps".

import { api, cached } from "../api.js";
import { clearFieldErrors, showFieldErrors } from "../components/form-errors.js";
import { field, h, replace } from "../dom.js";
import { pageHead } from "../components/page-head.js";
import { periodSection } from "../components/period-section.js";
import { strategySection } from "../components/strategy-section.js";
import { gridEditor } from "../components/sweep-grid-editor.js";
import { sweepList } from "../components/sweep-list.js";
import { universeSection } from "../components/universe-section.js";
import { numberInput, readNumber, selectOf } from "../components/form-controls.js";
import { paramLabel } from "../labels.js";
import { BY_KEY } from "../metrics.js";
import { navigate } from "../router.js";
import { sweepApi } from "../sweep-api.js";
import { gridBody, rowsFromGrid } from "../sweep-grid.js";

/** @typedef {import("../api-errors.js").FieldError} FieldError */

const SCALAR_KEYS = [["rebalancing", "Rebalancing"], ["execution", "Execution"], ["commission", "Commission (%)"], ["slippage", "Slippage (%)"]];

/** The keys the grid may vary for the base as it stands. @param {Record<string, any>} strategyBody */
function keyOptions(strategyBody) {
  const own = strategyBody.filter_criteria
    ? [["filter_criteria.top_n", "Screen: top N"], ["filter_criteria.weighting", "Screen: weighting"]]
    : Object.keys(strategyBody.strategy_params || {}).map((k) => [`strategy_params.${k}`, paramLabel(k)]);
  return [...own, ...SCALAR_KEYS].map(([value, label]) => ({ value, label }));
}

/** Objective, walk-forward. @param {string[]} objectives @param {Record<string, any>} request */
function sweepSettings(objectives, request) {
  const wf = request.walk_forward;
  const objective = selectOf({ name: "objective", id: "sweep-objective" },
    objectives.map((o) => /** @type {[string, string]} */ ([o, BY_KEY[o]?.label ?? paramLabel(o)])), request.objective ?? "sharpe_ratio");
  const useWf = h("input", { type: "checkbox", id: "walk-forward", checked: Boolean(wf) });
  const train = numberInput({ name: "train_months", id: "wf-train", min: 1, max: 120, step: 1, value: wf?.train_months ?? 36 });
  const test = numberInput({ name: "test_months", id: "wf-test", min: 1, max: 120, step: 1, value: wf?.test_months ?? 12 });
  const anchored = h("input", { type: "checkbox", id: "wf-anchored", checked: Boolean(wf?.anchored) });
  const wfBox = h("div", { class: "grid-4", style: { marginTop: "12px" } },
    field({ label: "Train months", control: train, name: "walk_forward.train_months" }),
    field({ label: "Test months", control: test, name: "walk_forward.test_months" }),
    h("div", { class: "field" }, h("span", { class: "label" }, "Train span"),
      h("label", { class: "choice" }, anchored, "Anchored: every train span begins on day one")));
  const sync = () => { wfBox.hidden = !useWf.checked; };
  useWf.addEventListener("change", sync);
  sync();
  const element = h("section", { class: "card" }, h("h2", {}, "Objective and walk-forward"),
    h("div", { class: "grid-4" }, field({ label: "Objective", control: objective, name: "objective",
      hint: "The metric that picks the best combination (lower-is-better metrics are minimised)." })),
    h("div", { class: "field", dataset: { field: "walk_forward" }, style: { marginTop: "12px" } },
      h("label", { class: "choice" }, useWf, "Walk-forward: choose the best on each train span, run it on the next test span"),
      h("div", { class: "field-error" })),
    wfBox);
  const body = () => ({ objective: objective.value,
    ...(useWf.checked ? { walk_forward: { train_months: readNumber(train), test_months: readNumber(test), anchored: anchored.checked } } : {}) });
  return { element, body };
}

/** Server errors on the form: "base.x" lands on the base's field x. @param {HTMLFormElement} form @param {HTMLElement} summary @param {any} err */
function showSweepErrors(form, summary, err) {
  const errors = err.fieldErrors.map((/** @type {FieldError} */ e) => ({ ...e, field: e.field.replace(/^base\.?/, "") || "base" }));
  if (!errors.length && err.status === 400) errors.push({ field: "grid", message: err.message });
  const unmatched = showFieldErrors(form, errors);
  const items = unmatched.map((e) => h("li", {}, e.field ? `${e.field}: ${e.message}` : e.message));
  replace(summary, h("strong", {}, "The sweep was not started. "),
    errors.length ? "Please correct the highlighted fields." : err.message, items.length ? h("ul", {}, items) : null);
  if (!errors.length || unmatched.length === errors.length) summary.focus();
}

/**
 * @param {{form: HTMLFormElement, summary: HTMLElement, submit: HTMLButtonElement, body: () => object,
 *   localErrors: () => FieldError[]}} parts
 */
function onSubmit({ form, summary, submit, body, localErrors }) {
  return async (/** @type {Event} */ event) => {
    event.preventDefault();
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
      const { data } = await sweepApi.submit(body());
      navigate(`sweep/${data.sweep_id}`);
    } catch (err) {
      submit.disabled = false;
      submit.textContent = "Run sweep";
      if (err.status !== 401) showSweepErrors(form, summary, err);
    }
  };
}

/**
 * The whole form; `request` is an earlier sweep's request ({} for a fresh one).
 * @param {{strategies: any[], universe: any, screening: any, limits: any, request: Record<string, any>}} data
 */
function sweepForm({ strategies, universe, screening, limits, request }) {
  const base = request.base || {};
  const preview = h("pre", { class: "json-preview", "aria-label": "Request JSON" });
  const update = () => {
    strategy.refresh();
    grid.setKeys(keyOptions(strategy.body()));
    preview.textContent = JSON.stringify(body(), null, 2);
  };
  const rows = request.grid ? rowsFromGrid(request.grid) : [{ key: "", mode: /** @type {const} */ ("list"), list: "", start: "", stop: "", step: "" }];
  const grid = gridEditor({ rows, choices: { "filter_criteria.weighting": screening.weightings || [] }, onChange: () => update() });
  const strategy = strategySection(strategies, screening, base, update);
  const universeCard = universeSection(universe, base, update);
  const period = periodSection(universe, base, request.name ?? "");
  const settings = sweepSettings(limits.objectives, request);
  const body = () => ({ ...period.nameField(), base: { ...strategy.body(), ...universeCard.body(), ...period.body() },
    grid: gridBody(grid.values()), ...settings.body() });
  const summary = h("div", { class: "alert alert-error", role: "alert", id: "form-errors", tabindex: "-1" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "submit-sweep" }, "Run sweep");
  const form = h("form", { novalidate: true, id: "sweep-form", "aria-labelledby": "sweep-title" },
    summary, grid.element, strategy.element, universeCard.element, period.element, settings.element,
    h("details", { class: "card" }, h("summary", {}, "Show the request as JSON (POST /v1/sweeps)"), preview),
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("change", (e) => {
    const name = /** @type {HTMLInputElement} */ (e.target).name;
    if (name === "strategy-mode" || name === "universe-mode") { strategy.sync(); universeCard.sync(); }
    update();
  });
  form.addEventListener("input", update);
  const localErrors = () => [...grid.localErrors(), ...period.localErrors()];
  form.addEventListener("submit", onSubmit({ form, summary, submit, body, localErrors }));
  strategy.sync();
  universeCard.sync();
  grid.setLimits(limits);
  update();
  return form;
}

/** An earlier sweep's request, or {} (none, deleted, not ours). @param {string | undefined} id */
async function previousRequest(id) {
  if (!id) return {};
  try {
    return (await sweepApi.status(id)).data.request || {};
  } catch {
    return {};
  }
}

/** @param {HTMLElement} container @param {import("../router.js").Route} route */
export async function renderSweeps(container, route) {
  container.append(h("div", { class: "loading" }, "Loading strategies and limits…"));
  const [strategiesRes, symbolsRes, screeningRes, limitsRes, request] = await Promise.all([
    cached("strategies", api.strategies), cached("symbols", api.symbols), cached("screening", api.screening),
    sweepApi.limits(), previousRequest(route.query.from)]);
  const limits = limitsRes.data;
  const form = sweepForm({ strategies: strategiesRes.data || [], universe: symbolsRes.data, screening: screeningRes.data, limits, request });
  const list = sweepList();
  container.replaceChildren(
    pageHead({ title: "Parameter sweep", titleId: "sweep-title",
      sub: `Run one backtest per combination of the values you choose, then check whether the best is skill or luck. Your ${limits.tier} tier allows ${limits.max_combinations.toLocaleString("en-US")} combinations per sweep.`,
      actions: h("a", { class: "btn", href: "#/sweeps", onclick: (/** @type {Event} */ e) => { e.preventDefault(); list.element.scrollIntoView(); } }, "Your sweeps") }),
    form, list.element);
  list.load();
  if (route.query.list) list.element.scrollIntoView();
  return list.destroy;
}
