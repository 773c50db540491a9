// End-to-end test of passkeys on the account security page: the real `tessera` binary on a
// fresh data dir and a free port, driven through Debian's Chromium with playwright-core and a
// virtual authenticator (Chrome DevTools Protocol `WebAuthn` domain: internal transport,
// resident keys, user verification). The page is opened at http://localhost:PORT, the
// relying party of the default settings (browsers refuse passkeys on IP addresses).
//
//   cd e2e && npm ci && node passkeys.test.mjs
//
// The server, the browser and the runner are harness.mjs's (environment: TESSERA_BIN,
// CHROMIUM). Screenshots go to e2e/screenshots/passkeys/ at 1280x800 and 390x844. The last
// line is `N passed, N failed`; the exit code is non-zero on failure.

import fs from 'node:fs';
import path from 'node:path';
import { CONTEXT, HERE, assert, launchBrowser, log, openPage, pageSteps, runner, startServer } from './harness.mjs';

const SHOTS = path.join(HERE, 'screenshots', 'passkeys');
const ACCESS_TTL = 900;

// ---------------------------------------------------------------- the test

const { step, finish } = runner();
const server = await startServer({ host: 'localhost', accessTtl: ACCESS_TTL });
log(`tessera at ${server.base} (data in ${server.dataDir})`);
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await launchBrowser();
const context = await browser.newContext(CONTEXT);
const { page, problems } = await openPage(context, server.base);

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

const { visible, text, shoot, expectAccount, signOut } = pageSteps(page, SHOTS);

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
  // So the form may be gone again before it can be seen: the proof of the round trip is the
  // passkey sign-in in the event log (the account had none before), not the form.
  await page.click('#sign-out');
  await page.locator('#events-list .event-title', { hasText: 'Signed in with a passkey' }).first().waitFor();
  await expectAccount();
  assert((await text('#account-lead')).includes(email), 'signed in as the passkey owner');
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

await finish({ browser, server, shots: SHOTS });
