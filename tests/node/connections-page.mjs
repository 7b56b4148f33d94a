// Drives the control plane's Connections page in Debian's Chromium with playwright-core,
// the way two people would: sign in at the organization's identity provider (the real
// oidc-provider), connect an upstream account, watch another tab update by itself, try
// a forged form, revoke, sign out. Screenshots of each state go to SCREENSHOT_DIR.
//
//   ADP_URL=http://127.0.0.1:PORT AS_ISSUER=http://127.0.0.1:PORT SCREENSHOT_DIR=dir \
//     node connections-page.mjs
//
// Prints JSON lines on stdout. At {"checkpoint": ...} it waits for one line on stdin,
// so the test can look at the control plane through its API in between. Exits non-zero
// (with failure.png) when anything is not as a person would expect.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import {
  checkpoint, closeInput, launch, say, shot as shotIn, throughProvider as through,
} from './page-helpers.mjs';

const adp = process.env.ADP_URL;
const issuer = process.env.AS_ISSUER;
const shots = process.env.SCREENSHOT_DIR ?? 'screenshots';
const provider = process.env.PROVIDER ?? 'github';
const providerName = process.env.PROVIDER_DISPLAY_NAME ?? 'GitHub (test)';
assert.ok(adp && issuer, 'set ADP_URL and AS_ISSUER');
mkdirSync(shots, { recursive: true });

const browser = await launch();

let current = null;
const shot = (page, name) => shotIn(page, shots, name);
const throughProvider = (page, login) => through(page, issuer, login);

async function signIn(context, login) {
  const page = await context.newPage();
  current = page;
  await page.goto(`${adp}/connections`);
  assert.ok(page.url().startsWith(issuer), `not sent to sign in: ${page.url()}`);
  await throughProvider(page, login);
  await page.waitForURL(`${adp}/connections`);
  await assertCard(page, 'not-connected', 'Not connected');
  assert.match(await page.locator('header').innerText(), new RegExp(`Signed in as\\s+${login}`));
  return page;
}

// the notice after a redirect (the script re-inserts it so screen readers announce it)
async function noticeText(page) {
  const notice = page.locator('#notice .notice');
  await notice.waitFor();
  return notice.innerText();
}

async function assertCard(page, status, label) {
  const card = page.locator(`#card-${provider}`);
  await card.waitFor();
  assert.equal(await card.getAttribute('data-status'), status);
  assert.match(await card.locator('.status').innerText(), new RegExp(label));
  assert.match(await card.locator('h2').innerText(), new RegExp(providerName.replace(/[()]/g, '\\$&')));
  return card;
}

