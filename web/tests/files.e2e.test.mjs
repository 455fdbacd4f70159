// Browser test of file distribution against a real server and 2 real local agents
// (tests/start-stack.sh with AGENTS=2, or SHOAL_URL + SHOAL_TOKEN with agents labelled
// web=true,idx=1..2). It pins the console scenario: on the file page, upload a file
// (progress bar until done) and add an inline text file, pick the 2 agents and a target
// directory, start; the job page shows the file step live (rows downloading, under a download
// limit), ends in success, and its files table lists a success row per file per target; the
// files are on disk with the exact bytes; the per-host log drawer shows the download log.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiClient, ARTIFACTS, consoleUrl, launchBrowser, signIn, startStack } from './lib.mjs';

const T = { timeout: 120_000 };
const SIZE = 24 * 1024 * 1024; // six 4 MiB chunks
const LIMIT_MBPS = 6; // so the download takes about 4 s and is seen while it runs

let stack;
let served;
let browser;
let page;
let api;
let base;
let out;

async function shot(name) {
  await page.waitForTimeout(300);
  await page.evaluate(() => document.querySelectorAll('.ant-message-notice-wrapper, .ant-message-notice').forEach((n) => n.remove()));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

describe('file distribution in a browser', () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack({ AGENTS: '2' });
    api = apiClient(stack.url, stack.token);
    served = await consoleUrl(stack.url);
    base = served.url;
    const hosts = await api('GET', '/api/v1/hosts?selector=web%3Dtrue%2Cidx%20in%20(1%2C2)&status=online&length=10');
    assert.equal(hosts.data.length, 2, 'two web agents are online');
    out = mkdtempSync(path.join(tmpdir(), 'shoal-files-e2e-'));
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e));
    await signIn(page, base, stack.password);
  }, { timeout: 180_000 });

  after(async () => {
    await browser?.close();
    await served?.close();
    await stack?.stop();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  test('push an uploaded and an inline file to 2 agents, live, to success', T, async () => {
    const payload = randomBytes(SIZE);
    const conf = 'listen = 8080\nname = "shoal e2e" # ünïcode\n';
    const dir = path.join(out, 'dest');

    await page.getByRole('menuitem', { name: 'File distribution' }).click();
    await page.waitForURL(/\/files$/);
    await page.getByRole('heading', { name: 'Distribute files' }).waitFor();

    // An upload, with its progress bar, until the server holds it.
    await page.locator('input[type=file]').setInputFiles({ name: 'payload.bin', mimeType: 'application/octet-stream', buffer: payload });
    const upload = page.getByTestId('upload-source');
    await upload.getByText('payload.bin').waitFor();
    await page.locator('[data-testid="upload-source"][data-done="true"]').waitFor({ timeout: 60_000 });

    // An inline text file.
    await page.getByTestId('add-inline-source').click();
    await page.getByTestId('inline-name').fill('app.conf');
    await page.getByTestId('inline-content').fill(conf);

    // Starting without targets is refused on the page, before the server.
    await page.getByTestId('target-dir').fill(dir);
    await page.getByTestId('start-transfer').first().click();
    await page.getByTestId('files-problem').getByText('Pick at least one target').waitFor();

    const targets = page.getByTestId('file-targets');
    await targets.getByTestId('target-selector').fill('web=true,idx in (1,2)');
    await targets.getByTestId('target-total').filter({ hasText: '2 hosts' }).waitFor();
    const limit = page.getByTestId('download-limit');
    const limitInput = (await limit.evaluate((e) => e.tagName)) === 'INPUT' ? limit : limit.locator('input');
    await limitInput.fill(String(LIMIT_MBPS));
    await page.getByTestId('transfer-name').fill('e2e push two files');
    await shot('files');
    await page.getByTestId('start-transfer').first().click();
    await page.waitForURL(/\/jobs\/\d+$/);
    const jobId = Number(new URL(page.url()).pathname.split('/').pop());

    // Live: the files tab shows rows downloading while the job runs, without a reload.
    const table = page.getByTestId('file-table');
    await table.waitFor();
    await table.locator('[data-testid="file-row"][data-status="3"]').first().waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('job-status').innerText(), 'Running');
    await shot('job-files-running');

    // The end: success, a success row per file per target.
    await page.getByTestId('job-status').getByText('Success').waitFor({ timeout: 60_000 });
    await page.getByTestId('status-counts').locator('[data-status="9"][data-count="2"]').waitFor();
    const rows = table.locator('[data-testid="file-row"]');
    await table.locator('[data-testid="file-row"][data-status="4"]').nth(3).waitFor({ timeout: 10_000 });
    assert.equal(await rows.count(), 4);
    assert.equal(await table.locator('[data-testid="file-row"][data-status="4"]').count(), 4);
    await table.getByText('payload.bin').first().waitFor();
    await table.getByText('app.conf').first().waitFor();
    await shot('job-files');

    // The status filter goes to the server: no failed rows.
    await table.getByTestId('file-status-filter').click();
    await page.locator('.ant-select-item-option').filter({ hasText: 'Failed' }).click();
    await table.getByText('No file rows yet').waitFor();

    // Both files at the target directory, byte for byte (both agents share this disk).
    assert.ok(existsSync(path.join(dir, 'payload.bin')), 'payload.bin is at the target');
    assert.ok(readFileSync(path.join(dir, 'payload.bin')).equals(payload), 'payload.bin has the exact bytes');
    assert.equal(readFileSync(path.join(dir, 'app.conf'), 'utf8'), conf);

    // The per-host table and its log drawer (the target's download log) still work.
    await page.getByRole('tab', { name: 'All hosts' }).click();
    await page.getByTestId('open-log').first().click();
    await page.getByTestId('log-content').waitFor();
    await page.waitForFunction(() => (document.querySelector('[data-testid="log-content"]')?.textContent ?? '').trim().length > 0, null, { timeout: 20_000 });
    await page.keyboard.press('Escape');

    const detail = await api('GET', `/api/v1/jobs/${jobId}`);
    assert.equal(detail.steps[0].step.step_type, 'file');
    assert.equal(detail.job.status, 3);
  });
});
