// Browser test of single sign-on: a real OpenID Connect provider (tests/oidc, the certified
// `oidc-provider`) and a real server configured for it. The sign-in page offers the provider's
// button; the provider's own login and consent pages are filled in; the browser comes back to
// the console signed in as the provider's user, with the role its group maps to (alice is in
// "ops": operator in the default scope, outside production), so she may run scripts but sees
// no admin pages.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, ROOT, launchBrowser, startStack } from './lib.mjs';

const T = { timeout: 120_000 };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startProvider(port, redirect) {
  const child = spawn('node', ['provider.mjs', String(port)], {
    cwd: path.join(ROOT, 'tests/oidc'),
    env: { ...process.env, OIDC_CLIENT_ID: 'shoal-e2e', OIDC_CLIENT_SECRET: 'e2e-secret-5b1c', OIDC_REDIRECT_URI: redirect },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the provider did not start:\n${err}`)), 30_000);
    child.stdout.on('data', (d) => {
      if (String(d).includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`the provider exited with ${code}:\n${err}`)));
  });
  return child;
}

let provider;
let stack;
let browser;
let page;

describe('single sign-on in a browser', () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const [idpPort, httpPort] = [await freePort(), await freePort()];
    const redirect = `http://127.0.0.1:${httpPort}/api/web/v1/auth/oidc/callback`;
    provider = await startProvider(idpPort, redirect);
    const dir = mkdtempSync(path.join(tmpdir(), 'shoal-sso-'));
    const secret = path.join(dir, 'secret');
    writeFileSync(secret, 'e2e-secret-5b1c\n', { mode: 0o600 });
    stack = await startStack({
      AGENTS: '1',
      HTTP_PORT: String(httpPort),
      force: true,
      SERVER_ARGS: [
        `--oidc-issuer http://127.0.0.1:${idpPort}`,
        '--oidc-client-id shoal-e2e',
        `--oidc-client-secret-file ${secret}`,
        `--oidc-redirect-url ${redirect}`,
        '--oidc-scope groups',
        '--oidc-group-role ops=operator@default:env!=prod',
        '--oidc-label Example-IdP',
      ].join(' '),
    });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e));
  }, { timeout: 180_000 });

  after(async () => {
    await browser?.close();
    await stack?.stop();
    provider?.kill();
  });

  test('signs in through the provider and gets the role of its group', T, async () => {
    await page.goto(`${stack.url}/login`);
    await page.evaluate(() => localStorage.setItem('shoal.lang', 'en'));
    await page.reload();
    const sso = page.getByTestId('sign-in-sso');
    await sso.waitFor();
    assert.match(await sso.innerText(), /Example-IdP/);
    await sso.click();
    // The provider's own pages: its development login form, then consent.
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('anything');
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').waitFor();
    await page.locator('button[type="submit"]').click();
    // Back in the console, signed in as alice.
    await page.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: 30_000 });
    assert.equal((await page.getByTestId('user-name').innerText()).trim(), 'alice');
    await page.screenshot({ path: path.join(ARTIFACTS, 'sso-signed-in.png') });
    // An operator: may run scripts, sees no admin pages.
    await page.locator('a[href="/execute"]').waitFor();
    assert.equal(await page.locator('a[href="/users"]').count(), 0);
    const who = await page.evaluate(async () => (await fetch('/api/web/v1/whoami')).json());
    assert.equal(who.via, 'session');
    assert.equal(who.scopes[0].role, 'operator');
    assert.equal(who.scopes[0].host_selector, 'env!=prod');
  });

  test('a failed sign-on comes back to the sign-in page with the reason', T, async () => {
    await page.context().clearCookies();
    await page.goto(`${stack.url}/api/web/v1/auth/oidc/callback?code=forged&state=forged`);
    await page.getByTestId('sso-error').waitFor();
    assert.match(await page.getByTestId('sso-error').innerText(), /Single sign-on did not succeed/);
  });
});
