// Requests to the station. Every failure becomes an Error with the station's
// own message; a station that cannot be reached shows a banner until it
// answers again (checked every two seconds), then the page carries on.

import { $ } from './ui.js';

const listeners = { login: [], back: [] };
let offline = false;

/// `login`: the session ended (show the token form); `back`: the station
/// answers again after being unreachable.
export const on = (event, f) => listeners[event].push(f);

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(path, { credentials: 'same-origin', ...options });
  } catch (e) {
    if (e.name === 'AbortError') throw e; // the page cancelled it (a seek, a new track)
    unreachable();
    throw new ApiError('the station cannot be reached', 0, 'unreachable');
  }
  if (res.status === 401) {
    listeners.login.forEach((f) => f());
    throw new ApiError('please log in again', 401, 'unauthorized');
  }
  if (!res.ok) {
    let detail = res.statusText || `the station answered ${res.status}`;
    let code;
    try { ({ detail, error: code } = await res.json()); } catch { /* not JSON */ }
    throw new ApiError(detail || `the station answered ${res.status}`, res.status, code);
  }
  return res;
}

export const json = async (path, options) => (await api(path, options)).json();

export const post = (path, body) => api(path, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body ?? {}),
});

function unreachable() {
  if (offline) return;
  offline = true;
  const banner = $('#banner');
  banner.textContent = 'The station cannot be reached. Trying again every 2 s…';
  banner.hidden = false;
  const poll = async () => {
    try {
      const res = await fetch('/api/health', { cache: 'no-store' });
      if (res.ok) {
        offline = false;
        banner.hidden = true;
        listeners.back.forEach((f) => f());
        return;
      }
    } catch { /* still down */ }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

export const isOffline = () => offline;
