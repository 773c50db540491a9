// Passkeys: the card that adds, lists, renames and removes them, signing in with one
// (a button, and the browser's passkey autofill where it has it), and one as the second step.
//
// The server sends WebAuthn options as JSON (binary members base64url) and takes the
// browser's credential as JSON; the helpers below convert both ways by hand, as older
// browsers lack PublicKeyCredential.parseCreationOptionsFromJSON and toJSON.

import { $, el, metaItem, timeElement } from './dom.js';
import { ApiError, applyTokens, authed, call } from './api.js';
import { messageFor, UserFacing } from './messages.js';
import { clearErrors, formError, onClick, setBusy, toast } from './forms.js';
import { askForCode, confirmAction, withFreshFactor } from './dialogs.js';
import { showBackupCodes, tf } from './two_factor.js';
import { refreshAll, showAccount } from '../app.js';

export const supported = () => typeof window.PublicKeyCredential === 'function' && Boolean(navigator.credentials);

// ---------------------------------------------------------------- JSON <-> WebAuthn

function fromB64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function toB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

/** `navigator.credentials.create()` with the server's options; the credential as JSON. */
export async function createCredential(options) {
  const pk = options.publicKey;
  const publicKey = {
    ...pk,
    challenge: fromB64url(pk.challenge),
    user: { ...pk.user, id: fromB64url(pk.user.id) },
    excludeCredentials: withIds(pk.excludeCredentials),
  };
  const credential = await navigator.credentials.create({ publicKey });
  const response = credential.response;
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: toB64url(response.attestationObject),
      clientDataJSON: toB64url(response.clientDataJSON),
      transports: typeof response.getTransports === 'function' ? response.getTransports() : undefined,
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

/** `navigator.credentials.get()` with the server's options; the assertion as JSON. */
export async function getCredential(options, { mediation, signal } = {}) {
  const pk = options.publicKey;
  const publicKey = { ...pk, challenge: fromB64url(pk.challenge), allowCredentials: withIds(pk.allowCredentials) };
  const request = { publicKey };
  if (mediation) request.mediation = mediation;
  if (signal) request.signal = signal;
  const credential = await navigator.credentials.get(request);
  const response = credential.response;
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: toB64url(response.authenticatorData),
      clientDataJSON: toB64url(response.clientDataJSON),
      signature: toB64url(response.signature),
      userHandle: response.userHandle ? toB64url(response.userHandle) : undefined,
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

/** The browser's refusal (the person cancelled, timed out, no passkey here) as a message. */
export function browserMessage(err) {
  if (err && err.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
  if (err && err.name === 'InvalidStateError') return 'This passkey is already registered for your account.';
  if (err && err.name === 'SecurityError') return "This page's address can't use passkeys (use the site's domain name, not an IP address).";
  return messageFor(err);
}

// ---------------------------------------------------------------- signing in

let autofill = null; // the AbortController of the pending autofill request

export function stopAutofill() {
  if (autofill) autofill.abort();
  autofill = null;
}

async function finishSignIn(options, ceremonyId, mediation, signal) {
  const credential = await getCredential(options, { mediation, signal });
  const tokens = await call('POST', '/v1/auth/passkeys/login/finish', { body: { ceremonyId, credential } });
  stopAutofill();
  applyTokens(tokens);
  await showAccount();
}

/**
 * Offers the account's passkeys in the browser's autofill of the sign-in form, where the
 * browser supports it (conditional mediation). Quiet on every failure: the button and the
 * password stay.
 */
export async function offerAutofill() {
  stopAutofill();
  if (!supported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== 'function') return;
  try {
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    const controller = new AbortController();
    autofill = controller;
    const started = await call('POST', '/v1/auth/passkeys/login/start', { body: {} });
    if (controller.signal.aborted) return;
    await finishSignIn(started.options, started.ceremonyId, 'conditional', controller.signal);
  } catch (err) {
    if (err && err.name === 'AbortError') return;
    if (err instanceof ApiError && !$('form-login').hidden) formError($('form-login').querySelector('.form-error'), messageFor(err));
  }
}

$('passkey-signin').hidden = !supported();
onClick(
  $('passkey-signin'),
  async () => {
    stopAutofill();
    const started = await call('POST', '/v1/auth/passkeys/login/start', { body: {} });
    const { mediation: _, ...options } = started.options;
    try {
      await finishSignIn(options, started.ceremonyId);
    } catch (err) {
      if (!(err instanceof ApiError)) throw new UserFacing(browserMessage(err));
      throw err;
    }
  },
  $('form-login').querySelector('.form-error'),
);

/** The passkey second step for the login's `twoFactorToken`; the verify answer. */
export async function secondStepWithPasskey(token, trustDevice) {
  const started = await call('POST', '/v1/auth/passkeys/verify/start', { body: {}, token });
  let credential;
  try {
    credential = await getCredential(started.options);
  } catch (err) {
    throw new UserFacing(browserMessage(err));
  }
  const body = { ceremonyId: started.ceremonyId, credential };
  if (trustDevice) body.trustDevice = trustDevice;
  return call('POST', '/v1/auth/passkeys/verify/finish', { body, token });
}

// ---------------------------------------------------------------- the card

export async function loadPasskeys() {
  const errorBox = $('passkeys-error');
  clearErrors(errorBox);
  $('passkeys-unsupported').hidden = supported();
  $('form-passkey-add').hidden = !supported();
  let passkeys;
  try {
    passkeys = await authed('GET', '/v1/auth/passkeys');
  } catch (err) {
    if (err instanceof ApiError) formError(errorBox, `Couldn't load your passkeys. ${messageFor(err)}`);
    return;
  }
  renderPasskeys(passkeys);
}

function renderPasskeys(passkeys) {
  $('passkeys-list').replaceChildren(...passkeys.map(passkeyItem));
  $('passkeys-empty').hidden = passkeys.length > 0;
}

function passkeyItem(passkey) {
  const item = el('li', 'device passkey');
  const main = el('div', 'device-main');
  const name = el('div', 'device-name');
  name.append(el('span', 'passkey-name', passkey.name));
  if (passkey.backedUp) name.append(el('span', 'tag', 'Synced'));
  if (passkey.disabled) name.append(el('span', 'tag tag-bad', 'Disabled'));
  const meta = el('dl', 'device-meta');
  meta.append(
    metaItem('Added', timeElement(passkey.createdAt)),
    metaItem('Last used', passkey.lastUsedAt ? timeElement(passkey.lastUsedAt) : 'Not yet'),
  );
  if (passkey.disabled) meta.append(metaItem('Why disabled', 'Its counter went backwards: it may have been copied. Remove it and add it again.'));
  main.append(name, meta);

  const actions = el('div', 'button-row');
  const rename = el('button', 'btn btn-secondary btn-small', 'Rename');
  rename.type = 'button';
  rename.setAttribute('aria-label', `Rename ${passkey.name}`);
  rename.addEventListener('click', () => startRename(item, passkey));
  const remove = el('button', 'btn btn-secondary btn-small', 'Remove');
  remove.type = 'button';
  remove.setAttribute('aria-label', `Remove ${passkey.name}`);
  onClick(remove, () => removePasskey(passkey), $('passkeys-error'));
  actions.append(rename, remove);
  item.append(main, actions);
  return item;
}

function startRename(item, passkey) {
  const form = el('form', 'inline-row passkey-rename');
  form.noValidate = true;
  const input = el('input');
  input.type = 'text';
  input.maxLength = 100;
  input.value = passkey.name;
  input.setAttribute('aria-label', 'Passkey name');
  const save = el('button', 'btn btn-primary btn-small', 'Save');
  save.type = 'submit';
  const cancel = el('button', 'btn btn-secondary btn-small', 'Cancel');
  cancel.type = 'button';
  cancel.addEventListener('click', () => loadPasskeys());
  form.append(input, save, cancel);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      input.focus();
      return;
    }
    setBusy(save, true);
    try {
      await authed('PATCH', `/v1/auth/passkeys/${encodeURIComponent(passkey.id)}`, { name });
      toast('Passkey renamed.');
      await loadPasskeys();
    } catch (err) {
      formError($('passkeys-error'), messageFor(err));
    } finally {
      setBusy(save, false);
    }
  });
  item.querySelector('.device-main').replaceChildren(form);
  input.focus();
  input.select();
}

