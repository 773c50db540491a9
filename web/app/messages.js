// What each problem code means to the person using the page.

import { ApiError } from './api.js';

export function duration(seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} seconds`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} minutes`;
  return `${Math.round(seconds / 3600)} hours`;
}

/** A failure outside the API (the browser refused a passkey request) with its own message. */
export class UserFacing extends Error {}

export const MESSAGES = {
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
  invalid_ceremony: 'That passkey request expired or was already used. Try again.',
  invalid_passkey: "That passkey wasn't accepted. Use a passkey you added to this account, on this site.",
  no_passkey: 'This account has no passkey to use. Use a code instead.',
  authenticator_not_allowed: "This server doesn't accept passkeys from this kind of device or password manager.",
  conflict: 'This passkey is already registered.',
};

export function messageFor(err) {
  if (err instanceof UserFacing) return err.message;
  if (!(err instanceof ApiError)) return 'Something went wrong. Try again.';
  const m = MESSAGES[err.code];
  if (typeof m === 'function') return m(err);
  return m || err.detail || err.message;
}
