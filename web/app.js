// Tessera account security page.
//
// A plain script with no dependencies that uses only the public /v1 API. The page's
// Content-Security-Policy allows no inline script and requires Trusted Types, so this file
// never turns strings into markup: every element is built with createElement/textContent.
//
// Where tokens live (see the README, "Account security page"):
// - the access token only in a variable of this closure: no other script, extension
//   storage or later page can read it, and it is gone when the tab is;
// - the refresh token in sessionStorage: it survives a reload of this tab, is not shared
//   with other tabs and is deleted when the tab closes. The API authenticates with bearer
//   tokens, not cookies, so an HttpOnly cookie is not an option for a page that uses only
//   the public API; the strict CSP is what keeps other scripts off this origin;
// - a trusted device's token in localStorage with this browser's fingerprint (a random id
//   made once per browser), because its whole point is to outlive the session.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  const KEYS = {
    refresh: 'tessera.refreshToken',
    devices: 'tessera.trustedDevices',
    fingerprint: 'tessera.deviceFingerprint',
  };

  // ---------------------------------------------------------------- storage

  function storage(area) {
    try {
      return window[area];
    } catch {
      return null;
    }
  }
  const store = {
    get(area, key) {
      try {
        return storage(area)?.getItem(key) ?? null;
      } catch {
        return null;
      }
    },
    set(area, key, value) {
      try {
        storage(area)?.setItem(key, value);
      } catch {
        /* storage full or disabled: the page still works for this tab */
      }
    },
    remove(area, key) {
      try {
        storage(area)?.removeItem(key);
      } catch {
        /* ignore */
      }
    },
  };

  function randomHex(bytes) {
    const buf = new Uint8Array(bytes);
    crypto.getRandomValues(buf);
    return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** A random id made once per browser, sent with a trusted device's token. */
  function fingerprint() {
    let fp = store.get('localStorage', KEYS.fingerprint);
    if (!fp || !/^[0-9a-f]{32}$/.test(fp)) {
      fp = randomHex(16);
      store.set('localStorage', KEYS.fingerprint, fp);
    }
    return fp;
  }

  function trustedDevices() {
    try {
      const list = JSON.parse(store.get('localStorage', KEYS.devices) || '[]');
      return Array.isArray(list) ? list.filter((d) => d && typeof d.token === 'string') : [];
    } catch {
      return [];
    }
  }
  function saveTrustedDevices(list) {
    if (list.length) store.set('localStorage', KEYS.devices, JSON.stringify(list));
    else store.remove('localStorage', KEYS.devices);
  }
  function rememberDevice(user, deviceId, token) {
    const list = trustedDevices().filter((d) => d.userId !== user.id);
    list.push({ userId: user.id, email: user.email, userName: user.userName, deviceId, token });
    saveTrustedDevices(list);
  }
  function forgetDevice(userId) {
    saveTrustedDevices(trustedDevices().filter((d) => d.userId !== userId));
  }
  function deviceForIdentifier(identifier) {
    const id = identifier.trim().toLowerCase();
    return trustedDevices().find((d) => (d.email || '').toLowerCase() === id || (d.userName || '').toLowerCase() === id);
  }
  function deviceForUser(userId) {
    return trustedDevices().find((d) => d.userId === userId);
  }

  // ---------------------------------------------------------------- about this browser

  function describeBrowser() {
    const ua = navigator.userAgent;
    let browser = 'Browser';
    const browsers = [
      [/Edg\/(\d+)/, 'Edge'],
      [/OPR\/(\d+)/, 'Opera'],
      [/Firefox\/(\d+)/, 'Firefox'],
      [/(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
      [/Version\/(\d+)[\d.]* .*Safari/, 'Safari'],
    ];
    let version = '';
    for (const [re, name] of browsers) {
      const m = ua.match(re);
      if (m) {
        browser = name;
        version = m[1];
        break;
      }
    }
    const systems = [
      [/Android/, 'Android'],
      [/iPhone|iPad|iPod/, 'iOS'],
      [/CrOS/, 'ChromeOS'],
      [/Windows/, 'Windows'],
      [/Mac OS X|Macintosh/, 'macOS'],
      [/Linux/, 'Linux'],
    ];
    const os = (systems.find(([re]) => re.test(ua)) || [null, ''])[1];
    return { browser, version, os };
  }
  function deviceType() {
    const ua = navigator.userAgent;
    if (/iPad|Tablet/i.test(ua)) return 'tablet';
    if (/Mobi|Android|iPhone/i.test(ua)) return 'mobile';
    return 'desktop';
  }
  function defaultDeviceName() {
    const { browser, os } = describeBrowser();
    return os ? `${browser} on ${os}` : browser;
  }
  function deviceInput(name) {
    const { browser, version, os } = describeBrowser();
    return {
      deviceName: (name || '').trim() || defaultDeviceName(),
      deviceType: deviceType(),
      deviceFingerprint: fingerprint(),
      browserInfo: [browser + (version ? ` ${version}` : ''), os].filter(Boolean).join(' on '),
    };
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
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
  class SessionEnded extends Error {}
  /** The person closed a dialog. */
  class Cancelled extends Error {}

  const session = {
    access: null,
    accessExpiresAt: 0,
    margin: 30_000,
    timer: 0,
    refreshing: null,
    user: null,
  };

  async function call(method, path, { body, token } = {}) {
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

  function applyTokens(tokens) {
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
  function refreshNow() {
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

  async function accessToken() {
    if (!session.access || Date.now() > session.accessExpiresAt - session.margin) await refreshNow();
    return session.access;
  }

  /** A call with the access token; an expired or revoked token is refreshed once. */
  async function authed(method, path, body) {
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

  // ---------------------------------------------------------------- messages

  function duration(seconds) {
    if (seconds < 90) return `${Math.max(1, Math.round(seconds))} seconds`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} minutes`;
    return `${Math.round(seconds / 3600)} hours`;
  }

  const MESSAGES = {
    network: "Can't reach the server. Check your connection and try again.",
    invalid_credentials: 'The email, username or password is not correct.',
    email_taken: 'An account with this email already exists.',
    user_name_taken: 'This username is taken.',
    registration_closed: 'This server is not accepting new accounts.',
    invalid_code: "That code didn't work. Check your authenticator app or backup code and try again.",
    invalid_two_factor_token: 'This sign-in attempt expired or had too many wrong codes. Please sign in again.',
    second_factor_locked: (e) =>
      `Too many wrong codes. For your security, codes are locked${e.retryAfter ? ` for ${duration(e.retryAfter)}` : ' for a while'}.`,
    totp_suspended: 'Authenticator codes are suspended after too many failed attempts. Use a backup code, or ask an administrator.',
    rate_limited: (e) => `Too many requests from this network. Try again${e.retryAfter ? ` in ${duration(e.retryAfter)}` : ' shortly'}.`,
    reauthentication_required: 'Confirm with a code from your authenticator app or a backup code.',
    two_factor_already_enabled: 'Two-factor authentication is already on.',
    two_factor_not_enabled: 'Two-factor authentication is not on for this account.',
    no_pending_setup: 'This setup expired before it was confirmed. Start again.',
    not_found: 'That item no longer exists. The list has been updated.',
    payload_too_large: 'That is too long.',
    service_unavailable: 'The server is temporarily unavailable. Try again in a moment.',
    request_timeout: 'The server took too long to answer. Try again.',
    internal_error: 'Something went wrong on the server. Try again.',
    validation_failed: 'Check the highlighted fields.',
    unauthorized: 'Your session has ended. Please sign in again.',
  };

  function messageFor(err) {
    if (!(err instanceof ApiError)) return 'Something went wrong. Try again.';
    const m = MESSAGES[err.code];
    if (typeof m === 'function') return m(err);
    return m || err.detail || err.message;
  }

  // ---------------------------------------------------------------- forms and errors

  function labelOf(input) {
    const label = input && input.id && document.querySelector(`label[for="${input.id}"]`);
    if (!label) return '';
    return (label.firstChild && label.firstChild.textContent ? label.firstChild.textContent : label.textContent).trim();
  }

  function sentence(label, message) {
    let text = String(message || '').trim();
    if (label && /^(must|may|is|are)\b/.test(text)) text = `${label} ${text}`;
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(text) ? text : `${text}.`;
  }

  function fieldError(input, message) {
    const field = input.closest('.field') || input.parentElement;
    const id = `${input.id}-error`;
    let p = document.getElementById(id);
    if (!p) {
      p = document.createElement('p');
      p.className = 'field-error';
      p.id = id;
      field.append(p);
    }
    p.textContent = message;
    input.setAttribute('aria-invalid', 'true');
    const described = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    if (!described.includes(id)) input.setAttribute('aria-describedby', [id, ...described].join(' '));
  }

  function formError(container, message) {
    const box = container.classList.contains('form-error') ? container : container.querySelector('.form-error');
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  function clearErrors(container) {
    container.querySelectorAll('.field-error').forEach((p) => {
      const input = container.querySelector(`[aria-describedby~="${p.id}"]`);
      if (input) {
        const rest = input.getAttribute('aria-describedby').split(/\s+/).filter((x) => x && x !== p.id);
        if (rest.length) input.setAttribute('aria-describedby', rest.join(' '));
        else input.removeAttribute('aria-describedby');
      }
      p.remove();
    });
    container.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
    if (container.classList.contains('form-error')) formError(container, '');
    else container.querySelectorAll('.form-error').forEach((b) => formError(b, ''));
  }

  /**
   * Shows an API error next to what caused it: field errors under their fields, codes
   * listed in `fieldFor` under that field, everything else at the top of the form.
   */
  function showError(container, err, fieldFor = {}) {
    if (err instanceof SessionEnded || err instanceof Cancelled) return;
    const byName = (name) => container.querySelector(`[name="${name}"]`);
    let first = null;
    if (err instanceof ApiError && err.errors) {
      const loose = [];
      for (const [name, messages] of Object.entries(err.errors)) {
        const list = Array.isArray(messages) ? messages : [String(messages)];
        const input = byName(name);
        if (input && !input.hidden) {
          fieldError(input, list.map((m) => sentence(labelOf(input), m)).join(' '));
          first = first || input;
        } else {
          loose.push(list.map((m) => sentence(name, m)).join(' '));
        }
      }
      if (loose.length) formError(container, loose.join(' '));
    } else {
      // `fieldFor[code]` is a field name, or [field name, message for this form].
      const [name, message] = [].concat((err instanceof ApiError && fieldFor[err.code]) || []);
      const target = name ? byName(name) : null;
      if (target) {
        fieldError(target, message || messageFor(err));
        first = target;
      } else {
        formError(container, messageFor(err));
      }
    }
    if (first) first.focus();
  }

  // A field's error goes away as soon as the person edits the field.
  document.addEventListener('input', (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.getAttribute('aria-invalid') !== 'true') return;
    const error = document.getElementById(`${input.id}-error`);
    if (error) error.remove();
    input.removeAttribute('aria-invalid');
    const rest = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter((x) => x && x !== `${input.id}-error`);
    if (rest.length) input.setAttribute('aria-describedby', rest.join(' '));
    else input.removeAttribute('aria-describedby');
  });

  /** Marks empty required fields; returns whether all are filled. */
  function checkRequired(form) {
    let first = null;
    form.querySelectorAll('input[required]').forEach((input) => {
      if (!input.closest('[hidden]') && !input.value.trim()) {
        fieldError(input, `${labelOf(input)} is required.`);
        first = first || input;
      }
    });
    if (first) first.focus();
    return !first;
  }

  function setBusy(button, busy) {
    if (!button) return;
    button.disabled = busy;
    if (busy) button.setAttribute('aria-busy', 'true');
    else button.removeAttribute('aria-busy');
  }

  /** Runs `handler` on submit with errors cleared before and shown after. */
  function onSubmit(form, handler, fieldFor) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      if (!checkRequired(form)) return;
      const button = form.querySelector('button[type="submit"]');
      setBusy(button, true);
      try {
        await handler(form);
      } catch (err) {
        showError(form, err, fieldFor);
      } finally {
        setBusy(button, false);
      }
    });
  }

  /** Runs `handler` on click, showing a failure in `errorBox`. */
  function onClick(button, handler, errorBox) {
    button.addEventListener('click', async () => {
      if (errorBox) clearErrors(errorBox);
      setBusy(button, true);
      try {
        await handler();
      } catch (err) {
        if (errorBox) showError(errorBox, err);
        else if (!(err instanceof Cancelled || err instanceof SessionEnded)) toast(messageFor(err));
      } finally {
        setBusy(button, false);
      }
    });
  }

  const cleanCode = (value) => value.replace(/\s+/g, '');

  let toastTimer = 0;
  function toast(message) {
    const el = $('toast');
    el.textContent = message;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      el.hidden = true;
    }, 4500);
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      const area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'offscreen';
      document.body.append(area);
      area.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      area.remove();
      return ok;
    }
  }

  // ---------------------------------------------------------------- dialogs

  /**
   * Asks for a fresh second factor and runs `action(code)` with it until it succeeds
   * or the person cancels. Errors (a wrong code, a lockout) are shown in the dialog.
   */
  function askForCode(action, lead) {
    const dialog = $('reauth-dialog');
    const form = $('form-reauth');
    const input = $('reauth-code');
    const submit = form.querySelector('button[type="submit"]');
    clearErrors(form);
    form.reset();
    $('reauth-lead').textContent =
      lead || 'This change needs a fresh second factor. Enter a code from your authenticator app or one of your backup codes.';
    return new Promise((resolve, reject) => {
      const finish = (fn, value) => {
        form.onsubmit = null;
        $('reauth-cancel').onclick = null;
        dialog.oncancel = null;
        if (dialog.open) dialog.close();
        fn(value);
      };
      form.onsubmit = async (event) => {
        event.preventDefault();
        clearErrors(form);
        if (!checkRequired(form)) return;
        setBusy(submit, true);
        try {
          finish(resolve, await action(cleanCode(input.value)));
        } catch (err) {
          if (err instanceof SessionEnded) finish(reject, err);
          else showError(form, err, { invalid_code: 'code', validation_failed: 'code' });
        } finally {
          setBusy(submit, false);
        }
      };
      $('reauth-cancel').onclick = () => finish(reject, new Cancelled());
      dialog.oncancel = (event) => {
        event.preventDefault();
        finish(reject, new Cancelled());
      };
      dialog.showModal();
      input.focus();
    });
  }

  /** Runs a sensitive change; on `reauthentication_required` asks for a code and retries. */
  async function withFreshFactor(action, lead) {
    try {
      return await action(undefined);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'reauthentication_required')) throw err;
    }
    return askForCode(action, lead);
  }

  /** A yes/no question in a dialog; resolves true for yes. */
  function confirmAction({ title, text, ok, danger }) {
    const dialog = $('confirm-dialog');
    const okButton = $('confirm-ok');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    okButton.textContent = ok;
    okButton.className = `btn ${danger ? 'btn-danger' : 'btn-primary'}`;
    return new Promise((resolve) => {
      const finish = (value) => {
        $('form-confirm').onsubmit = null;
        $('confirm-cancel').onclick = null;
        dialog.oncancel = null;
        if (dialog.open) dialog.close();
        resolve(value);
      };
      $('form-confirm').onsubmit = (event) => {
        event.preventDefault();
        finish(true);
      };
      $('confirm-cancel').onclick = () => finish(false);
      dialog.oncancel = (event) => {
        event.preventDefault();
        finish(false);
      };
      dialog.showModal();
      $('confirm-cancel').focus();
    });
  }

  // ---------------------------------------------------------------- dates

  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
  const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
  const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  function relative(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return '';
    const seconds = (when.getTime() - Date.now()) / 1000;
    const abs = Math.abs(seconds);
    if (abs < 45) return seconds <= 0 ? 'just now' : 'in a few seconds';
    if (abs < 3600) return relativeFormat.format(Math.round(seconds / 60), 'minute');
    if (abs < 86400) return relativeFormat.format(Math.round(seconds / 3600), 'hour');
    if (abs < 86400 * 45) return relativeFormat.format(Math.round(seconds / 86400), 'day');
    return dateOnly.format(when);
  }

  function timeElement(iso, text) {
    const t = document.createElement('time');
    t.dateTime = iso;
    t.textContent = text || relative(iso);
    t.title = dateTime.format(new Date(iso));
    return t;
  }

  // ---------------------------------------------------------------- small DOM helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function metaItem(term, value) {
    const wrap = el('div');
    wrap.append(el('dt', null, term));
    const dd = el('dd');
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value || '—';
    if (!(value instanceof Node) && value) dd.title = value;
    wrap.append(dd);
    return wrap;
  }

  const SVG = 'http://www.w3.org/2000/svg'; // the SVG namespace name, not a URL that is fetched
  function icon(kind) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('fill', 'none');
    svg.setAttribute('stroke', 'currentColor');
    svg.setAttribute('stroke-width', '1.8');
    svg.setAttribute('stroke-linecap', 'round');
    svg.setAttribute('stroke-linejoin', 'round');
    const shapes = {
      mobile: [['rect', { x: 7, y: 2.5, width: 10, height: 19, rx: 2 }], ['path', { d: 'M11 18h2' }]],
      tablet: [['rect', { x: 4.5, y: 2.5, width: 15, height: 19, rx: 2 }], ['path', { d: 'M11 18h2' }]],
      desktop: [['rect', { x: 3, y: 4, width: 18, height: 12, rx: 1.5 }], ['path', { d: 'M8 20h8M12 16v4' }]],
    };
    for (const [tag, attrs] of shapes[kind] || shapes.desktop) {
      const shape = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, String(v));
      svg.append(shape);
    }
    return svg;
  }

  // ---------------------------------------------------------------- views

  let pendingLogin = null; // {token, expiresAt}

  function showAuth(mode, notice) {
    $('loading').hidden = true;
    $('view-account').hidden = true;
    $('session-box').hidden = true;
    $('view-auth').hidden = false;
    $('form-login').hidden = mode !== 'login';
    $('form-second').hidden = mode !== 'second';
    $('form-register').hidden = mode !== 'register';
    const titles = {
      login: ['Sign in', 'Manage your password, two-factor authentication and trusted devices.'],
      second: ['Two-factor authentication', 'Your account is protected with a second step.'],
      register: ['Create an account', 'It takes a minute. You can turn on two-factor authentication right after.'],
    };
    $('auth-title').textContent = titles[mode][0];
    $('auth-lead').textContent = titles[mode][1];
    const box = $('auth-notice');
    box.textContent = notice || '';
    box.hidden = !notice;
    document.title = `${titles[mode][0]} · Tessera`;
    const first = {
      login: $('login-identifier').value ? $('login-password') : $('login-identifier'),
      second: $('second-code'),
      register: $('register-email'),
    }[mode];
    first.focus();
  }

  function endSession(notice) {
    clearTimeout(session.timer);
    session.access = null;
    session.accessExpiresAt = 0;
    session.user = null;
    store.remove('sessionStorage', KEYS.refresh);
    resetAccountView();
    showAuth('login', notice);
  }

  async function showAccount() {
    const user = session.user;
    $('loading').hidden = true;
    $('view-auth').hidden = true;
    $('view-account').hidden = false;
    $('session-box').hidden = false;
    $('session-who').textContent = user.email;
    const lead = user.userName && user.userName !== user.email ? `${user.email} · @${user.userName}` : user.email;
    $('account-lead').textContent = `Signed in as ${lead}`;
    document.title = 'Account security · Tessera';
    $('account-title').focus();
    await refreshAll();
  }

  /** Reloads every section; the devices last, as their empty text depends on the 2FA status. */
  async function refreshAll() {
    await Promise.all([loadTwoFactor(), loadEvents(true)]);
    await loadDevices();
  }

  // ---------------------------------------------------------------- sign in, second step, sign up

  onSubmit($('form-login'), async () => {
    const identifier = $('login-identifier').value.trim();
    const body = identifier.includes('@') ? { email: identifier } : { userName: identifier };
    body.password = $('login-password').value;
    const device = deviceForIdentifier(identifier);
    if (device) {
      body.deviceToken = device.token;
      body.deviceFingerprint = fingerprint();
    }
    const result = await call('POST', '/v1/auth/login', { body });
    $('login-password').value = '';
    if (result.requires2FA) {
      pendingLogin = { token: result.twoFactorToken, expiresAt: result.twoFactorTokenExpiry };
      $('form-second').reset();
      setSecondMode('totp');
      $('second-device-field').hidden = true;
      $('second-device-name').value = defaultDeviceName();
      showAuth('second');
      return;
    }
    applyTokens(result);
    await showAccount();
  });

  function setSecondMode(mode) {
    const input = $('second-code');
    const backup = mode === 'backup';
    input.dataset.mode = mode;
    $('second-code-label').textContent = backup ? 'Backup code' : 'Authentication code';
    $('second-code-hint').textContent = backup
      ? 'One of the backup codes you saved when you turned on two-factor authentication (like abcde-12345).'
      : 'The 6-digit code your authenticator app shows for this account.';
    input.inputMode = backup ? 'text' : 'numeric';
    input.autocomplete = backup ? 'off' : 'one-time-code';
    $('second-toggle').textContent = backup ? 'Use a code from your authenticator app' : 'Use a backup code instead';
  }

  $('second-toggle').addEventListener('click', () => {
    clearErrors($('form-second'));
    setSecondMode($('second-code').dataset.mode === 'backup' ? 'totp' : 'backup');
    $('second-code').value = '';
    $('second-code').focus();
  });

  $('second-trust').addEventListener('change', (event) => {
    $('second-device-field').hidden = !event.target.checked;
  });

  $('second-cancel').addEventListener('click', () => {
    pendingLogin = null;
    showAuth('login');
  });

  onSubmit(
    $('form-second'),
    async () => {
      if (!pendingLogin) {
        showAuth('login', MESSAGES.invalid_two_factor_token);
        return;
      }
      const body = { code: cleanCode($('second-code').value) };
      if ($('second-trust').checked) body.trustDevice = deviceInput($('second-device-name').value);
      let result;
      try {
        result = await call('POST', '/v1/auth/2fa/verify', { body, token: pendingLogin.token });
      } catch (err) {
        if (err instanceof ApiError && err.code === 'invalid_two_factor_token') {
          pendingLogin = null;
          showAuth('login', MESSAGES.invalid_two_factor_token);
          return;
        }
        throw err;
      }
      pendingLogin = null;
      applyTokens(result);
      if (result.deviceToken && result.trustedDevice) rememberDevice(result.user, result.trustedDevice.id, result.deviceToken);
      $('form-second').reset();
      await showAccount();
      if (result.deviceToken) toast('This device is now trusted for 30 days.');
    },
    { invalid_code: 'code', second_factor_locked: 'code', totp_suspended: 'code' },
  );

  $('show-register').addEventListener('click', () => showAuth('register'));
  $('show-login').addEventListener('click', () => showAuth('login'));

  onSubmit(
    $('form-register'),
    async () => {
      const email = $('register-email').value.trim();
      const password = $('register-password').value;
      if (password !== $('register-confirm').value) {
        fieldError($('register-confirm'), "The passwords don't match.");
        $('register-confirm').focus();
        return;
      }
      const body = { email, password };
      const userName = $('register-username').value.trim();
      if (userName) body.userName = userName;
      await call('POST', '/v1/auth/register', { body });
      const result = await call('POST', '/v1/auth/login', { body: { email, password } });
      $('form-register').reset();
      applyTokens(result);
      await showAccount();
      toast('Your account is ready.');
    },
    { email_taken: 'email', user_name_taken: 'userName' },
  );

  $('sign-out').addEventListener('click', async () => {
    const button = $('sign-out');
    setBusy(button, true);
    try {
      const refreshToken = store.get('sessionStorage', KEYS.refresh);
      await authed('POST', '/v1/auth/logout', refreshToken ? { refreshToken } : {});
    } catch {
      /* the local session ends either way */
    } finally {
      setBusy(button, false);
    }
    endSession('You have signed out.');
  });

  // ---------------------------------------------------------------- two-factor card

  const tf = { mode: 'loading', status: null, summary: null, codes: null };

  function renderTwoFactor() {
    const { mode, status, summary } = tf;
    $('tf-off').hidden = mode !== 'off';
    $('tf-enrol').hidden = mode !== 'enrol';
    $('tf-codes').hidden = mode !== 'codes';
    $('tf-on').hidden = mode !== 'on';
    const pill = $('tf-pill');
    const pills = { off: ['Off', 'pill-off'], enrol: ['Setting up', 'pill-pending'], codes: ['On', 'pill-on'], on: ['On', 'pill-on'] };
    const [text, cls] = pills[mode] || ['', ''];
    pill.textContent = text;
    pill.className = `pill ${cls}`;
    if (mode === 'on' && status) {
      $('tf-since').textContent = status.enabledAt
        ? `Codes from your authenticator app are required when you sign in. Turned on ${dateOnly.format(new Date(status.enabledAt))}.`
        : 'Codes from your authenticator app are required when you sign in.';
      const remaining = summary ? summary.remaining : status.backupCodesRemaining;
      const total = summary ? summary.total : 10;
      $('tf-codes-count').textContent = `${remaining} of ${total} backup codes left. Each one signs you in once if you can't use your phone.`;
      const low = $('tf-codes-low');
      if (remaining === 0) {
        low.textContent = "You have no backup codes left. Generate new ones so you can still sign in if you lose your phone.";
        low.hidden = false;
      } else if (remaining <= 3) {
        low.textContent = `Only ${remaining} backup code${remaining === 1 ? '' : 's'} left. Generate new ones soon.`;
        low.hidden = false;
      } else {
        low.hidden = true;
      }
    }
  }

  async function loadTwoFactor() {
    const errorBox = $('tf-load-error');
    errorBox.hidden = true;
    try {
      const status = await authed('GET', '/v1/auth/2fa/status');
      tf.status = status;
      tf.summary = status.enabled ? await authed('GET', '/v1/auth/2fa/backup-codes') : null;
      if (tf.mode !== 'codes' && tf.mode !== 'enrol') tf.mode = status.enabled ? 'on' : 'off';
      renderTwoFactor();
    } catch (err) {
      if (err instanceof SessionEnded) return;
      errorBox.textContent = `Couldn't load the two-factor status. ${messageFor(err)}`;
      errorBox.hidden = false;
    }
  }

  function groupSecret(secret) {
    return secret.replace(/\s+/g, '').replace(/(.{4})(?=.)/g, '$1 ');
  }

  onClick(
    $('tf-start'),
    async () => {
      let setup;
      try {
        setup = await authed('POST', '/v1/auth/2fa/setup');
      } catch (err) {
        if (err instanceof ApiError && err.code === 'two_factor_already_enabled') {
          await loadTwoFactor();
          return;
        }
        throw err;
      }
      $('enrol-qr').src = setup.qrCode;
      $('enrol-secret').textContent = groupSecret(setup.secret);
      $('enrol-account').textContent = `${setup.issuer}: ${setup.accountName}`;
      $('enrol-type').textContent = `Time-based, ${setup.algorithm}, ${setup.digits} digits, every ${setup.period} seconds`;
      $('enrol-link').href = setup.otpauthUrl;
      $('enrol-expiry').textContent = setup.expiresAt
        ? `Confirm before ${timeOnly.format(new Date(setup.expiresAt))}, when this setup expires.`
        : '';
      $('form-enrol').reset();
      clearErrors($('form-enrol'));
      tf.mode = 'enrol';
      renderTwoFactor();
      $('enrol-code').focus();
    },
    $('tf-start-error'),
  );

  $('enrol-copy').addEventListener('click', async () => {
    const ok = await copyText($('enrol-secret').textContent.replace(/\s+/g, ''));
    toast(ok ? 'Setup key copied.' : "Couldn't copy. Select the key and copy it yourself.");
  });

  function clearEnrolment() {
    $('enrol-qr').removeAttribute('src');
    $('enrol-secret').textContent = '';
    $('enrol-link').removeAttribute('href');
    $('form-enrol').reset();
  }

  $('enrol-cancel').addEventListener('click', () => {
    clearEnrolment();
    tf.mode = tf.status && tf.status.enabled ? 'on' : 'off';
    renderTwoFactor();
    $('tf-start').focus();
  });

  onSubmit(
    $('form-enrol'),
    async () => {
      const code = cleanCode($('enrol-code').value);
      if (!/^\d{6}$/.test(code)) {
        fieldError($('enrol-code'), 'Enter the 6 digits your authenticator app shows.');
        $('enrol-code').focus();
        return;
      }
      let result;
      try {
        result = await authed('POST', '/v1/auth/2fa/verify-setup', { code });
      } catch (err) {
        if (err instanceof ApiError && err.code === 'no_pending_setup') {
          clearEnrolment();
          tf.mode = 'off';
          renderTwoFactor();
          formError($('tf-start-error'), MESSAGES.no_pending_setup);
          return;
        }
        throw err;
      }
      clearEnrolment();
      showBackupCodes(result.backupCodes);
      toast('Two-factor authentication is on.');
      await refreshAll();
    },
    { invalid_code: 'code', validation_failed: 'code' },
  );

  // Backup codes: shown once, then forgotten by the page too.

  function showBackupCodes(codes) {
    tf.codes = codes.slice();
    tf.mode = 'codes';
    const list = $('codes-list');
    list.replaceChildren(...codes.map((c) => el('li', null, c)));
    $('codes-saved').checked = false;
    $('codes-done').disabled = true;
    renderTwoFactor();
    $('h-2fa').scrollIntoView({ block: 'start' });
    $('codes-copy').focus({ preventScroll: true });
  }

  function codesText() {
    const who = session.user ? session.user.email : '';
    const lines = [
      `Tessera backup codes${who ? ` for ${who}` : ''}`,
      `Generated ${dateTime.format(new Date())}`,
      '',
      "Each code signs you in once if you can't use your authenticator app.",
      'Keep them somewhere safe. Generating new codes makes these stop working.',
      '',
      ...tf.codes.map((c, i) => `${String(i + 1).padStart(2, ' ')}. ${c}`),
      '',
    ];
    return lines.join('\n');
  }

  $('codes-copy').addEventListener('click', async () => {
    const ok = await copyText(tf.codes.join('\n'));
    toast(ok ? 'Backup codes copied.' : "Couldn't copy. Select the codes and copy them yourself.");
  });

  $('codes-download').addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([codesText()], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'tessera-backup-codes.txt';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  });

  $('codes-print').addEventListener('click', () => {
    $('print-account').textContent = session.user ? `Account: ${session.user.email}` : '';
    $('print-codes').replaceChildren(...tf.codes.map((c) => el('li', null, c)));
    window.print();
  });

  window.addEventListener('afterprint', () => {
    $('print-codes').replaceChildren();
  });

  $('codes-saved').addEventListener('change', (event) => {
    $('codes-done').disabled = !event.target.checked;
  });

  $('codes-done').addEventListener('click', async () => {
    tf.codes = null;
    $('codes-list').replaceChildren();
    $('print-codes').replaceChildren();
    tf.mode = tf.status && tf.status.enabled ? 'on' : 'off';
    renderTwoFactor();
    await loadTwoFactor();
    $('h-2fa').focus();
  });

  onClick(
    $('tf-regenerate'),
    async () => {
      const go = await confirmAction({
        title: 'Generate new backup codes?',
        text: 'Your current backup codes will stop working. You will see the new codes once.',
        ok: 'Generate new codes',
      });
      if (!go) return;
      const result = await withFreshFactor(
        (code) => authed('POST', '/v1/auth/2fa/regenerate-backup-codes', code ? { code } : {}),
        'Generating new backup codes needs a fresh second factor. Enter a code from your authenticator app or one of your current backup codes.',
      );
      showBackupCodes(result.backupCodes);
      await loadEvents(true);
    },
    $('tf-regenerate-error'),
  );

  $('tf-disable-open').addEventListener('click', () => {
    const form = $('form-disable');
    form.hidden = !form.hidden;
    $('tf-disable-open').setAttribute('aria-expanded', String(!form.hidden));
    if (!form.hidden) {
      clearErrors(form);
      $('disable-password').focus();
    }
  });

  $('disable-cancel').addEventListener('click', () => {
    $('form-disable').reset();
    $('form-disable').hidden = true;
    $('tf-disable-open').setAttribute('aria-expanded', 'false');
    $('tf-disable-open').focus();
  });

  onSubmit(
    $('form-disable'),
    async () => {
      await authed('POST', '/v1/auth/2fa/disable', {
        password: $('disable-password').value,
        code: cleanCode($('disable-code').value),
      });
      if (session.user) forgetDevice(session.user.id);
      $('form-disable').reset();
      $('form-disable').hidden = true;
      $('tf-disable-open').setAttribute('aria-expanded', 'false');
      tf.mode = 'off';
      toast('Two-factor authentication is off.');
      await refreshAll();
      $('h-2fa').focus();
    },
    {
      invalid_credentials: ['password', 'The password is not correct.'],
      invalid_code: 'code',
      second_factor_locked: 'code',
      totp_suspended: 'code',
    },
  );

  // ---------------------------------------------------------------- trusted devices

  const TYPE_NAMES = { desktop: 'Computer', mobile: 'Phone', tablet: 'Tablet' };

  async function loadDevices() {
    const errorBox = $('devices-error');
    clearErrors(errorBox);
    let devices;
    try {
      devices = await authed('GET', '/v1/auth/2fa/trusted-devices');
    } catch (err) {
      if (!(err instanceof SessionEnded)) formError(errorBox, `Couldn't load your devices. ${messageFor(err)}`);
      return;
    }
    renderDevices(devices);
  }

  function renderDevices(devices) {
    const user = session.user;
    const mine = user && deviceForUser(user.id);
    if (mine && !devices.some((d) => d.id === mine.deviceId)) {
      // Removed elsewhere, expired or revoked: this browser's token is useless now.
      forgetDevice(user.id);
    }
    const current = user && deviceForUser(user.id);
    const list = $('devices-list');
    list.replaceChildren(
      ...devices.map((device) => {
        const isThis = current && current.deviceId === device.id;
        const item = el('li', 'device');
        const iconBox = el('div', 'device-icon');
        iconBox.append(icon(device.deviceType));
        const main = el('div', 'device-main');
        const name = el('div', 'device-name');
        name.append(el('span', null, device.deviceName));
        if (isThis) name.append(el('span', 'tag', 'This browser'));
        const meta = el('dl', 'device-meta');
        meta.append(
          metaItem('Type', TYPE_NAMES[device.deviceType] || device.deviceType),
          metaItem('Browser', device.browserInfo),
          metaItem('IP', device.ipAddress),
          metaItem('Location', device.location || 'Unknown'),
          metaItem('Last used', device.lastUsedAt ? timeElement(device.lastUsedAt) : 'Not yet'),
          metaItem('Expires', timeElement(device.expiresAt, dateOnly.format(new Date(device.expiresAt)))),
        );
        main.append(name, meta);
        const remove = el('button', 'btn btn-secondary btn-small', 'Remove');
        remove.type = 'button';
        remove.setAttribute('aria-label', `Remove ${device.deviceName}`);
        onClick(
          remove,
          async () => {
            try {
              await authed('DELETE', `/v1/auth/2fa/trusted-devices/${encodeURIComponent(device.id)}`);
            } catch (err) {
              if (!(err instanceof ApiError && err.code === 'not_found')) throw err;
            }
            if (isThis) forgetDevice(user.id);
            toast(`Removed ${device.deviceName}.`);
            await refreshAll();
            $('h-devices').focus();
          },
          $('devices-error'),
        );
        item.append(iconBox, main, remove);
        return item;
      }),
    );
    $('devices-empty').hidden = devices.length > 0;
    $('devices-empty').textContent =
      tf.status && !tf.status.enabled
        ? 'Trusted devices are available once two-factor authentication is on.'
        : 'No trusted devices. When you sign in with a code, tick “Trust this device” to skip the code next time.';
    $('devices-remove-all').hidden = devices.length < 2;
    $('devices-trust-row').hidden = !(tf.status && tf.status.enabled) || Boolean(current);
  }

  onClick(
    $('devices-remove-all'),
    async () => {
      const go = await confirmAction({
        title: 'Remove all trusted devices?',
        text: 'Every device, including this one, will need a two-factor code at the next sign-in.',
        ok: 'Remove all',
        danger: true,
      });
      if (!go) return;
      const result = await authed('DELETE', '/v1/auth/2fa/trusted-devices');
      if (session.user) forgetDevice(session.user.id);
      toast(`Removed ${result.removed} device${result.removed === 1 ? '' : 's'}.`);
      await refreshAll();
    },
    $('devices-error'),
  );

  onClick(
    $('devices-trust-this'),
    async () => {
      const input = deviceInput('');
      const device = await withFreshFactor(
        (code) => authed('POST', '/v1/auth/2fa/trusted-devices', code ? { ...input, code } : input),
        'Trusting this browser needs a fresh second factor. Enter a code from your authenticator app or a backup code.',
      );
      rememberDevice(session.user, device.id, device.deviceToken);
      toast('This browser is now trusted for 30 days.');
      await refreshAll();
    },
    $('devices-error'),
  );

  // ---------------------------------------------------------------- password

  onSubmit(
    $('form-password'),
    async () => {
      if ($('password-new').value !== $('password-confirm').value) {
        fieldError($('password-confirm'), "The passwords don't match.");
        $('password-confirm').focus();
        return;
      }
      await authed('POST', '/v1/auth/password', {
        currentPassword: $('password-current').value,
        newPassword: $('password-new').value,
      });
      if (session.user) forgetDevice(session.user.id);
      $('form-password').reset();
      toast('Password changed. Your other sessions were signed out.');
      await refreshAll();
    },
    { invalid_credentials: ['currentPassword', 'The current password is not correct.'] },
  );

  // ---------------------------------------------------------------- security events

  const EVENT_PAGE = 15;
  let eventsOffset = 0;

  const METHOD_NAMES = { totp: 'authenticator app', backup_code: 'backup code' };

  function describeEvent(event) {
    const d = event.details || {};
    const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
    switch (event.type) {
      case 'login_succeeded':
        if (d.method === 'trusted_device') return ['Signed in from a trusted device', 'good'];
        if (d.method === 'second_factor')
          return [`Signed in with ${d.secondFactor === 'backup_code' ? 'a backup code' : 'two-factor authentication'}`, 'good'];
        return ['Signed in', 'good'];
      case 'login_failed':
        return ['Failed sign-in: wrong password', 'bad'];
      case 'second_factor_failed':
        return [`Wrong ${METHOD_NAMES[d.method] ? `${METHOD_NAMES[d.method]} ` : ''}code`, 'bad'];
      case 'second_factor_locked':
        return [`Codes locked after too many wrong attempts${d.lockedForSeconds ? ` (${duration(d.lockedForSeconds)})` : ''}`, 'bad'];
      case 'second_factor_abandoned':
        return ['Right password, but the sign-in was not completed', 'bad'];
      case 'totp_suspended':
        return ['Authenticator codes suspended after repeated failures', 'bad'];
      case 'two_factor_enabled':
        return ['Two-factor authentication turned on', 'change'];
      case 'two_factor_disabled':
        return ['Two-factor authentication turned off', 'change'];
      case 'two_factor_reset':
        return ['Two-factor authentication reset by an administrator', 'change'];
      case 'backup_code_used':
        return [`Backup code used${typeof d.remaining === 'number' ? ` (${d.remaining} left)` : ''}`, 'change'];
      case 'backup_codes_regenerated':
        return ['New backup codes generated', 'change'];
      case 'device_trusted':
        return [`Device trusted${d.deviceName ? `: ${d.deviceName}` : ''}`, 'change'];
      case 'device_removed':
        return ['Trusted device removed', 'change'];
      case 'devices_removed':
        return [`${typeof d.count === 'number' ? plural(d.count, 'trusted device') : 'Trusted devices'} removed`, 'change'];
      case 'password_changed':
        return ['Password changed', 'change'];
      case 'sessions_revoked':
        return [`${typeof d.count === 'number' ? plural(d.count, 'other session') : 'Other sessions'} signed out`, 'change'];
      case 'refresh_token_reused':
        return ['A session was ended because its token was used twice', 'bad'];
      case 'logged_out':
        return ['Signed out', ''];
      case 'account_unlocked':
        return ['Account unlocked', 'change'];
      case 'account_created':
        return ['Account created by an administrator', 'change'];
      default: {
        const text = String(event.type || 'event').replace(/_/g, ' ');
        return [text.charAt(0).toUpperCase() + text.slice(1), ''];
      }
    }
  }

  function shortAgent(ua) {
    if (!ua) return '';
    const browsers = [
      [/Edg\/(\d+)/, 'Edge'],
      [/OPR\/(\d+)/, 'Opera'],
      [/Firefox\/(\d+)/, 'Firefox'],
      [/(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
      [/Version\/(\d+)[\d.]* .*Safari/, 'Safari'],
      [/curl\/([\d.]+)/, 'curl'],
    ];
    const found = browsers.find(([re]) => re.test(ua));
    const systems = [
      [/Android/, 'Android'],
      [/iPhone|iPad/, 'iOS'],
      [/Windows/, 'Windows'],
      [/Mac OS X/, 'macOS'],
      [/Linux/, 'Linux'],
    ];
    const os = systems.find(([re]) => re.test(ua));
    if (!found) return ua.length > 40 ? `${ua.slice(0, 40)}…` : ua;
    return `${found[1]}${os ? ` on ${os[1]}` : ''}`;
  }

  async function loadEvents(reset) {
    const errorBox = $('events-error');
    clearErrors(errorBox);
    if (reset) eventsOffset = 0;
    let events;
    try {
      events = await authed('GET', `/v1/auth/security-events?limit=${EVENT_PAGE + 1}&offset=${eventsOffset}`);
    } catch (err) {
      if (!(err instanceof SessionEnded)) formError(errorBox, `Couldn't load recent activity. ${messageFor(err)}`);
      return;
    }
    const more = events.length > EVENT_PAGE;
    const items = events.slice(0, EVENT_PAGE).map((event) => {
      const [title, tone] = describeEvent(event);
      const item = el('li', 'event');
      item.append(el('span', `event-dot${tone ? ` tone-${tone}` : ''}`), el('span', 'event-title', title));
      const when = el('span', 'event-time');
      when.append(timeElement(event.occurredAt));
      item.append(when);
      const meta = [event.ipAddress, shortAgent(event.userAgent)].filter((x) => x && x !== 'unknown').join(' · ');
      if (meta) item.append(el('span', 'event-meta', meta));
      return item;
    });
    const list = $('events-list');
    if (reset) list.replaceChildren(...items);
    else list.append(...items);
    eventsOffset += Math.min(events.length, EVENT_PAGE);
    $('events-empty').hidden = list.children.length > 0;
    $('events-more').hidden = !more;
  }

  onClick($('events-refresh'), () => loadEvents(true), $('events-error'));
  onClick($('events-more'), () => loadEvents(false), $('events-error'));

  // ---------------------------------------------------------------- reset and start

  function resetAccountView() {
    tf.mode = 'loading';
    tf.status = null;
    tf.summary = null;
    tf.codes = null;
    clearEnrolment();
    $('codes-list').replaceChildren();
    $('print-codes').replaceChildren();
    $('devices-list').replaceChildren();
    $('events-list').replaceChildren();
    for (const id of ['form-disable', 'form-password']) {
      $(id).reset();
      clearErrors($(id));
    }
    $('form-disable').hidden = true;
    renderTwoFactor();
    for (const d of ['reauth-dialog', 'confirm-dialog']) if ($(d).open) $(d).close();
  }

  async function start() {
    fingerprint();
    if (store.get('sessionStorage', KEYS.refresh)) {
      try {
        await refreshNow();
        await showAccount();
        return;
      } catch (err) {
        if (err instanceof SessionEnded) return;
        showAuth('login', messageFor(err));
        return;
      }
    }
    showAuth('login');
  }

  start();
})();
