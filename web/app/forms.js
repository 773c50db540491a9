// Forms and errors: per-field messages, required fields, busy buttons and toasts.

import { $ } from './dom.js';
import { ApiError, Cancelled, SessionEnded } from './api.js';
import { messageFor } from './messages.js';

export function labelOf(input) {
  const label = input && input.id && document.querySelector(`label[for="${input.id}"]`);
  if (!label) return '';
  return (label.firstChild && label.firstChild.textContent ? label.firstChild.textContent : label.textContent).trim();
}

export function sentence(label, message) {
  let text = String(message || '').trim();
  if (label && /^(must|may|is|are)\b/.test(text)) text = `${label} ${text}`;
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export function fieldError(input, message) {
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

export function formError(container, message) {
  const box = container.classList.contains('form-error') ? container : container.querySelector('.form-error');
  if (!box) return;
  box.textContent = message;
  box.hidden = !message;
}

export function clearErrors(container) {
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
export function showError(container, err, fieldFor = {}) {
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
export function checkRequired(form) {
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

export function setBusy(button, busy) {
  if (!button) return;
  button.disabled = busy;
  if (busy) button.setAttribute('aria-busy', 'true');
  else button.removeAttribute('aria-busy');
}

/** Runs `handler` on submit with errors cleared before and shown after. */
export function onSubmit(form, handler, fieldFor) {
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
export function onClick(button, handler, errorBox) {
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

export const cleanCode = (value) => value.replace(/\s+/g, '');

/** The 6-digit code typed in `input`, or null after saying next to it what to enter. */
export function appCode(input) {
  const code = cleanCode(input.value);
  if (/^\d{6}$/.test(code)) return code;
  fieldError(input, 'Enter the 6 digits your authenticator app shows.');
  input.focus();
  return null;
}

export let toastTimer = 0;
export function toast(message) {
  const el = $('toast');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 4500);
}

export async function copyText(text) {
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
