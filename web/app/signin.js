// Sign in, the second step and sign up.

import { $, timeOnly } from './dom.js';
import { deviceForIdentifier, fingerprint, KEYS, rememberDevice, store } from './storage.js';
import { defaultDeviceName, deviceInput } from './browser.js';
import { ApiError, applyTokens, authed, call } from './api.js';
import { MESSAGES } from './messages.js';
import { appCode, cleanCode, clearErrors, fieldError, onClick, onSubmit, setBusy, toast } from './forms.js';
import { endSession, showAccount, showAuth } from '../app.js';
import { secondStepWithPasskey, supported as passkeysSupported } from './passkeys.js';
import { groupSecret, showBackupCodes } from './two_factor.js';

let pendingLogin = null; // {token, expiresAt, methods}
let pendingEnrolment = null; // the enrolment token of a login that must enrol first

/**
 * A login of an account that must have a second factor and has none: the enrolment token
 * allows setting up an authenticator app, whose confirmation signs in.
 */
async function startEnrolment(token) {
  const setup = await call('POST', '/v1/auth/2fa/setup', { token });
  pendingEnrolment = token;
  $('form-enrol-signin').reset();
  $('enrol-signin-qr').src = setup.qrCode;
  $('enrol-signin-secret').textContent = groupSecret(setup.secret);
  $('enrol-signin-hint').textContent = `The 6 digits your app shows. Confirm before ${timeOnly.format(new Date(setup.expiresAt))}.`;
  showAuth('enrol');
}

function leaveEnrolment(notice) {
  pendingEnrolment = null;
  $('enrol-signin-qr').removeAttribute('src');
  $('enrol-signin-secret').textContent = '';
  $('form-enrol-signin').reset();
  showAuth('login', notice);
}

$('enrol-signin-cancel').addEventListener('click', () => leaveEnrolment());

onSubmit(
  $('form-enrol-signin'),
  async () => {
    if (!pendingEnrolment) {
      leaveEnrolment(MESSAGES.invalid_two_factor_token);
      return;
    }
    const code = appCode($('enrol-signin-code'));
    if (!code) return;
    let result;
    try {
      result = await call('POST', '/v1/auth/2fa/verify-setup', { body: { code }, token: pendingEnrolment });
    } catch (err) {
      // Expired, or dead after too many wrong codes: the password step starts again.
      if (err instanceof ApiError && ['unauthorized', 'no_pending_setup'].includes(err.code)) {
        leaveEnrolment(MESSAGES.invalid_two_factor_token);
        return;
      }
      throw err;
    }
    leaveEnrolment();
    applyTokens(result);
    await showAccount();
    showBackupCodes(result.backupCodes);
    toast('Two-factor authentication is on.');
  },
  { invalid_code: 'code', validation_failed: 'code' },
);

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
  if (result.requiresEnrollment) {
    await startEnrolment(result.enrollmentToken);
    return;
  }
  if (result.requires2FA) {
    const methods = result.methods || ['totp', 'backup_code'];
    pendingLogin = { token: result.twoFactorToken, expiresAt: result.twoFactorTokenExpiry, methods };
    $('form-second').reset();
    setSecondMode(methods.includes('totp') ? 'totp' : 'backup');
    $('second-passkey-row').hidden = !(methods.includes('passkey') && passkeysSupported());
    $('second-toggle').hidden = !methods.includes('totp');
    $('second-device-field').hidden = true;
    $('second-device-name').value = defaultDeviceName();
    showAuth('second');
    return;
  }
  applyTokens(result);
  await showAccount();
});

export function setSecondMode(mode) {
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
    await completeSecondStep(() => call('POST', '/v1/auth/2fa/verify', { body, token: pendingLogin.token }));
  },
  { invalid_code: 'code', second_factor_locked: 'code', totp_suspended: 'code' },
);

/** Runs the second step's request and, when it signs in, opens the account. */
async function completeSecondStep(request) {
  let result;
  try {
    result = await request();
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
}

onClick(
  $('second-passkey'),
  async () => {
    if (!pendingLogin) {
      showAuth('login', MESSAGES.invalid_two_factor_token);
      return;
    }
    const trust = $('second-trust').checked ? deviceInput($('second-device-name').value) : undefined;
    const token = pendingLogin.token;
    await completeSecondStep(() => secondStepWithPasskey(token, trust));
  },
  $('form-second').querySelector('.form-error'),
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
    if (result.requiresEnrollment) {
      // This server requires a second factor of every account: set it up first.
      await startEnrolment(result.enrollmentToken);
      return;
    }
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
