// The security events card, a page at a time.

import { $, el, timeElement } from './dom.js';
import { authed, SessionEnded } from './api.js';
import { duration, messageFor } from './messages.js';
import { clearErrors, formError, onClick } from './forms.js';

export const EVENT_PAGE = 15;
export let eventsOffset = 0;

export const METHOD_NAMES = { totp: 'authenticator app', backup_code: 'backup code' };
const SECOND_FACTORS = { backup_code: 'a backup code', passkey: 'a passkey as the second step' };

export function describeEvent(event) {
  const d = event.details || {};
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  switch (event.type) {
    case 'login_succeeded':
      if (d.method === 'trusted_device') return ['Signed in from a trusted device', 'good'];
      if (d.method === 'passkey') return ['Signed in with a passkey', 'good'];
      if (d.method === 'second_factor')
        return [`Signed in with ${SECOND_FACTORS[d.secondFactor] || 'two-factor authentication'}`, 'good'];
      return ['Signed in', 'good'];
    case 'login_failed':
      return ['Failed sign-in: wrong password', 'bad'];
    case 'second_factor_failed':
      if (d.method === 'passkey') return ['Passkey refused at the second step', 'bad'];
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
    case 'passkey_registered':
      return [`Passkey added${d.name ? `: ${d.name}` : ''}`, 'change'];
    case 'passkey_removed':
      return ['Passkey removed', 'change'];
    case 'passkey_disabled':
      return ['Passkey disabled: its counter went backwards, so it may have been copied', 'bad'];
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

export function shortAgent(ua) {
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

export async function loadEvents(reset) {
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
