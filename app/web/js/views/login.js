// @ts-check
// Log in and create an account (#/login, #/register).

import { api } from "../api.js";
import { clearFieldErrors, showFieldErrors } from "../components/form-errors.js";
import { field, h } from "../dom.js";
import { saveSession, takeFlash } from "../session.js";

/** @typedef {"login" | "register"} AuthMode */

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,64}$/;

/** @param {import("../router.js").Route} route */
function nextRoute(route) {
  const next = route.query.next;
  return next && !next.startsWith("login") && !next.startsWith("register") ? next : "new";
}

/**
 * Pure: the field errors found before asking the server.
 * @param {AuthMode} mode @param {string} user trimmed @param {string} password
 * @returns {import("../api-errors.js").FieldError[]}
 */
export function authErrors(mode, user, password) {
  const isLogin = mode === "login";
  const local = [];
  if (!isLogin && !USERNAME_RE.test(user)) local.push({ field: "username", message: "Use 3–64 letters, digits, _ . or -." });
  if (!user && isLogin) local.push({ field: "username", message: "Enter your username." });
  if (!isLogin && password.length < 8) local.push({ field: "password", message: "Use at least 8 characters." });
  if (isLogin && !password) local.push({ field: "password", message: "Enter your password." });
  return local;
}

/**
 * A refused login or registration, shown next to its field or in the alert.
 * @param {HTMLFormElement} form @param {HTMLElement} alert @param {any} err
 */
function showAuthFailure(form, alert, err) {
  if (err.status === 401) {
    alert.textContent = "Wrong username or password.";
  } else if (err.status === 409) {
    showFieldErrors(form, [{ field: "username", message: "That username is taken." }]);
  } else {
    const unmatched = showFieldErrors(form, err.fieldErrors);
    alert.textContent = unmatched.length
      ? unmatched.map((e) => e.message).join(" ")
      : err.fieldErrors.length ? "" : err.message;
  }
}

/** The username / password form; signs in and goes on to `next`. @param {AuthMode} mode @param {() => string} next */
function authForm(mode, next) {
  const isLogin = mode === "login";
  const username = h("input", { type: "text", name: "username", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: isLogin ? "current-password" : "new-password", required: true });
  const alert = h("div", { class: "alert alert-error", role: "alert", id: "auth-error" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", style: { width: "100%" } }, isLogin ? "Log in" : "Create account");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "auth-title" },
    field({ label: "Username", control: username, name: "username", hint: isLogin ? null : "3–64 characters: letters, digits, _ . -" }),
    field({ label: "Password", control: password, name: "password", hint: isLogin ? null : "At least 8 characters." }),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.textContent = "";
    clearFieldErrors(form);
    const user = username.value.trim();
    const local = authErrors(mode, user, password.value);
    if (local.length) return void showFieldErrors(form, local);
    submit.disabled = true;
    try {
      if (!isLogin) await api.register(user, password.value);
      const { data } = await api.login(user, password.value);
      saveSession({ token: data.access_token, expiresIn: data.expires_in, username: user });
      window.location.hash = `#/${next()}`;
    } catch (err) {
      showAuthFailure(form, alert, err);
      submit.disabled = false;
    }
  });
  return { alert, form, focus: () => username.focus() };
}

/** @param {HTMLElement} container @param {import("../router.js").Route} route @param {AuthMode} mode */
export function renderAuth(container, route, mode) {
  const isLogin = mode === "login";
  const flash = takeFlash();
  const auth = authForm(mode, () => nextRoute(route));
  const query = route.query.next ? `?next=${encodeURIComponent(route.query.next)}` : "";
  container.append(
    h("div", { class: "auth-wrap" },
      h("div", { class: "auth-intro" },
        h("h1", { id: "auth-title" }, isLogin ? "Log in to Backtest" : "Create your account"),
        h("p", {}, "Backtest portfolio strategies on 20 years of daily S&P 500 prices.")),
      flash ? h("div", { class: `alert alert-${flash.kind}`, role: "status", id: "flash" }, flash.message) : null,
      h("div", { class: "card" },
        h("nav", { class: "tabs", "aria-label": "Account" },
          h("a", { href: `#/login${query}`, "aria-current": isLogin ? "page" : null }, "Log in"),
          h("a", { href: `#/register${query}`, "aria-current": isLogin ? null : "page" }, "Create account")),
        auth.alert,
        auth.form)),
  );
  auth.focus();
}
