// End-to-end test of the account security page: the real `tessera` binary on a fresh data
// dir and a free port, driven through Debian's Chromium with playwright-core.
//
//   cd e2e && npm ci && node account.test.mjs
//
// The server, the browser and the runner are harness.mjs's (environment: TESSERA_BIN,
// CHROMIUM). Screenshots go to e2e/screenshots/ at 1280x800 and 390x844. The last line is
// `N passed, N failed`; the exit code is non-zero on failure.

import fs from 'node:fs';
import path from 'node:path';
import { CONTEXT, HERE, assert, launchBrowser, log, openPage, pageSteps, runner, sleep, startServer, totpAt } from './harness.mjs';

const SHOTS = path.join(HERE, 'screenshots');
// A short access-token lifetime so the page has to refresh it during the run.
const ACCESS_TTL = 20;

const currentStep = () => Math.floor(Date.now() / 1000 / 30);

// Each 30-second step is accepted once per account: wait for a step later than the last used.
let lastStep = -1;
async function freshCode(secret) {
  while (currentStep() <= lastStep) {
    const wait = (lastStep + 1) * 30_000 - Date.now() + 300;
    log(`  (waiting ${Math.ceil(wait / 1000)} s for the next TOTP step)`);
    await sleep(wait);
  }
  lastStep = currentStep();
  return totpAt(secret, lastStep);
}

// ---------------------------------------------------------------- the test

const { step, finish } = runner();
const server = await startServer({ accessTtl: ACCESS_TTL });
log(`tessera at ${server.base} (data in ${server.dataDir})`);
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await launchBrowser();
const context = await browser.newContext({ ...CONTEXT, acceptDownloads: true });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
const { page, problems } = await openPage(context, server.base);
const refreshes = [];
page.on('response', (res) => {
  if (res.url().endsWith('/v1/auth/refresh')) refreshes.push(res.status());
});
const { visible, text, shoot, expectAccount, signOut: leave } = pageSteps(page, SHOTS);

async function signOut() {
  await leave();
  assert((await text('#auth-notice')).includes('signed out'), 'sign-out notice shown');
}

async function passwordStep() {
  await page.fill('#login-identifier', email);
  await page.fill('#login-password', password);
  await page.click('#form-login button[type=submit]');
}

// Each run has a fresh data dir, so fixed names do not collide.
const email = 'ann@example.com';
const userName = 'ann';
let password = 'correct horse battery staple';
const newPassword = 'tile by tile, a mosaic';
let secret = '';
let backupCodes = [];

await step('serves the page with its own strict Content-Security-Policy', async () => {
  const response = await page.goto(server.base + '/');
  const csp = response.headers()['content-security-policy'] || '';
  assert(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `strict CSP, got ${csp}`);
  assert(response.headers()['content-type'].startsWith('text/html'), 'HTML content type');
  await visible('#form-login');
  assert((await page.locator('#login-identifier').evaluate((el) => document.activeElement === el)), 'first field focused');
  await shoot('01-sign-in');
});

await step('shows a wrong password as a readable message', async () => {
  await page.fill('#login-identifier', 'nobody@example.com');
  await page.fill('#login-password', 'not the password');
  await page.click('#form-login button[type=submit]');
  await page.locator('#form-login .form-error').filter({ hasText: 'not correct' }).waitFor();
});

await step('sign up', async () => {
  await page.click('#show-register');
  await visible('#form-register');
  await page.click('#form-register button[type=submit]');
  await page.locator('#register-email-error').filter({ hasText: 'required' }).waitFor();
  await page.fill('#register-email', email);
  await page.fill('#register-username', userName);
  await page.fill('#register-password', 'short');
  await page.fill('#register-confirm', 'short');
  await page.click('#form-register button[type=submit]');
  // The API's own validation message, next to the password field.
  await page.locator('#register-password-error').filter({ hasText: /at least 8/ }).waitFor();
  assert((await page.getAttribute('#register-password', 'aria-invalid')) === 'true', 'password marked invalid');
  await page.fill('#register-password', password);
  await page.fill('#register-confirm', password);
  await shoot('02-sign-up');
  await page.click('#form-register button[type=submit]');
  await expectAccount();
  assert((await text('#tf-pill')) === 'Off', '2FA is off for a new account');
  assert((await text('#account-lead')).includes(email), 'signed in as the new account');
  await page.locator('#events-list .event').first().waitFor();
  await shoot('03-account-2fa-off');
});

await step('keeps the access token out of storage and survives a reload', async () => {
  const stored = await page.evaluate(() => ({
    session: Object.keys(sessionStorage),
    local: Object.keys(localStorage),
    values: [...Object.values(sessionStorage), ...Object.values(localStorage)],
  }));
  assert(stored.session.length === 1 && stored.session[0] === 'tessera.refreshToken', `sessionStorage: ${stored.session}`);
  assert(!stored.values.some((v) => /^eyJ/.test(v)), 'no JWT in web storage');
  await page.reload();
  await expectAccount();
  assert((await text('#account-lead')).includes(email), 'still signed in after reload');
});

