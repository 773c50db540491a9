// The trusted devices card.

import { $, dateOnly, el, icon, metaItem, timeElement } from './dom.js';
import { deviceForUser, forgetDevice, rememberDevice } from './storage.js';
import { deviceInput } from './browser.js';
import { ApiError, authed, session, SessionEnded } from './api.js';
import { messageFor } from './messages.js';
import { clearErrors, formError, onClick, toast } from './forms.js';
import { confirmAction, withFreshFactor } from './dialogs.js';
import { tf } from './two_factor.js';
import { refreshAll } from '../app.js';

export const TYPE_NAMES = { desktop: 'Computer', mobile: 'Phone', tablet: 'Tablet' };

export async function loadDevices() {
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

export function renderDevices(devices) {
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
