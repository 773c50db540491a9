// The two-factor card: enrolment, backup codes (shown once), regeneration and switching off.

import { $, dateOnly, dateTime, el, timeOnly } from './dom.js';
import { forgetDevice } from './storage.js';
import { ApiError, authed, session, SessionEnded } from './api.js';
import { messageFor, MESSAGES } from './messages.js';
import { appCode, cleanCode, clearErrors, copyText, formError, onClick, onSubmit, toast } from './forms.js';
import { confirmAction, withFreshFactor } from './dialogs.js';
import { loadEvents } from './events.js';
import { refreshAll } from '../app.js';

export const tf = { mode: 'loading', status: null, summary: null, codes: null };

export function renderTwoFactor() {
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
    const app = status.method === 'totp';
    $('tf-method-title').textContent = app ? 'Authenticator app' : 'Passkeys';
    const asked = app
      ? 'Codes from your authenticator app are required when you sign in.'
      : 'A passkey (see below) is asked for after your password.';
    $('tf-since').textContent = status.enabledAt
      ? `${asked} Turned on ${dateOnly.format(new Date(status.enabledAt))}.`
      : asked;
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

export async function loadTwoFactor() {
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

export function groupSecret(secret) {
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

export function clearEnrolment() {
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
    const code = appCode($('enrol-code'));
    if (!code) return;
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

export function showBackupCodes(codes) {
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

export function codesText() {
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
