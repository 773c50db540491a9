// Browser storage: the refresh token (sessionStorage) and this browser's trusted devices and
// fingerprint (localStorage). Storage that is switched off or full is treated as empty.

export const KEYS = {
  refresh: 'tessera.refreshToken',
  devices: 'tessera.trustedDevices',
  fingerprint: 'tessera.deviceFingerprint',
};

export function storage(area) {
  try {
    return window[area];
  } catch {
    return null;
  }
}
export const store = {
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

export function randomHex(bytes) {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A random id made once per browser, sent with a trusted device's token. */
export function fingerprint() {
  let fp = store.get('localStorage', KEYS.fingerprint);
  if (!fp || !/^[0-9a-f]{32}$/.test(fp)) {
    fp = randomHex(16);
    store.set('localStorage', KEYS.fingerprint, fp);
  }
  return fp;
}

export function trustedDevices() {
  try {
    const list = JSON.parse(store.get('localStorage', KEYS.devices) || '[]');
    return Array.isArray(list) ? list.filter((d) => d && typeof d.token === 'string') : [];
  } catch {
    return [];
  }
}
export function saveTrustedDevices(list) {
  if (list.length) store.set('localStorage', KEYS.devices, JSON.stringify(list));
  else store.remove('localStorage', KEYS.devices);
}
export function rememberDevice(user, deviceId, token) {
  const list = trustedDevices().filter((d) => d.userId !== user.id);
  list.push({ userId: user.id, email: user.email, userName: user.userName, deviceId, token });
  saveTrustedDevices(list);
}
export function forgetDevice(userId) {
  saveTrustedDevices(trustedDevices().filter((d) => d.userId !== userId));
}
export function deviceForIdentifier(identifier) {
  const id = identifier.trim().toLowerCase();
  return trustedDevices().find((d) => (d.email || '').toLowerCase() === id || (d.userName || '').toLowerCase() === id);
}
export function deviceForUser(userId) {
  return trustedDevices().find((d) => d.userId === userId);
}
