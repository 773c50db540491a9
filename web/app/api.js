// The public /v1 API: requests, problem documents as errors, and the session's tokens (the
// access token only in memory, refreshed ahead of its expiry).

import { KEYS, store } from './storage.js';
import { endSession } from '../app.js';

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = (problem && problem.code) || (status === 0 ? 'network' : 'http_error');
    this.errors = problem && typeof problem.errors === 'object' ? problem.errors : null;
    this.detail = problem && problem.detail;
    this.retryAfter = Number(retryAfter) || 0;
  }
}
/** The session ended while doing something; the sign-in view is already showing. */
export class SessionEnded extends Error {}
/** The person closed a dialog. */
export class Cancelled extends Error {}

export const session = {
  access: null,
  accessExpiresAt: 0,
  margin: 30_000,
  timer: 0,
  refreshing: null,
  user: null,
};

export async function call(method, path, { body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get('Retry-After'));
  return data;
}

export function applyTokens(tokens) {
  session.access = tokens.accessToken;
  const lifetime = Math.max(10, Number(tokens.expiresIn) || 900);
  session.accessExpiresAt = Date.now() + lifetime * 1000;
  session.margin = Math.min(30, lifetime / 4) * 1000;
  session.user = tokens.user || session.user;
  store.set('sessionStorage', KEYS.refresh, tokens.refreshToken);
  // Refresh a minute (or a fifth of the lifetime, if shorter) before the token expires.
  clearTimeout(session.timer);
  const ahead = Math.min(60, lifetime / 5);
  session.timer = setTimeout(() => {
    refreshNow().catch(() => {});
  }, (lifetime - ahead) * 1000);
}

/** Trades the refresh token for a new pair; concurrent callers share one request. */
export function refreshNow() {
  if (!session.refreshing) {
    session.refreshing = (async () => {
      const refreshToken = store.get('sessionStorage', KEYS.refresh);
      if (!refreshToken) {
        endSession('Your session has ended. Please sign in again.');
        throw new SessionEnded();
      }
      try {
        applyTokens(await call('POST', '/v1/auth/refresh', { body: { refreshToken } }));
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 400)) {
          endSession('Your session has ended. Please sign in again.');
          throw new SessionEnded();
        }
        throw err;
      }
    })().finally(() => {
      session.refreshing = null;
    });
  }
  return session.refreshing;
}

export async function accessToken() {
  if (!session.access || Date.now() > session.accessExpiresAt - session.margin) await refreshNow();
  return session.access;
}

/** A call with the access token; an expired or revoked token is refreshed once. */
export async function authed(method, path, body) {
  try {
    return await call(method, path, { body, token: await accessToken() });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && err.code === 'unauthorized') {
      session.access = null;
      return call(method, path, { body, token: await accessToken() });
    }
    throw err;
  }
}

document.addEventListener('visibilitychange', () => {
  // Timers sleep in background tabs: catch up as soon as the tab is seen again.
  if (document.visibilityState === 'visible' && session.access && Date.now() > session.accessExpiresAt - 2 * session.margin) {
    refreshNow().catch(() => {});
  }
});
