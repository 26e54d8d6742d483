// The API client: every call sends the pasted token as `Authorization: Bearer <id>:<secret>`;
// any 401 sends the user back to the login screen with the server's message.

const TOKEN_KEY = 'mpcluster.token';
const BASE = '/api2/json';

/** An API failure: HTTP status, the server's message, per-field errors and any data. */
export class ApiError extends Error {
  constructor(status, message, errors, data) {
    super(message);
    this.status = status;
    this.errors = errors && typeof errors === 'object' ? errors : {};
    this.data = data === undefined ? null : data;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The token's id part (never the secret), for display. */
export function tokenId() {
  const t = getToken();
  const i = t.indexOf(':');
  return i > 0 ? t.slice(0, i) : '';
}

let onUnauthorized = () => {};
/** Called with the server's message on any 401. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * Call the API: `api('GET', '/cluster/multipath/status')`. Resolves to the body's `data`;
 * rejects with an ApiError (status 0 when the server could not be reached).
 */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    throw new ApiError(0, `the server cannot be reached (${e && e.message ? e.message : e})`);
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  const message = json && typeof json.message === 'string' ? json.message : '';
  if (res.status === 401) {
    const m = message || 'authentication required';
    onUnauthorized(m);
    throw new ApiError(401, m);
  }
  if (!res.ok) {
    throw new ApiError(res.status, message || `HTTP ${res.status} ${res.statusText}`,
      json && json.errors, json && json.data);
  }
  if (!json || typeof json !== 'object') {
    throw new ApiError(res.status, 'the server sent an unreadable answer');
  }
  return json.data;
}

/** `encodeURIComponent` for a path segment. */
export const seg = (s) => encodeURIComponent(s);