await step('turn on 2FA: QR code, secret as text, confirm with a code', async () => {
  await page.click('#tf-start');
  await visible('#tf-enrol');
  const qrLoaded = await page.locator('#enrol-qr').evaluate((img) => img.complete && img.naturalWidth > 100);
  assert(qrLoaded, 'QR code image shown');
  secret = (await text('#enrol-secret')).replace(/\s+/g, '');
  assert(/^[A-Z2-7]{16,}$/.test(secret), `secret shown as base32 text: ${secret}`);
  assert((await page.getAttribute('#enrol-link', 'href')).startsWith('otpauth://totp/'), 'otpauth link');
  await shoot('04-enrol');
  // A wrong code first: the message appears next to the code field.
  const right = totpAt(secret, currentStep());
  const wrong = String((Number(right) + 500_000) % 1_000_000).padStart(6, '0');
  await page.fill('#enrol-code', wrong);
  await page.click('#form-enrol button[type=submit]');
  await page.locator('#enrol-code-error').filter({ hasText: "didn't work" }).waitFor();
  await page.fill('#enrol-code', await freshCode(secret));
  await page.click('#form-enrol button[type=submit]');
  await visible('#tf-codes');
});

await step('backup codes: shown once with a warning, copy and download', async () => {
  assert((await text('#tf-codes .notice')).includes('will not be shown again'), 'warning shown');
  backupCodes = await page.locator('#codes-list li').allInnerTexts();
  assert(backupCodes.length === 10 && backupCodes.every((c) => /^[a-z0-9]{5}-[a-z0-9]{5}$/i.test(c)), `10 codes: ${backupCodes}`);
  await shoot('05-backup-codes');
  await page.click('#codes-copy');
  await page.locator('#toast').filter({ hasText: 'copied' }).waitFor();
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  assert(backupCodes.every((c) => clipboard.includes(c)), 'codes copied to the clipboard');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#codes-download')]);
  assert(download.suggestedFilename() === 'tessera-backup-codes.txt', 'download file name');
  const file = fs.readFileSync(await download.path(), 'utf8');
  assert(backupCodes.every((c) => file.includes(c)) && file.includes(email), 'download holds every code');
  assert(await page.locator('#codes-done').isDisabled(), 'Done waits for the checkbox');
  await page.check('#codes-saved');
  await page.click('#codes-done');
  await visible('#tf-on');
  assert((await page.locator('#codes-list li').count()) === 0, 'codes removed from the page');
  assert((await text('#tf-pill')) === 'On', '2FA is on');
  assert((await text('#tf-codes-count')).startsWith('10 of 10'), 'ten codes left');
  await shoot('06-account-2fa-on');
});

await step('sign out, then sign in with a code (keyboard only)', async () => {
  await signOut();
  await page.focus('#login-identifier');
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await visible('#form-second');
  assert(await page.locator('#second-code').evaluate((el) => document.activeElement === el), 'code field focused');
  await shoot('07-second-step');
  await page.keyboard.type('000000');
  await page.keyboard.press('Enter');
  await page.locator('#second-code-error').filter({ hasText: "didn't work" }).waitFor();
  await shoot('08-second-step-error');
  await page.fill('#second-code', await freshCode(secret));
  await page.keyboard.press('Enter');
  await expectAccount();
  await page.locator('#events-list .event-title', { hasText: 'Signed in with two-factor authentication' }).first().waitFor();
});

await step('sign in with a backup code', async () => {
  await signOut();
  await passwordStep();
  await visible('#form-second');
  await page.click('#second-toggle');
  assert((await text('#second-code-label')) === 'Backup code', 'label switches to backup code');
  await page.fill('#second-code', backupCodes[0]);
  await page.click('#form-second button[type=submit]');
  await expectAccount();
  await page.locator('#tf-codes-count', { hasText: '9 of 10' }).waitFor();
});

await step('trust the device while signing in', async () => {
  await signOut();
  await passwordStep();
  await visible('#form-second');
  await page.click('#second-toggle');
  await page.fill('#second-code', backupCodes[1]);
  await page.check('#second-trust');
  await visible('#second-device-name');
  await page.fill('#second-device-name', 'E2E laptop');
  await shoot('09-second-step-trust');
  await page.click('#form-second button[type=submit]');
  await expectAccount();
  const device = page.locator('#devices-list .device', { hasText: 'E2E laptop' });
  await device.waitFor();
  assert((await device.innerText()).includes('This browser'), 'marked as this browser');
  for (const label of ['Type', 'Browser', 'IP', 'Location', 'Last used', 'Expires']) {
    assert((await device.innerText()).includes(label), `device shows ${label}`);
  }
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('tessera.trustedDevices') || '[]'));
  assert(stored.length === 1 && stored[0].token, 'device token kept in localStorage');
});

