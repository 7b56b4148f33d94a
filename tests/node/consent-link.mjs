// A consent link is for the person who asked for it. Drives Debian's Chromium against
// the control plane the way an attacker and a victim would:
//   1. bob, signed in, opens the link alice's agent got: refused, nothing bound;
//   2. alice opens the same link with no session: sign-in first, then the page names
//      her account, and Continue connects her;
//   3. a page on another site auto-submits a form to one of alice's links while she is
//      signed in: refused.
//
//   ADP_URL=… AS_ISSUER=… LINK=… FORGED_LINK=… SCREENSHOT_DIR=dir node consent-link.mjs
//
// Prints JSON lines; waits on stdin at each {"checkpoint": …}.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { checkpoint, closeInput, launch, say, shot, throughProvider } from './page-helpers.mjs';

const adp = process.env.ADP_URL;
const issuer = process.env.AS_ISSUER;
const link = process.env.LINK;
const forgedLink = process.env.FORGED_LINK;
const shots = process.env.SCREENSHOT_DIR ?? 'screenshots';
assert.ok(adp && issuer && link && forgedLink, 'set ADP_URL, AS_ISSUER, LINK and FORGED_LINK');
mkdirSync(shots, { recursive: true });

const browser = await launch();
let current = null;

async function signedIn(login) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  current = page;
  await page.goto(`${adp}/connections`);
  await throughProvider(page, issuer, login);
  await page.waitForURL(`${adp}/connections`);
  return { context, page };
}

try {
  // ---- 1. bob opens alice's link ---------------------------------------------------
  const bob = await signedIn('bob');
  const refused = await bob.page.goto(link);
  assert.equal(refused.status(), 403, 'another account is refused');
  assert.match(await bob.page.locator('h1').innerText(), /another account/);
  assert.match(await bob.page.locator('main').innerText(), /signed in as bob[\s\S]*Nothing was connected/);
  assert.equal(await bob.page.locator('form[method="post"] button').count(), 0, 'no Continue button');
  // pressing Continue anyway (a POST with bob's own CSRF token) changes nothing
  const csrf = await bob.page.evaluate(async () => {
    const page = await fetch('/connections');
    const text = await page.text();
    return /name="csrf" value="([0-9a-f]{64})"/.exec(text)?.[1];
  });
  assert.ok(csrf, 'bob has a CSRF token of his own');
  const pressed = await bob.context.request.post(link, { form: { csrf }, maxRedirects: 0 });
  assert.equal(pressed.status(), 403, "Continue on someone else's link is refused");
  await shot(bob.page, shots, '01-other-account-refused');
  await bob.context.close();
  await checkpoint('bob-refused');

  // ---- 2. alice opens it with no session: sign-in first, then her page -------------
  const alice = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await alice.newPage();
  current = page;
  await page.goto(link);
  assert.ok(page.url().startsWith(issuer), `not sent to sign in first: ${page.url()}`);
  await throughProvider(page, issuer, 'alice');
  await page.waitForURL(link);
  assert.match(await page.locator('.owner').innerText(), /your ADP account alice/);
  await shot(page, shots, '02-signed-in-then-consent-page');
  await page.getByRole('button', { name: /Continue to/ }).click();
  await throughProvider(page, issuer, 'alice');
  await page.waitForURL(/\/connections#card-/);
  assert.match(await page.locator('#notice .notice').innerText(), /account is connected/);
  await shot(page, shots, '03-connected');
  await checkpoint('alice-connected');

  // ---- 3. a cross-site page auto-submits a form to alice's other link --------------
  const evil = 'http://127.0.0.1:9/free-gift';
  const forged = await alice.newPage();
  current = forged;
  await forged.route(evil, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><title>Free gift</title><form method="post" action="${forgedLink}"></form>`
      + '<script>document.forms[0].submit()</script>',
  }));
  const [answer] = await Promise.all([
    forged.waitForResponse((r) => r.url() === forgedLink && r.request().method() === 'POST'),
    forged.goto(evil),
  ]);
  assert.equal(answer.status(), 403, 'a cross-site form is refused');
  await forged.waitForLoadState('domcontentloaded');
  assert.ok(!forged.url().startsWith(issuer), 'never sent to the provider');
  assert.match(await forged.locator('main').innerText(), /refused/);
  await shot(forged, shots, '04-cross-site-form-refused');
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
