// End-to-end test of passkeys on the account security page: the real `tessera` binary on a
// fresh data dir and a free port, driven through Debian's Chromium with playwright-core and a
// virtual authenticator (Chrome DevTools Protocol `WebAuthn` domain: internal transport,
// resident keys, user verification). The page is opened at http://localhost:PORT, the
// relying party of the default settings (browsers refuse passkeys on IP addresses).
//
//   cd e2e && npm ci && node passkeys.test.mjs
//
// Environment: TESSERA_BIN (default ../target/debug/tessera, else ../target/release/tessera),
// CHROMIUM (default /usr/bin/chromium). Screenshots go to e2e/screenshots/ at 1280x800 and
// 390x844. The last line is `N passed, N failed`; the exit code is non-zero on failure.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const SHOTS = path.join(HERE, 'screenshots', 'passkeys');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const ACCESS_TTL = 900;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- the server

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function findBinary() {
  if (process.env.TESSERA_BIN) return process.env.TESSERA_BIN;
  for (const profile of ['debug', 'release']) {
    const candidate = path.join(ROOT, 'target', profile, 'tessera');
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error('no tessera binary: run `cargo build` first or set TESSERA_BIN');
}

async function startServer() {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-e2e-'));
  const child = spawn(findBinary(), ['serve'], {
    env: {
      ...process.env,
      TESSERA_LISTEN: `127.0.0.1:${port}`,
      TESSERA_DATA_DIR: dataDir,
      TESSERA_DATABASE_URL: '',
      TESSERA_ACCESS_TOKEN_TTL_SECS: String(ACCESS_TTL),
      TESSERA_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const base = `http://localhost:${port}`;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`tessera exited early:\n${output}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) return { base, child, dataDir, output: () => output };
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  child.kill('SIGTERM');
  throw new Error(`tessera did not start:\n${output}`);
}

// ---------------------------------------------------------------- a tiny runner

const results = [];
let broken = false;
const log = (...args) => console.log(...args);

async function step(name, fn) {
  if (broken) {
    results.push({ name, status: 'skipped' });
    log(`- skipped: ${name}`);
    return;
  }
  const started = Date.now();
  try {
    await fn();
    results.push({ name, status: 'passed' });
    log(`ok ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    results.push({ name, status: 'failed' });
    log(`FAILED ${name}\n${String(err && err.stack ? err.stack : err).replace(/^/gm, '    ')}`);
    broken = true; // later steps build on this one
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

// ---------------------------------------------------------------- the test

const server = await startServer();
log(`tessera at ${server.base} (data in ${server.dataDir})`);
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-US', timezoneId: 'UTC', colorScheme: 'light' });
const page = await context.newPage();
page.setDefaultTimeout(10_000);

const problems = [];
page.on('console', (msg) => {
  if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource: the server responded with a status of 4')) {
    problems.push(`console: ${msg.text()}`);
  }
});
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
page.on('request', (req) => {
  const url = req.url();
  if (!url.startsWith(server.base) && !url.startsWith('data:') && !url.startsWith('blob:')) problems.push(`request elsewhere: ${url}`);
});

// A platform authenticator that holds discoverable credentials and verifies its user.
const cdp = await context.newCDPSession(page);
await cdp.send('WebAuthn.enable');
const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
  options: {
    protocol: 'ctap2',
    transport: 'internal',
    hasResidentKey: true,
    hasUserVerification: true,
    isUserVerified: true,
    automaticPresenceSimulation: true,
  },
});
const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;

async function shoot(name) {
  await page.evaluate(() => {
    document.getElementById('toast').hidden = true;
    if (!document.querySelector('dialog[open]')) window.scrollTo(0, 0);
  });
  await page.screenshot({ path: path.join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: path.join(SHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

const visible = (selector) => page.locator(selector).waitFor({ state: 'visible' });
const text = (selector) => page.locator(selector).innerText();

async function expectAccount() {
  await visible('#view-account');
  await page.locator('#tf-pill').filter({ hasText: /\S/ }).waitFor();
}

async function signOut() {
  await page.click('#sign-out');
  await visible('#form-login');
}

const email = 'pat@example.com';
const password = 'correct horse battery staple';

await step('sign up on http://localhost', async () => {
  await page.goto(server.base + '/');
  await visible('#form-login');
  assert(await page.locator('#passkey-signin').isVisible(), 'passkey sign-in offered');
  assert((await page.getAttribute('#login-identifier', 'autocomplete')).includes('webauthn'), 'passkey autofill on the identifier');
  await page.click('#show-register');
  await page.fill('#register-email', email);
  await page.fill('#register-password', password);
  await page.fill('#register-confirm', password);
  await page.click('#form-register button[type=submit]');
  await expectAccount();
  await visible('#passkeys-empty');
});

await step('add a passkey: the first second factor shows backup codes', async () => {
  await page.fill('#passkey-name', 'E2E laptop');
  await page.click('#passkey-add');
  await visible('#tf-codes');
  const codes = await page.locator('#codes-list li').allInnerTexts();
  assert(codes.length === 10, `10 backup codes: ${codes}`);
  await page.check('#codes-saved');
  await page.click('#codes-done');
  await visible('#tf-on');
  assert((await text('#tf-pill')) === 'On', '2FA is on');
  assert((await text('#tf-method-title')) === 'Passkeys', 'the second factor is a passkey');
  const item = page.locator('#passkeys-list .passkey', { hasText: 'E2E laptop' });
  await item.waitFor();
  assert((await item.innerText()).includes('Not yet'), 'never used yet');
  const held = await credentials();
  assert(held.length === 1 && held[0].isResidentCredential, `one discoverable credential: ${JSON.stringify(held)}`);
  await page.locator('#events-list .event-title', { hasText: 'Passkey added: E2E laptop' }).first().waitFor();
  await shoot('01-passkey-added');
});

await step("sign out: the browser's passkey autofill signs straight back in", async () => {
  // The sign-in form asks for a passkey with conditional mediation (autofill); the virtual
  // authenticator answers it at once, as a person picking the passkey from autofill would.
  await signOut();
  await expectAccount();
  assert((await text('#account-lead')).includes(email), 'signed in as the passkey owner');
  await page.locator('#events-list .event-title', { hasText: 'Signed in with a passkey' }).first().waitFor();
  const used = page.locator('#passkeys-list .passkey', { hasText: 'E2E laptop' });
  assert(!(await used.innerText()).includes('Not yet'), 'last use recorded');
});

await step('without autofill, the passkey button signs in with no password', async () => {
  // From here on the browser offers no autofill, so the sign-in form stays put.
  await page.addInitScript(() => {
    PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
  await page.reload();
  await expectAccount();
  await signOut();
  await shoot('02-sign-in');
  await page.click('#passkey-signin');
  await expectAccount();
  const signIns = await page.locator('#events-list .event-title', { hasText: 'Signed in with a passkey' }).count();
  assert(signIns >= 2, `two passkey sign-ins listed, got ${signIns}`);
});

await step('a password sign-in asks for the passkey as the second step', async () => {
  await signOut();
  await page.fill('#login-identifier', email);
  await page.fill('#login-password', password);
  await page.click('#form-login button[type=submit]');
  await visible('#form-second');
  await visible('#second-passkey');
  assert((await text('#second-code-label')) === 'Backup code', 'no authenticator app: the code field takes backup codes');
  await shoot('03-second-step');
  await page.click('#second-passkey');
  await expectAccount();
  await page.locator('#events-list .event-title', { hasText: 'Signed in with a passkey as the second step' }).first().waitFor();
});

await step('rename the passkey', async () => {
  await page.getByRole('button', { name: 'Rename E2E laptop' }).click();
  await page.fill('.passkey-rename input', 'Work laptop');
  await page.click('.passkey-rename button[type=submit]');
  await page.locator('#passkeys-list .passkey-name', { hasText: 'Work laptop' }).waitFor();
});

await step('remove the passkey: the last second factor, so 2FA goes off', async () => {
  await page.getByRole('button', { name: 'Remove Work laptop' }).click();
  await visible('#confirm-dialog');
  assert((await text('#confirm-text')).includes('last passkey'), 'warned that it is the last');
  await page.click('#confirm-ok');
  await visible('#passkeys-empty');
  await page.locator('#tf-pill', { hasText: 'Off' }).waitFor();
  await page.locator('#events-list .event-title', { hasText: 'Passkey removed' }).first().waitFor();
  await shoot('04-passkey-removed');
});

await step('the removed passkey no longer signs in', async () => {
  await signOut();
  await page.click('#passkey-signin');
  await page.locator('#form-login .form-error').filter({ hasText: /wasn't accepted/ }).waitFor();
});

await step('no console errors, CSP violations or requests elsewhere', async () => {
  assert(problems.length === 0, problems.join('\n'));
});

await browser.close();
server.child.kill('SIGTERM');
await new Promise((resolve) => server.child.once('exit', resolve));
fs.rmSync(server.dataDir, { recursive: true, force: true });

const count = (status) => results.filter((r) => r.status === status).length;
if (count('failed')) log(`\nserver output:\n${server.output().slice(-4000)}`);
log(`\nscreenshots in ${path.relative(ROOT, SHOTS)}/`);
const skipped = count('skipped');
log(`${count('passed')} passed, ${count('failed')} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(count('failed') || skipped ? 1 : 0);
