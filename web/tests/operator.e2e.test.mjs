// Browser tests of the console as a bk-job operator uses it, in headless Chromium against a real
// server and 3 real agents (tests/start-stack.sh), at 1024 px and at 1440 px wide. They pin:
// result groups by status and exit code (one group for hosts whose output differs), split by
// identical output on request with a snippet in each header; after a retry what re-ran is open
// and "succeeded earlier" collapsed; the job page shows the script and settings that ran and
// never an environment value; a host whose agent is not connected says why it is "agent
// abnormal"; ANSI colours render as colours; job and step say the same word when terminated;
// unnamed jobs get a readable name; tables fit (no header or cell cut, no sideways page scroll,
// empty columns hidden); API tokens (secret shown once, revoke) and host revocation; a session
// that ends returns to sign-in without error pop-ups; file jobs can be run again.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiClient, ARTIFACTS, consoleUrl, launchBrowser, ROOT, signIn, startStack, waitFor, webHosts } from './lib.mjs';

const T = { timeout: 120_000 };

let stack;
let served;
let api;
let base;
let hosts; // the 3 web agents, sorted by idx label
const extraAgents = [];
const scratch = mkdtempSync(path.join(tmpdir(), 'shoal-operator-e2e-'));

async function finishedJob(id) {
  return waitFor(async () => {
    const d = await api('GET', `/api/v1/jobs/${id}`);
    return d.finished ? d : null;
  }, `job ${id} to finish`, 40_000);
}

async function runViaApi(body) {
  return api('POST', '/api/v1/script-executions', { language: 'shell', timeout: 120, ...body });
}

async function whoamiStatus(token) {
  const res = await fetch(`${stack.url}/api/v1/whoami`, { headers: { Authorization: `Bearer ${token}` } });
  return res.status;
}

/** Starts one more real agent (label extra=NAME) and waits until it is online; returns its host. */
async function startExtraAgent(name) {
  const state = path.join(scratch, `agent-${name}`);
  mkdirSync(state, { recursive: true });
  const child = spawn(
    path.join(ROOT, 'target/debug/shoal-agent'),
    [
      '--server', stack.agentAddr, '--server-name', 'localhost',
      '--ca', path.join(stack.data, 'server/ca.pem'),
      '--enroll-token-file', path.join(stack.data, 'server/enroll.token'),
      '--state-dir', state, '--label', `extra=${name}`,
    ],
    { env: { ...process.env, SHOAL_AGENT_HOSTNAME: `extra-${name}` }, stdio: 'ignore' },
  );
  extraAgents.push(child);
  const host = await waitFor(async () => {
    const r = await api('GET', `/api/v1/hosts?selector=extra%3D${name}&status=online`);
    return r.data[0];
  }, `agent ${name} to come online`);
  return { host, child };
}

/**
 * Asserts that the tables matched by `selector` fit: no header or (non-ellipsis) cell is cut, the
 * table does not scroll sideways, and neither does the page. Returns the header texts.
 */
async function assertFits(page, selector, what) {
  await page.locator(selector).first().waitFor();
  const r = await page.evaluate((sel) => {
    const doc = document.documentElement;
    const cut = [];
    const headers = [];
    let sideways = 0;
    for (const table of document.querySelectorAll(sel)) {
      for (const box of table.querySelectorAll('.ant-table-content, .ant-table-header, .ant-table-body')) {
        sideways = Math.max(sideways, box.scrollWidth - box.clientWidth);
      }
      for (const th of table.querySelectorAll('thead th')) {
        headers.push(th.innerText.trim());
        if (th.scrollWidth > th.clientWidth + 1) cut.push(`header "${th.innerText.trim()}"`);
      }
      for (const cell of table.querySelectorAll('tbody .ant-table-cell:not(.ant-table-cell-ellipsis), .ant-table-tbody-virtual .ant-table-cell:not(.ant-table-cell-ellipsis)')) {
        if (cell.scrollWidth > cell.clientWidth + 1) cut.push(`cell "${cell.innerText.trim()}"`);
      }
    }
    return { pageOverflow: doc.scrollWidth - doc.clientWidth, sideways, cut, headers };
  }, selector);
  assert.deepEqual(r.cut, [], `${what}: nothing is cut`);
  assert.ok(r.sideways <= 1, `${what}: the table does not scroll sideways (${r.sideways} px)`);
  assert.ok(r.pageOverflow <= 0, `${what}: the page does not scroll sideways (${r.pageOverflow} px)`);
  return r.headers;
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startStack({ force: true });
  api = apiClient(stack.url, stack.token);
  served = await consoleUrl(stack.url);
  base = served.url;
  hosts = await webHosts(api);
  assert.equal(hosts.length, 3, 'three web agents are enrolled');
}, { timeout: 180_000 });