async function removePasskey(passkey) {
  const last = tf.status && tf.status.method !== 'totp' && (tf.status.passkeys || 0) <= 1 && !passkey.disabled;
  const go = await confirmAction({
    title: `Remove ${passkey.name}?`,
    text: last
      ? 'This is your last passkey and your only second factor: two-factor authentication will be turned off, your backup codes and trusted devices deleted, and your other sessions signed out.'
      : 'You will no longer be able to sign in with it. Remove it from the device or password manager too.',
    ok: 'Remove',
    danger: true,
  });
  if (!go) return;
  const path = `/v1/auth/passkeys/${encodeURIComponent(passkey.id)}`;
  let result;
  try {
    result = await withFreshFactor(
      (code) => authed('DELETE', path, code ? { code } : undefined),
      'Removing a passkey needs a fresh second factor. Enter a code from your authenticator app or one of your backup codes.',
    );
  } catch (err) {
    if (err instanceof ApiError && err.code === 'not_found') {
      await loadPasskeys();
      return;
    }
    throw err;
  }
  toast(result.twoFactorEnabled ? `Removed ${passkey.name}.` : `Removed ${passkey.name}. Two-factor authentication is off.`);
  await refreshAll();
  $('h-passkeys').focus();
}

/** Starts a registration with whatever fresh proof the server asks for. */
async function startRegistration() {
  const start = (body) => authed('POST', '/v1/auth/passkeys/register/start', body);
  if (tf.status && tf.status.enabled) {
    return withFreshFactor(
      (code) => start(code ? { code } : {}),
      'Adding a passkey needs a fresh second factor. Enter a code from your authenticator app or one of your backup codes.',
    );
  }
  try {
    return await start({});
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'reauthentication_required')) throw err;
  }
  return askForCode((password) => start({ password }), 'You signed in a while ago. Enter your password to add a passkey.', {
    label: 'Current password',
    password: true,
  });
}

// Enter in the name field adds the passkey, as the button does.
$('form-passkey-add').addEventListener('submit', (event) => {
  event.preventDefault();
  $('passkey-add').click();
});

onClick(
  $('passkey-add'),
  async () => {
    const name = $('passkey-name').value.trim();
    const started = await startRegistration();
    let credential;
    try {
      credential = await createCredential(started.options);
    } catch (err) {
      throw new UserFacing(browserMessage(err));
    }
    const body = { ceremonyId: started.ceremonyId, credential };
    if (name) body.name = name;
    const result = await authed('POST', '/v1/auth/passkeys/register/finish', body);
    $('passkey-name').value = '';
    toast(`Added ${result.passkey.name}.`);
    await refreshAll();
    if (result.backupCodes) showBackupCodes(result.backupCodes);
  },
  $('passkeys-error'),
);
