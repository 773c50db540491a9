// End-to-end test of a sign-in that must enrol a second factor first, on a server with
// `require_second_factor = "all"`: the real `tessera` binary on a fresh data dir and a free
// port, driven through Debian's Chromium with playwright-core.
//
//   cd e2e && npm ci && node enrolment.test.mjs
//
// The server, the browser and the runner are harness.mjs's (environment: TESSERA_BIN,
// CHROMIUM). Screenshots go to e2e/screenshots/enrolment/ at 1280x800 and 390x844. The last
// line is `N passed, N failed`; the exit code is non-zero on failure.

import fs from 'node:fs';
import path from 'node:path';
import { CONTEXT, HERE, assert, launchBrowser, log, openPage, pageSteps, runner, startServer, totpAt } from './harness.mjs';

const SHOTS = path.join(HERE, 'screenshots', 'enrolment');

const { step, finish } = runner();
const server = await startServer({ accessTtl: 900, env: { TESSERA_REQUIRE_SECOND_FACTOR: 'all' } });
log(`tessera at ${server.base} (data in ${server.dataDir})`);
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await launchBrowser();
const context = await browser.newContext(CONTEXT);
const { page, problems } = await openPage(context, server.base);
const { visible, text, shoot, expectAccount, signOut } = pageSteps(page, SHOTS);

const email = 'erin@example.com';
const password = 'correct horse battery staple';
let secret = '';

await step('a new account is asked to turn on two-factor authentication before it is signed in', async () => {
  await page.goto(server.base + '/');
  await page.click('#show-register');
  await page.fill('#register-email', email);
  await page.fill('#register-password', password);
  await page.fill('#register-confirm', password);
  await page.click('#form-register button[type=submit]');
  await visible('#form-enrol-signin');
  assert(await page.locator('#view-account').isHidden(), 'not signed in yet');
  const qrLoaded = await page.locator('#enrol-signin-qr').evaluate((img) => img.complete && img.naturalWidth > 100);
  assert(qrLoaded, 'QR code shown');
  secret = (await text('#enrol-signin-secret')).replace(/\s+/g, '');
  assert(/^[A-Z2-7]{32}$/.test(secret), `setup key shown as text, got ${secret}`);
  await shoot('01-enrol-to-sign-in');
});

await step('a wrong code is shown next to the field', async () => {
  const step30 = Math.floor(Date.now() / 30_000);
  const right = new Set([-1, 0, 1].map((d) => totpAt(secret, step30 + d)));
  const wrong = ['000000', '111111', '222222'].find((c) => !right.has(c));
  await page.fill('#enrol-signin-code', wrong);
  await page.click('#form-enrol-signin button[type=submit]');
  await page.locator('#enrol-signin-code-error').filter({ hasText: /didn't work/ }).waitFor();
});

await step('the right code turns 2FA on, signs in and shows the backup codes once', async () => {
  await page.fill('#enrol-signin-code', totpAt(secret, Math.floor(Date.now() / 30_000)));
  await page.click('#form-enrol-signin button[type=submit]');
  await expectAccount();
  await visible('#tf-codes');
  const codes = await page.locator('#codes-list li').allInnerTexts();
  assert(codes.length === 10, `ten backup codes, got ${codes.length}`);
  assert((await text('#account-lead')).includes(email), 'signed in as the new account');
  await shoot('02-signed-in-with-codes');
});

await step('signing in again asks for the second factor, not for enrolment', async () => {
  await page.check('#codes-saved');
  await page.click('#codes-done');
  await signOut();
  await page.fill('#login-identifier', email);
  await page.fill('#login-password', password);
  await page.click('#form-login button[type=submit]');
  await visible('#form-second');
});

await step('no console errors, CSP violations or requests elsewhere', async () => {
  assert(problems.length === 0, problems.join('\n'));
});

await finish({ browser, server, shots: SHOTS });
