// The login session: a bearer token in sessionStorage (per tab, gone when it closes).

const KEY = "backtest.session";
const FLASH_KEY = "backtest.flash";

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

export function saveSession({ token, expiresIn, username }) {
  const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : null;
  sessionStorage.setItem(KEY, JSON.stringify({ token, expiresAt, username }));
}

export function updateSession(patch) {
  const session = getSession();
  if (session) sessionStorage.setItem(KEY, JSON.stringify({ ...session, ...patch }));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

/** A one-shot message shown by the next screen (e.g. "session expired"). */
export function setFlash(message, kind = "info") {
  sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message, kind }));
}

export function takeFlash() {
  const raw = sessionStorage.getItem(FLASH_KEY);
  sessionStorage.removeItem(FLASH_KEY);
  try {
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}