await step('sign in without a code on the trusted device', async () => {
  await signOut();
  await passwordStep();
  await expectAccount();
  await page.locator('#events-list .event-title', { hasText: 'Signed in from a trusted device' }).first().waitFor();
  await shoot('10-account-trusted-device');
  // The first screen of it, as in the README (docs/account-security.png).
  await page.screenshot({ path: path.join(SHOTS, 'readme-account-security.png') });
});

await step('regenerating codes asks for a fresh second factor', async () => {
  await page.click('#tf-regenerate');
  await visible('#confirm-dialog');
  await page.click('#confirm-ok');
  // Signed in by a trusted device: the API answers reauthentication_required.
  await visible('#reauth-dialog');
  await page.fill('#reauth-code', '111111');
  await page.click('#form-reauth button[type=submit]');
  await page.locator('#reauth-code-error').filter({ hasText: "didn't work" }).waitFor();
  await shoot('11-reauth', { fullPage: false });
  await page.fill('#reauth-code', backupCodes[2]);
  await page.click('#form-reauth button[type=submit]');
  await visible('#tf-codes');
  const fresh = await page.locator('#codes-list li').allInnerTexts();
  assert(fresh.length === 10 && !fresh.includes(backupCodes[3]), 'new codes replace the old');
  backupCodes = fresh;
  await page.check('#codes-saved');
  await page.click('#codes-done');
  await page.locator('#tf-codes-count', { hasText: '10 of 10' }).waitFor();
});

await step('the access token is refreshed before it expires', async () => {
  const before = refreshes.length;
  await page.waitForResponse((r) => r.url().endsWith('/v1/auth/refresh'), { timeout: (ACCESS_TTL + 5) * 1000 });
  assert(refreshes.length > before && refreshes.every((s) => s === 200), `refreshes: ${refreshes}`);
  await page.click('#events-refresh');
  await page.locator('#events-list .event').first().waitFor();
  assert(await page.locator('#view-account').isVisible(), 'still signed in');
});

await step('remove the trusted device', async () => {
  const device = page.locator('#devices-list .device', { hasText: 'E2E laptop' });
  await device.getByRole('button', { name: 'Remove E2E laptop' }).click();
  await visible('#devices-empty');
  const stored = await page.evaluate(() => localStorage.getItem('tessera.trustedDevices'));
  assert(stored === null, 'device token forgotten');
  await page.locator('#events-list .event-title', { hasText: 'Trusted device removed' }).first().waitFor();
});

await step('turn 2FA off with password and code', async () => {
  await page.click('#tf-disable-open');
  await visible('#form-disable');
  await page.fill('#disable-password', 'wrong password');
  await page.fill('#disable-code', backupCodes[0]);
  await page.click('#form-disable button[type=submit]');
  await page.locator('#disable-password-error').filter({ hasText: 'The password is not correct' }).waitFor();
  await shoot('12-turn-off');
  await page.fill('#disable-password', password);
  await page.fill('#disable-code', await freshCode(secret));
  await page.click('#form-disable button[type=submit]');
  await page.locator('#tf-pill', { hasText: 'Off' }).waitFor();
  await visible('#tf-off');
  await page.locator('#events-list .event-title', { hasText: 'Two-factor authentication turned off' }).first().waitFor();
  await shoot('13-account-2fa-off-again');
});

await step('change password', async () => {
  await page.fill('#password-current', 'not my password');
  await page.fill('#password-new', newPassword);
  await page.fill('#password-confirm', `${newPassword}!`);
  await page.click('#form-password button[type=submit]');
  await page.locator('#password-confirm-error').filter({ hasText: "don't match" }).waitFor();
  await page.fill('#password-confirm', newPassword);
  await page.click('#form-password button[type=submit]');
  await page.locator('#password-current-error').filter({ hasText: 'The current password is not correct' }).waitFor();
  await page.fill('#password-current', password);
  await page.click('#form-password button[type=submit]');
  await page.locator('#events-list .event-title', { hasText: 'Password changed' }).first().waitFor();
  assert((await page.inputValue('#password-new')) === '', 'form cleared');
});

await step('sign in with the new password needs no second step', async () => {
  await signOut();
  password = newPassword;
  await passwordStep();
  await expectAccount();
});

await step('no console errors, CSP violations or requests elsewhere', async () => {
  assert(problems.length === 0, problems.join('\n'));
});

await finish({ browser, server, shots: SHOTS });
