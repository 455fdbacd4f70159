// Browser tests of the console in headless Chromium against a real server with 3 real agents
// (tests/start-stack.sh, or SHOAL_URL + SHOAL_TOKEN + SHOAL_PASSWORD). They pin the scenarios: sign in;
// run a script on 3 hosts of which one fails; watch the groups update live; open a host's log;
// retry the failed host; terminate a long run; filter history by IP; switch language; sign out.
// Every main page is saved as a screenshot in web/test-artifacts/.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiClient, ARTIFACTS, consoleUrl, launchBrowser, startStack, waitFor, webHosts } from './lib.mjs';

const T = { timeout: 90_000 };

let stack;
let served;
let browser;
let page;
let api;
let hosts; // the 3 web agents, sorted by idx label
let base;

async function shot(name) {
  await page.waitForTimeout(300); // let animations settle
  // Toasts are transient; keep them out of the pictures.
  await page.evaluate(() => document.querySelectorAll('.ant-message-notice-wrapper, .ant-message-notice').forEach((n) => n.remove()));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** Replaces the CodeMirror document with `text`. */
async function setScript(text) {
  const editor = page.locator('.cm-content');
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

async function runScript({ name, script, selector = 'web=true', expectCount = 3 }) {
  await page.goto(`${base}/execute`);
  await page.getByTestId('task-name').fill(name);
  await page.getByTestId('target-selector').fill(selector);
  await page.getByTestId('target-total').filter({ hasText: String(expectCount) }).waitFor();
  await setScript(script);
  await page.getByTestId('run').first().click();
  await page.waitForURL(/\/jobs\/\d+$/);
  return Number(new URL(page.url()).pathname.split('/').pop());
}

async function jobStatus(id) {
  return (await api('GET', `/api/v1/jobs/${id}`)).job.status;
}

describe('console in a browser', () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack();
    api = apiClient(stack.url, stack.token);
    served = await consoleUrl(stack.url);
    base = served.url;
    hosts = await webHosts(api);
    assert.equal(hosts.length, 3, 'three web agents are enrolled');
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e));
  }, { timeout: 180_000 });

  after(async () => {
    await browser?.close();
    await served?.close();
    await stack?.stop();
  });

  test('sign in with the admin password, and the session persists', T, async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login/);
    await page.getByTestId('lang-switch').getByText('EN').click();
    await shot('login');
    // A wrong password is rejected with a translated message.
    await page.getByTestId('name-input').fill('admin');
    await page.getByTestId('password-input').fill('not-the-password');
    await page.getByTestId('sign-in').click();
    await page.locator('.shoal-error').getByText('Wrong user name or password').waitFor();
    await page.getByTestId('password-input').fill(stack.password);
    await page.getByTestId('sign-in').click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByTestId('stat-online').getByText('3').waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  });

  test('hosts: list, filter by label, detail with labels', T, async () => {
    await page.goto(`${base}/hosts`);
    await page.getByTestId('hosts-total').filter({ hasText: '3 hosts' }).waitFor();
    await shot('hosts');
    await page.getByTestId('hosts-selector').fill('idx=2');
    await page.getByTestId('hosts-total').filter({ hasText: '1 host' }).waitFor();
    await page.locator('.host-table .ant-table-row').first().click();
    await page.waitForURL(/\/hosts\/\d+$/);
    await page.getByText('idx=2').first().waitFor();
    // Edit labels: add one, and it shows among the host's labels.
    await page.getByTestId('edit-labels').click();
    await page.getByTestId('add-label').click();
    await page.getByTestId('label-key-0').fill('role');
    await page.getByTestId('label-value-0').fill('db');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Labels saved').waitFor();
    await page.getByTestId('label-tags').first().getByText('role=db').waitFor();
    await shot('host-detail');
  });

  test('dynamic group with a live preview', T, async () => {
    await page.goto(`${base}/groups`);
    await page.getByTestId('new-group').click();
    await page.getByTestId('group-name').fill('web-1-and-2');
    await page.getByTestId('group-selector').fill('web=true,idx in (1,2)');
    await page.getByTestId('group-preview').getByText('2 matching hosts').waitFor();
    await shot('group-editor');
    await page.getByTestId('group-save').click();
    await page.getByRole('cell', { name: 'web-1-and-2' }).waitFor();
  });

  let failingJob;
  test('run a script on 3 hosts of which one fails, watching the groups update live', T, async () => {
    const failing = hosts[2].id;
    await page.goto(`${base}/execute`);
    await page.getByTestId('target-selector').fill('web=true');
    await page.getByTestId('target-total').filter({ hasText: '3 hosts' }).waitFor();
    await setScript(
      `echo "starting"\nsleep 3\nif [ "$SHOAL_HOST_ID" = "${failing}" ] && [ "$SHOAL_ATTEMPT" = 0 ]; then echo "boom: disk full"; exit 3; fi\necho "all good"\n`,
    );
    await page.getByTestId('task-name').fill('e2e one of three fails');
    await shot('execute');
    await page.getByTestId('run').first().click();
    await page.waitForURL(/\/jobs\/\d+$/);
    failingJob = Number(new URL(page.url()).pathname.split('/').pop());

    // While the scripts sleep, one group holds the 3 running hosts.
    const groups = page.getByTestId('result-group');
    await page.locator('[data-testid="result-group"][data-status="7"]').getByTestId('group-count').filter({ hasText: '3 hosts' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.getByTestId('job-status').innerText(), 'Running');
    // Then, without a reload: a failed group with 1 host and a success group with 2.
    await page.locator('[data-testid="result-group"][data-status="104"]').getByTestId('group-count').filter({ hasText: '1 host' }).waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="result-group"][data-status="9"]').getByTestId('group-count').filter({ hasText: '2 hosts' }).waitFor();
    assert.equal(await groups.count(), 2);
    await page.getByTestId('job-status').getByText('Failed').waitFor();
    await page.getByTestId('status-counts').locator('[data-status="9"][data-count="2"]').waitFor();
    await page.getByTestId('sample-output').first().getByText('boom: disk full').waitFor();
    await shot('job');
  });

  test("open a failed host's log: search, wrap, download", T, async () => {
    const failed = page.locator('[data-testid="result-group"][data-status="104"]');
    await failed.getByTestId('copy-ips').click();
    await page.getByText('Copied 1 IP').waitFor();
    await failed.getByTestId('open-log').first().click();
    const content = page.getByTestId('log-content');
    await content.getByText('boom: disk full', { exact: false }).waitFor();
    await page.getByTestId('log-search').fill('boom');
    await page.getByTestId('log-matches').filter({ hasText: '1/1' }).waitFor();
    assert.equal(await content.locator('mark').count(), 1);
    await page.getByTestId('log-wrap').click();
    assert.match((await content.getAttribute('class')) ?? '', /nowrap/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('log-download').click()]);
    assert.match(download.suggestedFilename(), /\.log$/);
    const file = path.join(ARTIFACTS, 'downloaded.log');
    await download.saveAs(file);
    const { readFileSync } = await import('node:fs');
    assert.match(readFileSync(file, 'utf8'), /boom: disk full/);
    await shot('log');
    await page.keyboard.press('Escape');
  });

  test('a live log streams while the script runs', T, async () => {
    const id = await runScript({ name: 'e2e live log', script: 'for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 1; done\n', selector: `idx=1`, expectCount: 1 });
    await page.locator('[data-testid="result-group"][data-status="7"]').waitFor({ timeout: 20_000 });
    await page.getByTestId('open-log').first().click();
    const content = page.getByTestId('log-content');
    await content.getByText('tick 2', { exact: false }).waitFor({ timeout: 20_000 });
    const early = await content.innerText();
    assert.ok(!early.includes('tick 6'), 'the log is read while it grows');
    await content.getByText('tick 6', { exact: false }).waitFor({ timeout: 20_000 });
    await page.keyboard.press('Escape');
    await waitFor(async () => (await jobStatus(id)) === 3, 'the live-log job to succeed');
  });

  test('retry the failed host, and switch between attempts', T, async () => {
    await page.goto(`${base}/jobs/${failingJob}`);
    await page.getByTestId('retry-failed').click();
    await page.getByTestId('confirm-ok').click();
    // Attempt 2 re-runs only the failed host; the two others carry "succeeded earlier".
    await page.getByTestId('attempt-select').getByText('Attempt 2 (latest)').waitFor();
    await page.getByTestId('status-counts').locator('[data-status="3"][data-count="2"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('status-counts').locator('[data-status="9"][data-count="1"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('job-status').getByText('Success').waitFor({ timeout: 30_000 });
    // The first attempt still shows its failure.
    await page.getByTestId('attempt-select').click();
    await page.locator('.ant-select-item-option').filter({ hasText: 'Attempt 1' }).click();
    await page.locator('[data-testid="result-group"][data-status="104"]').waitFor();
  });

  test('terminate a long run', T, async () => {
    const id = await runScript({ name: 'e2e long run', script: 'echo sleeping\nsleep 300\n' });
    await page.locator('[data-testid="result-group"][data-status="7"]').waitFor({ timeout: 20_000 });
    await page.getByTestId('terminate').click();
    await page.getByTestId('confirm-ok').click();
    const status = await waitFor(async () => {
      const s = await jobStatus(id);
      return [8, 11].includes(s) ? s : null;
    }, 'the job to end terminated');
    await page.getByTestId('job-status').locator(`[data-status="${status}"]`).waitFor({ timeout: 20_000 });
    await page.getByTestId('terminate').waitFor({ state: 'detached' });
  });

  test('history: filter by host IP, run again', T, async () => {
    const ip = hosts[0].ip;
    await page.goto(`${base}/jobs`);
    await page.getByTestId('history-table').locator('.ant-table-row').first().waitFor();
    await page.getByTestId('history-ip').fill(ip);
    await page.waitForURL(new RegExp(`ip=${ip.replace(/\./g, '\\.')}`));
    await page.getByRole('link', { name: 'e2e one of three fails' }).first().waitFor();
    await shot('history');
    await page.getByTestId('history-ip').fill('203.0.113.254');
    await page.getByText('No executions').waitFor();
    await page.getByTestId('history-ip').fill('');
    // "Run again" prefills the script, settings and hosts.
    await page.goto(`${base}/jobs/${failingJob}`);
    await page.getByTestId('run-again').click();
    await page.waitForURL(/\/execute\?from=/);
    await page.getByTestId('target-total').filter({ hasText: '3 hosts' }).waitFor();
    await page.locator('.cm-content').getByText('boom: disk full', { exact: false }).waitFor();
  });

  test('overview shows counts, running jobs and failures', T, async () => {
    await page.goto(`${base}/`);
    await page.getByTestId('stat-online').getByText('3').waitFor();
    await page.getByText('e2e one of three fails').first().waitFor().catch(() => {});
    await shot('overview');
  });

  test('switch language: every label in Chinese, and back', T, async () => {
    await page.getByTestId('lang-switch').getByText('中文').click();
    await page.getByRole('heading', { name: '概览' }).waitFor();
    await page.getByRole('menuitem', { name: '执行历史' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: '概览' }).waitFor();
    await page.goto(`${base}/jobs/${failingJob}`);
    await page.getByTestId('job-status').getByText('执行成功').waitFor();
    await page.getByText('结果分组').waitFor();
    await shot('job-zh');
    // No English label is left on the page (names of jobs and hosts are data, not labels).
    const text = await page.locator('body').innerText();
    for (const word of ['Overview', 'Hosts', 'Retry', 'Result groups', 'Terminate', 'Refresh', 'Elapsed']) {
      assert.ok(!text.includes(word), `"${word}" is translated`);
    }
    await page.getByTestId('lang-switch').getByText('EN').click();
    await page.getByRole('menuitem', { name: 'History' }).waitFor();
  });

  test('API errors are shown, translated', T, async () => {
    await page.evaluate(() => localStorage.setItem('shoal.lang', 'en'));
    await page.goto(`${base}/jobs/999999`);
    await page.locator('.shoal-error').getByText('Not found').waitFor();
    await page.goto(`${base}/execute`);
    await page.getByTestId('target-selector').fill('bad key=(');
    await page.getByTestId('target-count').locator('.shoal-error').getByText('Invalid label selector', { exact: true }).waitFor();
  });

  test('sign out', T, async () => {
    await page.goto(`${base}/`);
    await page.getByTestId('sign-out').click();
    await page.waitForURL(/\/login/);
    await page.reload();
    await page.waitForURL(/\/login/);
  });
});