try {
  // ---- alice signs in: one card, not connected ------------------------------------
  const alice = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await signIn(alice, 'alice');
  const card = await assertCard(page, 'not-connected', 'Not connected');
  assert.match(await card.innerText(), /Asks for[\s\S]*repo/);
  // the page is usable from the keyboard: skip link, then sign out, then connect
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Sign out');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), `connect-${provider}`);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await shot(page, '01-signed-in-not-connected');
  await page.setViewportSize({ width: 375, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `phone width scrolls sideways by ${overflow}px`);
  await shot(page, '01-phone-width');
  await page.setViewportSize({ width: 1100, height: 760 });

  // a second tab of alice's stays open: it must update by itself
  const other = await alice.newPage();
  await other.goto(`${adp}/connections`);
  await assertCard(other, 'not-connected', 'Not connected');

  // ---- connect: consent at the provider, back on the page, connected --------------
  await page.locator(`#connect-${provider}`).click();
  await throughProvider(page, 'alice');
  await page.waitForURL(`${adp}/connections#card-${provider}`);
  const connected = await assertCard(page, 'connected', 'Connected');
  assert.match(await connected.innerText(), /Granted access[\s\S]*repo/);
  assert.match(await noticeText(page), /account is connected/);
  await shot(page, '02-connected');
  await other.locator(`#card-${provider}[data-status="connected"]`).waitFor({ timeout: 15000 });
  say({ live_update: 'the other tab showed the connection without a reload' });
  await other.close();

  await checkpoint('alice-connected');

  // ---- an admin asked for more access meanwhile: the card says so, by itself ------
  const upgrade = page.locator(`#card-${provider}[data-status="upgrade"]`);
  await upgrade.waitFor({ timeout: 15000 });
  assert.match(await upgrade.locator('.status').innerText(), /Needs more access/);
  assert.match(await upgrade.innerText(), /also need read:org/);
  await shot(page, '03-needs-more-access');
  await page.locator(`#connect-${provider}`).click();
  await throughProvider(page, 'alice');
  await page.waitForURL(`${adp}/connections#card-${provider}`);
  const upgraded = await assertCard(page, 'connected', 'Connected');
  assert.match(await upgraded.innerText(), /Granted access[\s\S]*read:org/);
  await shot(page, '03-more-access-granted');

  // ---- forged requests change nothing ---------------------------------------------
  const noToken = await alice.request.post(`${adp}/connections/${provider}/revoke`, {
    form: {},
    maxRedirects: 0,
  });
  assert.equal(noToken.status(), 403, 'a POST without the CSRF token is refused');
  assert.match(await noToken.text(), /CSRF/);
  const wrongToken = await alice.request.post(`${adp}/connections/${provider}/revoke`, {
    form: { csrf: 'f'.repeat(64) },
    maxRedirects: 0,
  });
  assert.equal(wrongToken.status(), 403, 'a POST with a guessed CSRF token is refused');
  // a page on another origin that submits a form to the control plane as soon as it loads
  const forged = await alice.newPage();
  current = forged;
  const evil = 'http://127.0.0.1:9/prize';
  await forged.route(evil, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><title>You won</title><form method="post" action="${adp}/connections/${provider}/revoke">`
      + '<input type="hidden" name="csrf" value="guess"></form><script>document.forms[0].submit()</script>',
  }));
  const [forgedResponse] = await Promise.all([
    forged.waitForResponse((r) => r.url() === `${adp}/connections/${provider}/revoke`),
    forged.goto(evil),
  ]);
  assert.equal(forgedResponse.status(), 403, 'a cross-site form is refused');
  await forged.waitForLoadState('domcontentloaded');
  assert.match(await forged.locator('main').innerText(), /refused/);
  await shot(forged, '04-forged-post-refused');
  await forged.close();
  current = page;
  await page.reload();
  await assertCard(page, 'connected', 'Connected');

  // ---- bob does not see alice's connection ----------------------------------------
  const bob = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const bobPage = await signIn(bob, 'bob');
  await shot(bobPage, '05-second-user-not-connected');
  await bob.close();
  current = page;

  // ---- alice revokes, with a confirmation -----------------------------------------
  await page.locator(`#revoke-${provider}`).click();
  await page.waitForURL(`${adp}/connections/${provider}/revoke`);
  assert.match(await page.locator('h1').innerText(), /Revoke/);
  await shot(page, '06-confirm-revoke');
  await page.getByRole('button', { name: `Revoke ${providerName}` }).click();
  await page.waitForURL(`${adp}/connections`);
  assert.match(await noticeText(page), /accepted the revocation/);
  await assertCard(page, 'not-connected', 'Not connected');
  await shot(page, '07-revoked');

  // ---- sign out: the session ends at the server, not only in this browser ---------
  const session = (await alice.cookies(adp)).find((c) => c.name === 'adp_session');
  assert.ok(session, 'a session cookie while signed in');
  assert.ok(session.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Lax');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${adp}/connections/signed-out`);
  await shot(page, '08-signed-out');
  assert.ok(!(await alice.cookies(adp)).some((c) => c.name === 'adp_session'));
  const replayed = await alice.request.get(`${adp}/connections`, {
    headers: { cookie: `adp_session=${session.value}` },
    maxRedirects: 0,
  });
  assert.equal(replayed.status(), 303, 'the old session cookie no longer signs anyone in');
  assert.equal(replayed.headers().location, '/connections/sign-in?return_to=%2Fconnections');

  await alice.close();
  say({ done: true });
} catch (error) {
  console.error(error);
  if (current) await current.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
  closeInput();
}
