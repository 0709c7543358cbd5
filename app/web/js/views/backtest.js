// One backtest (#/backtest/<id>): live progress while it runs, results once completed.

import { api, progressSocketUrl } from "../api.js";
import { confirmDialog, h, replace } from "../dom.js";
import { date, dateTime, duration, int, pct } from "../format.js";
import { navigate } from "../router.js";
import { renderResults } from "./results.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const RECONNECT_MAX_MS = 10000;
const POLL_MS = 4000;

export function statusBadge(status) {
  return h("span", { class: `badge badge-${status}`, dataset: { status } }, status);
}

export async function renderBacktest(container, route) {
  const id = route.params[0];
  if (!id) {
    navigate("history", undefined, { replace: true });
    return undefined;
  }
  let disposed = false;
  let socket = null;
  let reconnectTimer = null;
  let pollTimer = null;
  let attempts = 0;
  let resultsCleanup = null;
  let finished = false;

  container.append(h("div", { class: "loading" }, "Loading backtest…"));
  let status;
  try {
    status = (await api.status(id)).data;
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      replace(container, notFound());
      return undefined;
    }
    throw err;
  }

  // ---- progress panel ----------------------------------------------------------------
  const bar = h("div", { class: "progress-fill" });
  const progress = h("div", {
    class: "progress",
    role: "progressbar",
    "aria-label": "Backtest progress",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": "0",
    id: "progress",
  }, bar);
  const stat = (label, key) => {
    const value = h("div", { class: "stat-value", dataset: { stat: key } }, "—");
    return [h("div", {}, h("div", { class: "stat-label" }, label), value), value];
  };
  const [pctBox, pctValue] = stat("Progress", "percent");
  const [dateBox, dateValue] = stat("Simulated date", "current_date");
  const [etaBox, etaValue] = stat("Time left", "eta");
  const [tradesBox, tradesValue] = stat("Fills so far", "trades");
  const connState = h("span", { class: "conn-state", id: "conn-state", "aria-live": "polite" }, "Connecting…");
  const message = h("p", { class: "muted small", id: "progress-message" });
  const badgeSlot = h("span", {}, statusBadge(status.status));
  const cancelBtn = h("button", { type: "button", class: "btn btn-danger", id: "cancel-backtest" }, "Cancel backtest");
  const progressCard = h("section", { class: "card", "aria-labelledby": "progress-title" },
    h("div", { class: "card-head" },
      h("h2", { id: "progress-title" }, "Running the simulation ", badgeSlot), connState),
    progress,
    h("div", { class: "progress-stats" }, pctBox, dateBox, etaBox, tradesBox),
    message,
    h("div", { class: "form-actions" }, cancelBtn,
      h("a", { class: "btn", href: "#/history" }, "Back to history")));

  const head = h("div", { class: "page-head" },
    h("div", {},
      h("h1", {}, status.name || "Backtest"),
      h("div", { class: "sub" }, `Submitted ${dateTime(status.created_at)} · ${id}`)));

  function update(msg) {
    const value = Math.max(0, Math.min(100, Number(msg.progress) || 0));
    bar.style.width = `${value}%`;
    progress.setAttribute("aria-valuenow", String(Math.round(value)));
    progress.setAttribute("aria-valuetext", `${Math.round(value)} percent`);
    pctValue.textContent = pct(value / 100, { digits: 0 });
    dateValue.textContent = date(msg.current_date);
    etaValue.textContent = msg.status === "pending" ? "Queued" : duration(msg.eta_seconds);
    tradesValue.textContent = int(msg.fills_executed ?? msg.trades_executed ?? 0);
    if (msg.message) message.textContent = msg.message;
    if (msg.status) replace(badgeSlot, statusBadge(msg.status));
  }

  function setConn(state, text) {
    connState.dataset.state = state;
    connState.textContent = text;
  }

  function stopLive() {
    clearTimeout(reconnectTimer);
    clearInterval(pollTimer);
    reconnectTimer = null;
    pollTimer = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.onerror = null;
      if (socket.readyState <= 1) socket.close(1000);
      socket = null;
    }
  }

  async function finish(finalStatus) {
    if (finished || disposed) return;
    finished = true;
    stopLive();
    update({ ...finalStatus, progress: finalStatus.status === "completed" ? 100 : finalStatus.progress });
    let full = finalStatus;
    try {
      full = (await api.status(id)).data;
    } catch (err) {
      if (err.status === 401) return;
      if (err.status === 404) {
        replace(container, notFound());
        return;
      }
    }
    if (disposed) return;
    if (full.status === "completed") {
      setConn("done", "Completed");
      // Let the bar be seen at 100% before the results replace it.
      await new Promise((r) => setTimeout(r, 500));
      if (disposed) return;
      showResults(full);
    } else {
      showTerminal(full);
    }
  }

  function showResults(full) {
    container.replaceChildren();
    resultsCleanup = renderResults(container, full);
  }

  function showTerminal(full) {
    const failed = full.status === "failed";
    replace(container, head,
      h("section", { class: "card", id: "terminal-state" },
        h("div", { class: "card-head" }, h("h2", {}, failed ? "The backtest failed " : "The backtest was cancelled ", statusBadge(full.status))),
        h("div", { class: `alert ${failed ? "alert-error" : "alert-warn"}`, role: "alert" },
          failed ? full.error || "The engine reported an error." : "It was stopped before it finished; no results were kept."),
        h("p", { class: "muted small" }, `Progress reached ${pct((full.progress || 0) / 100, { digits: 0 })}${full.current_date ? ` (simulated date ${full.current_date})` : ""}.`),
        h("div", { class: "form-actions" },
          h("a", { class: "btn btn-primary", href: `#/new?from=${encodeURIComponent(id)}` }, "Start again from these settings"),
          deleteButton(),
          h("a", { class: "btn", href: "#/history" }, "Back to history"))));
  }

  function deleteButton() {
    return h("button", {
      type: "button",
      class: "btn btn-danger",
      onclick: async () => {
        const ok = await confirmDialog({ title: "Delete this backtest?", message: "Its results and trades are removed for good.", confirmLabel: "Delete", danger: true });
        if (!ok) return;
        try {
          await api.remove(id);
          navigate("history");
        } catch (err) {
          if (err.status !== 401) window.alert?.(err.message);
        }
      },
    }, "Delete");
  }

  async function poll() {
    try {
      const current = (await api.status(id)).data;
      if (disposed || finished) return;
      update(current);
      if (TERMINAL.has(current.status)) finish(current);
    } catch (err) {
      if (err.status === 404) finish({ status: "cancelled", progress: 0 });
    }
  }

  function connect() {
    if (disposed || finished) return;
    setConn(attempts ? "reconnecting" : "connecting", attempts ? "Reconnecting…" : "Connecting…");
    const ws = new WebSocket(progressSocketUrl(id));
    socket = ws;
    ws.onopen = () => {
      attempts = 0;
      setConn("live", "Live");
      clearInterval(pollTimer);
      pollTimer = null;
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      update(msg);
      if (TERMINAL.has(msg.status)) finish(msg);
    };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      socket = null;
      if (disposed || finished) return;
      if (event.code === 4001) {
        poll(); // the API answers 401 too, which sends the user to the login page
        return;
      }
      if (event.code === 4004) {
        finish({ status: "cancelled", progress: 0 });
        return;
      }
      // Dropped (or closed after a terminal state we missed): check, then reconnect.
      attempts += 1;
      setConn("reconnecting", "Connection lost. Reconnecting…");
      poll();
      if (!pollTimer) pollTimer = setInterval(poll, POLL_MS);
      const delay = Math.min(RECONNECT_MAX_MS, 500 * 2 ** Math.min(attempts - 1, 5));
      reconnectTimer = setTimeout(connect, delay);
    };
  }

  cancelBtn.addEventListener("click", async () => {
    cancelBtn.disabled = true;
    cancelBtn.textContent = "Cancelling…";
    try {
      const { data } = await api.remove(id);
      message.textContent = data?.message || "Cancelling…";
      if (TERMINAL.has(data?.status)) finish({ status: data.status, progress: Number(progress.getAttribute("aria-valuenow")) });
    } catch (err) {
      if (err.status === 401) return;
      if (err.status === 409) {
        poll();
        return;
      }
      message.textContent = err.message;
      cancelBtn.disabled = false;
      cancelBtn.textContent = "Cancel backtest";
    }
  });

  if (status.status === "completed") {
    showResults(status);
  } else if (TERMINAL.has(status.status)) {
    showTerminal(status);
  } else {
    replace(container, head, progressCard);
    update(status);
    connect();
  }

  return () => {
    disposed = true;
    stopLive();
    if (resultsCleanup) resultsCleanup();
  };
}

function notFound() {
  return h("section", { class: "card" },
    h("h1", {}, "Backtest not found"),
    h("p", { class: "muted", style: { marginTop: "8px" } }, "It may have been deleted, or it belongs to another account."),
    h("div", { class: "form-actions" }, h("a", { class: "btn btn-primary", href: "#/history" }, "Go to history")));
}
