// Browser tests of accounts and roles in the console, against a real server with real agents
// (tests/start-stack.sh): signing in with a password (a wrong one is refused with a translated
// message; signing out ends the session), what a viewer sees (no way to run anything, a clear
// "not permitted" page on a direct link to the script page, no admin pages), and the audit log
// showing the sign-ins and the role binding made for the viewer.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiClient, ARTIFACTS, consoleUrl, launchBrowser, signIn, startStack } from './lib.mjs';

const T = { timeout: 90_000 };
const VIEWER = 'e2e-viewer';
const VIEWER_PASSWORD = 'viewer-password-1';

let stack;
let served;
let browser;
let page;
let api;
let base;

const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `access-${name}.png`) });

describe('accounts and roles in a browser', () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack({ AGENTS: '1' });
    api = apiClient(stack.url, stack.token);
    served = await consoleUrl(stack.url);
    base = served.url;
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e));
  }, { timeout: 180_000 });

  after(async () => {
    await browser?.close();
    await served?.close();
    await stack?.stop();
  });

  test('password sign-in: a wrong password is refused, the right one signs in, sign-out ends it', T, async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login/);
    await page.getByTestId('lang-switch').getByText('EN').click();
    await page.getByTestId('name-input').fill('admin');
    await page.getByTestId('password-input').fill('wrong-password');
    await page.getByTestId('sign-in').click();
    await page.getByTestId('sign-in-error').getByText('Wrong user name or password').waitFor();
    await shot('wrong-password');
    // In Chinese too.
    await page.getByTestId('lang-switch').getByText('中文').click();
    await page.getByTestId('sign-in-error').getByText('用户名或密码错误').waitFor();
    await page.getByTestId('lang-switch').getByText('EN').click();

    await page.getByTestId('password-input').fill(stack.password);
    await page.getByTestId('sign-in').click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.equal((await page.getByTestId('user-name').innerText()).trim(), 'admin');
    // The session is a cookie the page's scripts cannot read; the CSRF token is readable.
    const cookies = await browser.context.cookies(base);
    const session = cookies.find((c) => c.name === 'shoal_session');
    assert.ok(session, 'a session cookie is set');
    assert.equal(session.httpOnly, true, 'the session cookie is HttpOnly');
    assert.ok(cookies.some((c) => c.name === 'shoal_csrf'), 'a CSRF cookie is set');
    // An admin sees the admin pages.
    await page.locator('a[href="/users"]').waitFor();
    await page.locator('a[href="/audit"]').waitFor();

    await page.getByTestId('sign-out').click();
    await page.waitForURL(/\/login/);
    await page.reload();
    await page.waitForURL(/\/login/);
    await page.getByTestId('password-input').waitFor();
  });

  test('a viewer cannot run anything: no run button, and a direct link says not permitted', T, async () => {
    const user = await api('POST', '/api/v1/users', { name: VIEWER, password: VIEWER_PASSWORD, display_name: 'E2E viewer' });
    await api('PUT', '/api/v1/role-bindings', { user_id: user.id, scope_id: 1, role: 'viewer', host_selector: '' });
    // A job by the admin, for the viewer to look at.
    const hosts = await api('GET', '/api/v1/hosts?length=1');
    const job = await api('POST', '/api/v1/script-executions', {
      name: 'e2e-for-viewer',
      language: 'shell',
      script: 'echo hi\n',
      targets: { selector: `idx=${hosts.data[0].labels.idx}` },
    });

    await signIn(page, base, VIEWER_PASSWORD, VIEWER);
    assert.equal((await page.getByTestId('user-name').innerText()).trim(), VIEWER);
    // Reading is allowed; running, and the admin pages, are not offered.
    await page.locator('a[href="/hosts"]').waitFor();
    assert.equal(await page.locator('a[href="/execute"]').count(), 0, 'no link to the script page');
    assert.equal(await page.locator('a[href="/files"]').count(), 0, 'no link to file distribution');
    assert.equal(await page.locator('a[href="/users"]').count(), 0, 'no admin pages');

    await page.goto(`${base}/jobs/${job.job_instance_id}`);
    await page.getByText('e2e-for-viewer').first().waitFor();
    assert.equal(await page.getByTestId('run-again').isDisabled(), true, 'run again is disabled for a viewer');
    await page.locator('[data-permission="execute"]').first().hover();
    await page.getByText('Needs the "execute" permission').waitFor();

    await page.goto(`${base}/groups`);
    assert.equal(await page.getByTestId('new-group').isDisabled(), true, 'a viewer may not create groups');

    await page.goto(`${base}/execute`);
    await page.getByText('Not permitted').waitFor();
    assert.equal(await page.getByTestId('run').count(), 0, 'no run button on the script page');
    await shot('viewer-execute');
    await page.goto(`${base}/audit`);
    await page.getByText('Not permitted').waitFor();

    await page.getByTestId('sign-out').click();
    await page.waitForURL(/\/login/);
  });

  test('the audit log shows the sign-ins and the role binding', T, async () => {
    await signIn(page, base, stack.password);
    await page.goto(`${base}/audit`);
    const table = page.getByTestId('audit-table');
    await table.locator('.ant-table-row').first().waitFor();
    // The viewer's sign-in, and the admin's binding (made through the API with its token).
    await table.locator('.ant-table-row').filter({ hasText: 'auth.login' }).filter({ hasText: VIEWER }).first().waitFor();
    await table.locator('.ant-table-row').filter({ hasText: 'role.bind' }).first().waitFor();
    // Newest first.
    const firstAction = (await table.locator('.ant-table-row').first().locator('code').innerText()).trim();
    assert.equal(firstAction, 'auth.login', 'the newest record is the admin signing in just now');

    // Filtering by action keeps only those records.
    await page.getByTestId('audit-action').fill('role.bind');
    await page.getByTestId('audit-search').click();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid="audit-table"] .ant-table-row')];
      return rows.length > 0 && rows.every((r) => r.textContent.includes('role.bind'));
    });
    const href = await page.getByTestId('audit-export').getAttribute('href');
    assert.match(href, /^\/api\/web\/v1\/audit\/export\?.*action=role\.bind/);
    await shot('audit');
  });

  test('admin pages: a service account with a token, and a role binding with a live host preview', T, async () => {
    // Still signed in as admin from the audit test.
    await page.goto(`${base}/users`);
    await page.getByTestId('users-table').getByText(VIEWER).waitFor();
    await page.getByTestId('new-user').click();
    await page.locator('.ant-modal').getByText('Service account').click();
    await page.getByTestId('user-name-input').fill('e2e-robot');
    assert.equal(await page.getByTestId('user-password-input').count(), 0, 'no password for a service account');
    await page.getByTestId('create-user-ok').click();
    const robot = page.getByTestId('users-table').locator('.ant-table-row').filter({ hasText: 'e2e-robot' });
    await robot.waitFor();
    await robot.getByTestId('service-token').click();
    await page.getByTestId('token-name').fill('robot-ci');
    await page.getByTestId('create-token-ok').click();
    const secret = (await page.getByTestId('token-secret').innerText()).trim();
    await page.getByTestId('secret-done').click();
    // The token acts as the service account.
    const who = await fetch(`${stack.url}/api/v1/whoami`, { headers: { Authorization: `Bearer ${secret}` } }).then((r) => r.json());
    assert.equal(who.name, 'e2e-robot');
    assert.equal(who.kind, 'service');

    // Change the viewer to operator on idx=1 only; the preview follows the selector as it is typed.
    await page.goto(`${base}/scopes`);
    const row = page.getByTestId('bindings-table').locator('.ant-table-row').filter({ hasText: VIEWER });
    await row.getByText('Edit').click();
    await page.getByTestId('binding-role').click();
    await page.locator('.ant-select-item-option').filter({ hasText: 'Operator' }).click();
    await page.getByTestId('binding-selector').fill('idx=9');
    await page.getByTestId('binding-preview').getByText('Allows 0 hosts').waitFor();
    await page.getByTestId('binding-selector').fill('idx=1');
    await page.getByTestId('binding-preview').getByText('Allows 1 host').waitFor();
    await shot('binding');
    await page.getByTestId('binding-ok').click();
    await row.getByText('Operator').waitFor();
    await row.getByText('idx=1').waitFor();
    const bindings = await api('GET', '/api/v1/role-bindings?scope_id=1');
    const b = bindings.find((x) => x.user_name === VIEWER);
    assert.equal(b.role, 'operator');
    assert.equal(b.host_selector, 'idx=1');
  });
});