after(async () => {
  for (const c of extraAgents) c.kill('SIGTERM');
  await served?.close();
  await stack?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

for (const width of [1024, 1440]) {
  describe(`operator walkthrough at ${width} px`, () => {
    let browser;
    let page;
    const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `operator-${width}-${name}.png`) });

    before(async () => {
      browser = await launchBrowser({ viewport: { width, height: 900 } });
      page = await browser.context.newPage();
      page.on('pageerror', (e) => console.error('page error:', e));
      await signIn(page, base, stack.password);
    }, { timeout: 60_000 });

    after(async () => {
      await browser?.close();
    });

    test('an unnamed job gets a readable name; groups by status and exit code, by output on request; ANSI colours', T, async () => {
      const script = `echo "I am host $SHOAL_HOST_ID"\nprintf '\\033[31mred alert\\033[0m plain\\n'\n`;
      const r = await runViaApi({ script, targets: { selector: 'web=true' } });
      assert.match(r.job_instance_name, /^quick script \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      await finishedJob(r.job_instance_id);
      // The API: one group by default, one per host by output, a clear error for a bad `by`.
      const step = r.step_instance_id;
      const byStatus = await api('GET', `/api/v1/steps/${step}/groups`);
      assert.equal(byStatus.by, 'status');
      assert.deepEqual(byStatus.groups.map((g) => [g.status, g.exit_code, g.host_count, g.digest]), [[9, 0, 3, null]]);
      assert.equal((await api('GET', `/api/v1/steps/${step}/groups?by=output`)).groups.length, 3);
      const bad = await fetch(`${stack.url}/api/v1/steps/${step}/groups?by=colour`, { headers: { Authorization: `Bearer ${stack.token}` } });
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).error.code, 'INVALID_ARGUMENT');

      await page.goto(`${base}/jobs/${r.job_instance_id}`);
      await page.getByTestId('job-name').getByText(r.job_instance_name).waitFor();
      const groups = page.getByTestId('result-group');
      await page.locator('[data-testid="result-group"][data-status="9"]').getByTestId('group-count').filter({ hasText: '3 hosts' }).waitFor();
      assert.equal(await groups.count(), 1);
      assert.equal(await page.getByTestId('group-snippet').count(), 0);
      // The hosts table of the open group fits and has no empty error column.
      const headers = await assertFits(page, '[data-testid="result-group"] [data-testid="task-table"]', 'hosts of a group');
      assert.ok(!headers.includes('Reason'), 'no empty reason column');
      // The sample output shows the colour, not the escape.
      const red = page.getByTestId('sample-output').locator('.ansi').filter({ hasText: 'red alert' });
      await red.waitFor();
      assert.equal(await red.evaluate((el) => getComputedStyle(el).color), 'rgb(205, 49, 49)');
      assert.ok(!(await page.getByTestId('sample-output').innerText()).includes('[31m'));
      await shot('groups-by-status');

      // By output: one group per host, each header with the first line of its output.
      await page.getByTestId('group-by-output').click();
      await waitFor(async () => (await groups.count()) === 3, 'three output groups');
      await waitFor(async () => (await page.getByTestId('group-snippet').count()) === 3, 'a snippet in every header');
      const snippets = await page.getByTestId('group-snippet').allInnerTexts();
      assert.equal(new Set(snippets).size, 3, `headers differ: ${snippets}`);
      for (const s of snippets) assert.match(s, /^I am /);
      await shot('groups-by-output');

      // The log viewer renders colours and drops escapes.
      await page.getByTestId('open-log').first().click();
      const content = page.getByTestId('log-content');
      const logRed = content.locator('.ansi').filter({ hasText: 'red alert' });
      await logRed.waitFor();
      assert.equal(await logRed.evaluate((el) => getComputedStyle(el).color), 'rgb(205, 49, 49)');
      assert.ok(!(await content.innerText()).includes('\u001b'));
      assert.ok(!(await content.innerText()).includes('[0m'));
      await page.keyboard.press('Escape');
    });

    test('the job page shows the script and settings that ran, never environment values', T, async () => {
      const r = await runViaApi({
        name: `e2e spec ${width}`,
        script: 'echo "spec check $1 $2"\n',
        params: "alpha 'b c'",
        env: { SECRET_TOKEN: 'hunter2-value' },
        workdir: '/tmp',
        targets: { selector: 'idx=1' },
      });
      await finishedJob(r.job_instance_id);
      await page.goto(`${base}/jobs/${r.job_instance_id}`);
      await page.getByTestId('spec-tab').click();
      const spec = page.getByTestId('step-spec');
      await spec.getByTestId('spec-language').getByText('shell').waitFor();
      await spec.getByTestId('spec-script').locator('.cm-content').getByText('echo "spec check $1 $2"').waitFor();
      assert.equal(await spec.getByTestId('spec-params').innerText(), "alpha 'b c'");
      assert.match(await spec.getByTestId('spec-env').innerText(), /SECRET_TOKEN=/);
      await spec.getByTestId('spec-targets').getByText('1 host').waitFor();
      await spec.getByTestId('spec-targets').getByText(hosts[0].ip).waitFor();
      // The script is read-only.
      assert.equal(await spec.locator('.cm-content').getAttribute('contenteditable'), 'false');
      assert.ok(!(await page.content()).includes('hunter2-value'), 'the environment value is not in the page');
      await shot('spec');
    });

    test('after a retry, the hosts that re-ran are open and "succeeded earlier" is collapsed', T, async () => {
      const failing = hosts[2].id;
      const r = await runViaApi({
        name: `e2e retry ${width}`,
        script: `if [ "$SHOAL_HOST_ID" = "${failing}" ] && [ "$SHOAL_ATTEMPT" = 0 ]; then echo nope; exit 3; fi\necho fine\n`,
        targets: { selector: 'web=true' },
      });
      await finishedJob(r.job_instance_id);
      await api('POST', `/api/v1/steps/${r.step_instance_id}/retry`, { mode: 'failed' });
      await waitFor(async () => (await api('GET', `/api/v1/jobs/${r.job_instance_id}`)).job.status === 3, 'the retry to succeed');
      await page.goto(`${base}/jobs/${r.job_instance_id}`);
      const reran = page.locator('[data-testid="result-group"][data-status="9"]');
      const carried = page.locator('[data-testid="result-group"][data-status="3"]');
      await carried.getByTestId('group-count').filter({ hasText: '2 hosts' }).waitFor();
      await reran.getByTestId('task-table').waitFor();
      assert.equal(await carried.getByTestId('task-table').count(), 0, 'succeeded earlier is collapsed');
      assert.equal(await carried.getByTestId('group-toggle').innerText(), 'Show hosts');
    });

    test('a terminated job and its step use the same word', T, async () => {
      const r = await runViaApi({ name: `e2e terminate ${width}`, script: 'sleep 300\n', targets: { selector: 'idx=1' } });
      await waitFor(async () => (await api('GET', `/api/v1/steps/${r.step_instance_id}/hosts`)).data[0]?.status === 7, 'the script to run');
      await api('POST', `/api/v1/jobs/${r.job_instance_id}/terminate`);
      await finishedJob(r.job_instance_id);
      await page.goto(`${base}/jobs/${r.job_instance_id}`);
      await page.getByTestId('job-status').getByText('Terminated').waitFor();
      assert.equal(await page.getByTestId('step-status').innerText(), 'Terminated');
    });

    test('a host whose agent is not connected says why; revoking a host', T, async () => {
      const { host, child } = await startExtraAgent(`w${width}`);
      child.kill('SIGTERM');
      await waitFor(async () => (await api('GET', `/api/v1/hosts/${host.id}`)).status !== 'online', 'the extra agent to go offline');
      const r = await runViaApi({ name: `e2e abnormal ${width}`, script: 'echo hi\n', targets: { host_ids: [host.id] } });
      assert.equal(r.abnormal_count, 1);
      await finishedJob(r.job_instance_id);
      const rows = await api('GET', `/api/v1/steps/${r.step_instance_id}/hosts`);
      assert.equal(rows.data[0].status, 1);
      assert.equal(rows.data[0].error, 'agent not connected when the job started');
      await page.goto(`${base}/jobs/${r.job_instance_id}`);
      const group = page.locator('[data-testid="result-group"][data-status="1"]');
      await group.getByTestId('task-error').getByText('agent not connected when the job started').waitFor();
      await assertFits(page, '[data-testid="result-group"] [data-testid="task-table"]', 'hosts with a reason');

      // Revoke the host from its page, confirmed.
      await page.goto(`${base}/hosts/${host.id}`);
      await page.getByTestId('revoke-host').click();
      await page.getByTestId('confirm-ok').click();
      await page.getByTestId('host-revoked').waitFor();
      assert.ok((await api('GET', `/api/v1/hosts/${host.id}`)).revoked_at, 'the host is revoked');
      assert.equal(await page.getByTestId('revoke-host').count(), 0);
    });

    test('a file job shows its settings and can be run again', T, async () => {
      const dir = path.join(scratch, `files-${width}`);
      const r = await api('POST', '/api/v1/file-transfers', {
        name: `e2e file ${width}`,
        file_source_list: [{ inline_content_base64: Buffer.from('hello\n').toString('base64'), name: `a-rather-long-file-name-for-the-table-${width}.txt` }],
        file_target_path: dir,
        targets: { selector: 'idx=1' },
        download_speed_limit: 5,
      });
      const done = await finishedJob(r.job_instance_id);
      assert.equal(done.job.status, 3, JSON.stringify(done.job));
      await page.goto(`${base}/jobs/${r.job_instance_id}`);
      const headers = await assertFits(page, '[data-testid="file-table"]', 'files table');
      assert.ok(!headers.includes('Error'), 'no empty error column');
      assert.ok(!headers.includes('Speed'), 'no speed column once nothing moves');
      const dest = page.getByTestId('file-table').locator('tbody td').filter({ hasText: `a-rather-long-file-name-for-the-table-${width}.txt` }).first();
      const destWidth = await dest.evaluate((el) => el.clientWidth);
      assert.ok(destWidth >= 150, `the destination column has room (${destWidth} px)`);
      await page.getByTestId('spec-tab').click();
      assert.equal(await page.getByTestId('spec-target-dir').innerText(), dir);
      assert.equal(await page.getByTestId('spec-download-limit').innerText(), '5 MB/s');

      await page.getByTestId('run-again').click();
      await page.waitForURL(/\/files\?from=\d+/);
      await page.getByTestId('files-from').getByText('Prefilled from job').waitFor();
      await waitFor(async () => (await page.getByTestId('target-dir').inputValue()) === dir, 'the target directory');
      assert.equal(await page.getByTestId('transfer-name').inputValue(), `e2e file ${width}`);
      await page.getByTestId('file-source').locator('[data-testid="upload-source"][data-done="true"]').waitFor();
      await page.getByTestId('file-targets').getByTestId('target-total').filter({ hasText: '1 host' }).waitFor();
      await shot('files-run-again');
      await page.getByTestId('start-transfer').first().click();
      await page.waitForURL((u) => /\/jobs\/\d+$/.test(u.pathname) && !u.pathname.endsWith(`/${r.job_instance_id}`));
      const again = Number(new URL(page.url()).pathname.split('/').pop());
      assert.equal((await finishedJob(again)).job.status, 3);
    });

    test('hosts, history and tokens tables fit', T, async () => {
      await page.goto(`${base}/hosts`);
      await page.getByTestId('host-cell').first().waitFor();
      await assertFits(page, '[data-testid="hosts-table"]', 'hosts');
      await shot('hosts');
      await page.goto(`${base}/jobs`);
      await page.getByTestId('history-table').locator('.ant-table-row').first().waitFor();
      await assertFits(page, '[data-testid="history-table"]', 'history');
      await shot('history');
      // A file job in history runs again on the files page.
      await page.getByTestId('history-name').fill(`e2e file ${width}`);
      await page.getByTestId('history-table').locator('.ant-table-row').first().getByTestId('history-run-again').click();
      await page.waitForURL(/\/files\?from=\d+/);
    });

    test('API tokens: the secret is shown once, and a token can be revoked', T, async () => {
      await page.goto(`${base}/tokens`);
      await page.getByTestId('new-token').click();
      await page.getByTestId('token-name').fill(`e2e-${width}`);
      await page.getByTestId('create-token-ok').click();
      const secret = (await page.getByTestId('token-secret').innerText()).trim();
      assert.match(secret, /^shoal/);
      assert.equal(await whoamiStatus(secret), 200);
      await page.getByTestId('secret-done').click();
      await page.getByTestId('token-secret').waitFor({ state: 'detached' });
      assert.ok(!(await page.content()).includes(secret), 'the secret is gone from the page');
      const row = page.getByTestId('tokens-table').locator('.ant-table-row').filter({ hasText: `e2e-${width}` });
      await row.locator('[data-state="active"]').waitFor();
      await assertFits(page, '[data-testid="tokens-table"]', 'tokens');
      await row.getByTestId('revoke-token').click();
      await page.getByTestId('confirm-ok').click();
      await row.locator('[data-state="revoked"]').waitFor();
      assert.equal(await whoamiStatus(secret), 401);
    });

    test('a session that ends returns to sign-in without error pop-ups', T, async () => {
      await page.goto(`${base}/hosts`);
      await page.getByTestId('host-cell').first().waitFor();
      // The admin's sessions end on the server (as "sign out everywhere" from elsewhere would).
      const me = await api('GET', '/api/v1/whoami');
      await api('POST', `/api/v1/users/${me.user_id}/sessions/revoke`);
      // The script page loads groups and hosts: every request is refused now.
      await page.locator('a[href="/execute"]').click();
      await page.waitForURL(/\/login/);
      await page.getByText('Your session ended').waitFor();
      await page.waitForLoadState('networkidle');
      assert.equal(await page.locator('.ant-notification-notice').count(), 0, 'no error pop-up on the sign-in page');
      await shot('signed-out');
    });
  });
}
