// Tessera account security page.
//
// ES modules with no dependencies that use only the public /v1 API (this one, the entry,
// and those under /app/, one a card or concern). The page's
// Content-Security-Policy allows no inline script and requires Trusted Types, so this file
// never turns strings into markup: every element is built with createElement/textContent.
//
// Where tokens live (see the README, "Account security page"):
// - the access token only in a variable of app/api.js: no other script, extension
//   storage or later page can read it, and it is gone when the tab is;
// - the refresh token in sessionStorage: it survives a reload of this tab, is not shared
//   with other tabs and is deleted when the tab closes. The API authenticates with bearer
//   tokens, not cookies, so an HttpOnly cookie is not an option for a page that uses only
//   the public API; the strict CSP is what keeps other scripts off this origin;
// - a trusted device's token in localStorage with this browser's fingerprint (a random id
//   made once per browser), because its whole point is to outlive the session.
//
// Modules import each other in a cycle or two (the API ends the session, which resets the
// views here): that is safe because no module calls into another while it is loading, only
// from event handlers and from start() at the end of this one.

import { $ } from './app/dom.js';
import { fingerprint, KEYS, store } from './app/storage.js';
import './app/browser.js';
import { refreshNow, session, SessionEnded } from './app/api.js';
import { messageFor } from './app/messages.js';
import { clearErrors } from './app/forms.js';
import './app/dialogs.js';
import './app/signin.js';
import { clearEnrolment, loadTwoFactor, renderTwoFactor, tf } from './app/two_factor.js';
import { loadDevices } from './app/devices.js';
import './app/password.js';
import { loadEvents } from './app/events.js';
import { loadPasskeys, offerAutofill, stopAutofill } from './app/passkeys.js';

export function showAuth(mode, notice) {
  $('loading').hidden = true;
  $('view-account').hidden = true;
  $('session-box').hidden = true;
  $('view-auth').hidden = false;
  $('form-login').hidden = mode !== 'login';
  $('form-second').hidden = mode !== 'second';
  $('form-register').hidden = mode !== 'register';
  $('form-enrol-signin').hidden = mode !== 'enrol';
  const titles = {
    login: ['Sign in', 'Manage your password, two-factor authentication, passkeys and trusted devices.'],
    second: ['Two-factor authentication', 'Your account is protected with a second step.'],
    register: ['Create an account', 'It takes a minute. You can turn on two-factor authentication right after.'],
    enrol: ['Turn on two-factor authentication', 'One more step before you are signed in.'],
  };
  $('auth-title').textContent = titles[mode][0];
  $('auth-lead').textContent = titles[mode][1];
  const box = $('auth-notice');
  box.textContent = notice || '';
  box.hidden = !notice;
  document.title = `${titles[mode][0]} · Tessera`;
  // The browser's passkey autofill belongs to the sign-in form only.
  if (mode === 'login') offerAutofill();
  else stopAutofill();
  const first = {
    login: $('login-identifier').value ? $('login-password') : $('login-identifier'),
    second: $('second-passkey-row').hidden ? $('second-code') : $('second-passkey'),
    register: $('register-email'),
    enrol: $('enrol-signin-code'),
  }[mode];
  first.focus();
}

export function endSession(notice) {
  clearTimeout(session.timer);
  session.access = null;
  session.accessExpiresAt = 0;
  session.user = null;
  store.remove('sessionStorage', KEYS.refresh);
  resetAccountView();
  showAuth('login', notice);
}

export async function showAccount() {
  const user = session.user;
  $('loading').hidden = true;
  stopAutofill();
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
export async function refreshAll() {
  await Promise.all([loadTwoFactor(), loadEvents(true), loadPasskeys()]);
  await loadDevices();
}

export function resetAccountView() {
  tf.mode = 'loading';
  tf.status = null;
  tf.summary = null;
  tf.codes = null;
  clearEnrolment();
  $('codes-list').replaceChildren();
  $('print-codes').replaceChildren();
  $('devices-list').replaceChildren();
  $('passkeys-list').replaceChildren();
  $('events-list').replaceChildren();
  for (const id of ['form-disable', 'form-password']) {
    $(id).reset();
    clearErrors($(id));
  }
  $('form-disable').hidden = true;
  renderTwoFactor();
  for (const d of ['reauth-dialog', 'confirm-dialog']) if ($(d).open) $(d).close();
}

export async function start() {
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
