// @ts-check
// Hash routing: "#/backtest/<id>?x=1" → {name: "backtest", params: ["<id>"], query}.
// Hash URLs reload and share without any server-side fallback route.

/** @typedef {{name: string, params: string[], query: Record<string, string>, path: string}} Route */

/** @param {string} [hash] @returns {Route} */
export function parseHash(hash = window.location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [pathPart, queryPart = ""] = raw.split("?");
  const segments = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  const query = Object.fromEntries(new URLSearchParams(queryPart));
  return { name: segments[0] || "", params: segments.slice(1), query, path: `#/${raw}` };
}

/** @param {string} path @param {Record<string, unknown>} [query] */
export function href(path, query) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  }
  const s = qs.toString();
  return `#/${path}${s ? `?${s.replace(/%2C/g, ",")}` : ""}`;
}

/** @param {string} path @param {Record<string, unknown>} [query] @param {{replace?: boolean}} [options] */
export function navigate(path, query, { replace = false } = {}) {
  const target = href(path, query);
  if (replace) {
    window.history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else if (window.location.hash === target) {
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = target;
  }
}

/** Change the query of the current route without re-rendering the view. */
/** @param {string} path @param {Record<string, unknown>} query */
export function setQuery(path, query) {
  window.history.replaceState(null, "", href(path, query));
}
