// @ts-check
// The login session: a bearer token in sessionStorage (per tab, gone when it closes).

const KEY = "backtest.session";
const FLASH_KEY = "backtest.flash";

/** @typedef {{token: string, expiresAt: number | null, username: string}} Session */

/** @returns {Session | null} */
export function getSession() {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const session = JSON.parse(raw);
    if (session.expiresAt && Date.now() >= session.expiresAt) {
      clearSession();
      setFlash("Your session has expired. Please log in again.", "warn");
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

export function getToken() {
  return getSession()?.token ?? null;
}

/** @param {{token: string, expiresIn?: number, username: string}} login */
export function saveSession({ token, expiresIn, username }) {
  const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : null;
  sessionStorage.setItem(KEY, JSON.stringify({ token, expiresAt, username }));
}

/** @param {Partial<Session>} patch */
export function updateSession(patch) {
  const session = getSession();
  if (session) sessionStorage.setItem(KEY, JSON.stringify({ ...session, ...patch }));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

/** A one-shot message shown by the next screen (e.g. "session expired"). */
/** @param {string} message @param {"info" | "warn" | "error"} [kind] */
export function setFlash(message, kind = "info") {
  sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message, kind }));
}

/** @returns {{message: string, kind: string} | null} */
export function takeFlash() {
  const raw = sessionStorage.getItem(FLASH_KEY);
  sessionStorage.removeItem(FLASH_KEY);
  try {
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}
