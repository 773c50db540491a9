// About this browser: the name and type a trusted device is saved under.

import { fingerprint } from './storage.js';

export function describeBrowser() {
  const ua = navigator.userAgent;
  let browser = 'Browser';
  const browsers = [
    [/Edg\/(\d+)/, 'Edge'],
    [/OPR\/(\d+)/, 'Opera'],
    [/Firefox\/(\d+)/, 'Firefox'],
    [/(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
    [/Version\/(\d+)[\d.]* .*Safari/, 'Safari'],
  ];
  let version = '';
  for (const [re, name] of browsers) {
    const m = ua.match(re);
    if (m) {
      browser = name;
      version = m[1];
      break;
    }
  }
  const systems = [
    [/Android/, 'Android'],
    [/iPhone|iPad|iPod/, 'iOS'],
    [/CrOS/, 'ChromeOS'],
    [/Windows/, 'Windows'],
    [/Mac OS X|Macintosh/, 'macOS'],
    [/Linux/, 'Linux'],
  ];
  const os = (systems.find(([re]) => re.test(ua)) || [null, ''])[1];
  return { browser, version, os };
}
export function deviceType() {
  const ua = navigator.userAgent;
  if (/iPad|Tablet/i.test(ua)) return 'tablet';
  if (/Mobi|Android|iPhone/i.test(ua)) return 'mobile';
  return 'desktop';
}
export function defaultDeviceName() {
  const { browser, os } = describeBrowser();
  return os ? `${browser} on ${os}` : browser;
}
export function deviceInput(name) {
  const { browser, version, os } = describeBrowser();
  return {
    deviceName: (name || '').trim() || defaultDeviceName(),
    deviceType: deviceType(),
    deviceFingerprint: fingerprint(),
    browserInfo: [browser + (version ? ` ${version}` : ''), os].filter(Boolean).join(' on '),
  };
}
