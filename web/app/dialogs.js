// Dialogs: asking for a fresh second factor, and confirming a destructive action.

import { $ } from './dom.js';
import { ApiError, Cancelled, SessionEnded } from './api.js';
import { checkRequired, cleanCode, clearErrors, setBusy, showError } from './forms.js';

/**
 * Asks for a fresh second factor and runs `action(code)` with it until it succeeds
 * or the person cancels. Errors (a wrong code, a lockout) are shown in the dialog.
 */
export function askForCode(action, lead, { label, password } = {}) {
  const dialog = $('reauth-dialog');
  const form = $('form-reauth');
  const input = $('reauth-code');
  const submit = form.querySelector('button[type="submit"]');
  clearErrors(form);
  form.reset();
  // The same dialog asks for the password where that is the proof asked for.
  $('reauth-code-label').textContent = label || 'Authentication code or backup code';
  input.type = password ? 'password' : 'text';
  input.autocomplete = password ? 'current-password' : 'one-time-code';
  input.maxLength = password ? 1024 : 32;
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
        finish(resolve, await action(password ? input.value : cleanCode(input.value)));
      } catch (err) {
        if (err instanceof SessionEnded) finish(reject, err);
        else showError(form, err, { invalid_code: 'code', validation_failed: 'code', invalid_credentials: ['code', 'The password is not correct.'] });
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
export async function withFreshFactor(action, lead) {
  try {
    return await action(undefined);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'reauthentication_required')) throw err;
  }
  return askForCode(action, lead);
}

/** A yes/no question in a dialog; resolves true for yes. */
export function confirmAction({ title, text, ok, danger }) {
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
