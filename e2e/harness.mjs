// What every end-to-end test of the account security page needs: the real `tessera` binary
// on a fresh data dir and a free port, Debian's Chromium driven by playwright-core, a page
// that records what goes wrong in it, and a tiny runner whose last line is
// `N passed, N failed` (the exit code is non-zero on failure).
//
// Environment: TESSERA_BIN (default ../target/debug/tessera, else ../target/release/tessera),
// CHROMIUM (default /usr/bin/chromium).

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..');
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const log = (...args) => console.log(...args);

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

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

// Starts `tessera serve` on 127.0.0.1 and a free port, and waits for /healthz. The page is
// opened at http://HOST:PORT (`localhost` where passkeys are used: browsers refuse them on
// IP addresses).
export async function startServer({ host = '127.0.0.1', accessTtl, env = {} }) {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-e2e-'));
  const child = spawn(findBinary(), ['serve'], {
    env: {
      ...process.env,
      TESSERA_LISTEN: `127.0.0.1:${port}`,
      TESSERA_DATA_DIR: dataDir,
      TESSERA_DATABASE_URL: '',
      TESSERA_ACCESS_TOKEN_TTL_SECS: String(accessTtl),
      TESSERA_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const base = `http://${host}:${port}`;
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

// ---------------------------------------------------------------- TOTP (RFC 6238), independent of the server

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/[\s=]/g, '').toUpperCase()) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export function totpAt(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(number).padStart(6, '0');
}

// ---------------------------------------------------------------- the browser

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// The browser context of every test: desktop size, English, UTC, light colours.
export const CONTEXT = { viewport: DESKTOP, locale: 'en-US', timezoneId: 'UTC', colorScheme: 'light' };

// A page of `context` and the list of every console error, uncaught exception, CSP violation
// and request to another origin than `base` that happens in it.
export async function openPage(context, base) {
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems = [];
  page.on('console', (msg) => {
    // An API error answer is logged by the browser; the page shows it, so it is no problem.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource: the server responded with a status of 4')) {
      problems.push(`console: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(base) && !url.startsWith('data:') && !url.startsWith('blob:')) problems.push(`request elsewhere: ${url}`);
  });
  return { page, problems };
}

// Steps on the account page that every test takes.
export function pageSteps(page, shots) {
  const visible = (selector) => page.locator(selector).waitFor({ state: 'visible' });
  const text = (selector) => page.locator(selector).innerText();

  // The page at desktop and phone width: the whole page, or (with a dialog open) the window.
  async function shoot(name, { fullPage = true } = {}) {
    await page.evaluate(() => {
      document.getElementById('toast').hidden = true;
      if (!document.querySelector('dialog[open]')) window.scrollTo(0, 0);
    });
    await page.screenshot({ path: path.join(shots, `${name}-desktop.png`), fullPage });
    await page.setViewportSize(PHONE);
    await page.screenshot({ path: path.join(shots, `${name}-phone.png`), fullPage });
    await page.setViewportSize(DESKTOP);
  }

  async function expectAccount() {
    await visible('#view-account');
    await page.locator('#tf-pill').filter({ hasText: /\S/ }).waitFor();
  }

  async function signOut() {
    await page.click('#sign-out');
    await visible('#form-login');
  }

  return { visible, text, shoot, expectAccount, signOut };
}

// ---------------------------------------------------------------- a tiny runner

// Steps run in order; after a failure the rest are skipped, since each builds on the last.
export function runner() {
  const results = [];
  let broken = false;

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
      broken = true;
    }
  }

  // Closes the browser, stops the server, removes its data and exits with the count.
  async function finish({ browser, server, shots }) {
    await browser.close();
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server.child.once('exit', resolve));
    fs.rmSync(server.dataDir, { recursive: true, force: true });

    const count = (status) => results.filter((r) => r.status === status).length;
    if (count('failed')) log(`\nserver output:\n${server.output().slice(-4000)}`);
    log(`\nscreenshots in ${path.relative(ROOT, shots)}/`);
    const skipped = count('skipped');
    log(`${count('passed')} passed, ${count('failed')} failed${skipped ? `, ${skipped} skipped` : ''}`);
    process.exit(count('failed') || skipped ? 1 : 0);
  }

  return { step, finish };
}
