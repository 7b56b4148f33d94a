// What the browser scripts share: Debian's Chromium, JSON-line reports to the Rust
// test, checkpoints where the test looks at the control plane, screenshots, and a walk
// through the identity provider's (oidc-provider's dev) login and consent pages.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

export function say(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

// Reports `name` and waits for the test to answer `continue` on stdin.
export async function checkpoint(name) {
  say({ checkpoint: name });
  const { value, done } = await lines.next();
  assert.ok(!done && value.trim() === 'continue', `test said ${value} at ${name}`);
}

export function closeInput() {
  stdin.close();
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

export async function shot(page, dir, name) {
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
  say({ screenshot: `${name}.png` });
}

// Walks the identity provider's login and consent pages until the browser has left
// `issuer` (back at the control plane).
export async function throughProvider(page, issuer, login) {
  for (let step = 0; step < 10; step += 1) {
    await page.waitForLoadState('domcontentloaded');
    if (!page.url().startsWith(issuer)) return;
    const loginField = page.locator('input[name="login"]');
    if (await loginField.count()) {
      await loginField.fill(login);
      await page.locator('input[name="password"]').fill('any-password-works');
    }
    const before = page.url();
    await Promise.all([
      page.waitForURL((url) => url.href !== before, { waitUntil: 'domcontentloaded' }),
      page.locator('button[type="submit"]').first().click(),
    ]);
  }
  throw new Error(`still at the identity provider: ${page.url()}`);
}
