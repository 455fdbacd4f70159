// Console benchmark with 10,000 simulated hosts (not a timed test; prints a Markdown table).
//
// Starts a release server plus `shoal-agent simulate --count N` through start-stack.sh (or uses
// SHOAL_URL + SHOAL_TOKEN + SHOAL_PASSWORD), runs a script on every simulated host through the API, then in
// headless Chromium measures:
//   - the execution page: first render (job name painted) and time until result groups show;
//   - the hosts page: first render (first row of data) and frame times while scrolling
//     (requestAnimationFrame deltas), including jumps deep into the list;
//   - how many host rows the browser received, per response and in total (response interception).
//
// Env: BENCH_HOSTS (default 10000), BENCH_RUNS (default 5), SHOAL_BIN / SHOAL_AGENT_BIN
// (default target/release/...), BENCH_JSON=path (also write the raw figures as JSON).

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { apiClient, ARTIFACTS, consoleUrl, launchBrowser, ROOT, signIn, startStack } from './lib.mjs';

const N = Number(process.env.BENCH_HOSTS ?? 10000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

// Records, in page time (ms since navigation start), when each watched selector first appears.
const MARKS_SCRIPT = `
  window.__marks = {};
  window.__watch = {
    jobName: '[data-testid="job-name"]',
    groups: '[data-testid="result-group"]',
    hostRow: '.host-table [data-testid="host-cell"]',
  };
  const check = () => {
    for (const [k, sel] of Object.entries(window.__watch)) {
      if (window.__marks[k] === undefined && document.querySelector(sel)) window.__marks[k] = performance.now();
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, attributes: false });
`;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p))] : NaN;
}
const f = (x) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'n/a');

async function waitMark(page, key, timeout = 30_000) {
  await page.waitForFunction((k) => window.__marks && window.__marks[k] !== undefined, key, { timeout });
  return page.evaluate((k) => window.__marks[k], key);
}

function rowCounter(page) {
  const stats = { responses: 0, rows: 0, maxRows: 0, urls: [] };
  page.on('response', async (res) => {
    const u = new URL(res.url());
    if (!/^\/api\/v1\/(hosts|steps\/\d+\/hosts)$/.test(u.pathname)) return;
    try {
      const body = await res.json();
      const n = Array.isArray(body.data) ? body.data.length : 0;
      stats.responses += 1;
      stats.rows += n;
      stats.maxRows = Math.max(stats.maxRows, n);
      stats.urls.push(`${u.pathname}${u.search} -> ${n}`);
    } catch {
      /* not JSON (aborted) */
    }
  });
  return stats;
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const t0 = Date.now();
  const stack = await startStack({
    SHOAL_BIN: process.env.SHOAL_BIN ?? path.join(ROOT, 'target/release/shoal'),
    SHOAL_AGENT_BIN: process.env.SHOAL_AGENT_BIN ?? path.join(ROOT, 'target/release/shoal-agent'),
    AGENTS: '0',
    SIMULATE: String(N),
    READY_TIMEOUT: String(Math.max(120, N / 50)),
  });
  console.error(`stack ready with ${N} simulated hosts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const api = apiClient(stack.url, stack.token);
  const served = await consoleUrl(stack.url);
  console.error(served.proxied ? `serving web/dist from ${served.url} (the server's embedded console is another build)` : 'the server serves this console build');
  const browser = await launchBrowser();
  const results = {};
  try {
    // One execution on every simulated host.
    const started = Date.now();
    const exec = await api('POST', '/api/v1/script-executions', { name: 'bench', language: 'shell', script: 'echo ok\n', targets: { selector: 'sim=true' } });
    for (;;) {
      const d = await api('GET', `/api/v1/jobs/${exec.job_instance_id}`);
      if (d.finished) break;
      if (Date.now() - started > 300_000) throw new Error('the bench job did not finish');
      await new Promise((r) => setTimeout(r, 250));
    }
    results.jobHosts = exec.host_count;
    results.jobSeconds = (Date.now() - started) / 1000;
    console.error(`job ${exec.job_instance_id} on ${exec.host_count} hosts finished in ${results.jobSeconds} s`);

    const ctx = browser.context;
    // One sign-in: the session cookie is shared by every page of the context.
    const login = await ctx.newPage();
    await signIn(login, served.url, stack.password);
    await login.close();
    await ctx.addInitScript(() => localStorage.setItem('shoal.lang', 'en'));
    await ctx.addInitScript(MARKS_SCRIPT);

    // Execution page.
    const execFirst = [];
    const execGroups = [];
    const execRows = [];
    for (let i = 0; i < RUNS; i++) {
      const page = await ctx.newPage();
      const rows = rowCounter(page);
      await page.goto(`${served.url}/jobs/${exec.job_instance_id}`);
      execFirst.push(await waitMark(page, 'jobName'));
      execGroups.push(await waitMark(page, 'groups'));
      await page.waitForSelector('[data-testid="task-table"] .ant-table-row');
      await page.waitForTimeout(300);
      execRows.push({ ...rows });
      if (i === RUNS - 1) await page.screenshot({ path: path.join(ARTIFACTS, 'job-10k.png') });
      await page.close();
    }
    results.exec = { first: execFirst, groups: execGroups, rows: execRows };

    // Hosts page.
    const hostsFirst = [];
    const frames = [];
    let hostRows = null;
    for (let i = 0; i < RUNS; i++) {
      const page = await ctx.newPage();
      const rows = rowCounter(page);
      await page.goto(`${served.url}/hosts`);
      hostsFirst.push(await waitMark(page, 'hostRow'));
      await page.getByTestId('hosts-total').filter({ hasText: `${N} hosts` }).waitFor();
      if (i === RUNS - 1) {
        // Scroll: steady wheel scrolling, then big jumps, while recording frame deltas.
        await page.evaluate(() => {
          window.__frames = [];
          let last = performance.now();
          const loop = (t) => {
            window.__frames.push(t - last);
            last = t;
            if (window.__frames.length < 100000 && !window.__stopFrames) requestAnimationFrame(loop);
          };
          requestAnimationFrame(loop);
        });
        const body = page.locator('.host-table .ant-table-tbody-virtual-holder, .host-table .ant-table-body').first();
        const box = await body.boundingBox();
        await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
        const scrollStart = Date.now();
        while (Date.now() - scrollStart < 5000) {
          await page.mouse.wheel(0, 240);
          await page.waitForTimeout(16);
        }
        for (let j = 0; j < 10; j++) {
          await page.mouse.wheel(0, 40 * 400); // ~400 rows at a time
          await page.waitForTimeout(250);
        }
        await page.waitForTimeout(500);
        const fr = await page.evaluate(() => {
          window.__stopFrames = true;
          return window.__frames.slice(1);
        });
        results.scrolledRow = await page.evaluate(() => {
          const holder = document.querySelector('.host-table .ant-table-tbody-virtual-holder');
          return holder ? Math.round((holder.scrollTop + holder.clientHeight) / 40) : null;
        });
        frames.push(...fr);
        // The rows at the final position have data (on-demand paging worked).
        await page.waitForFunction(() => {
          const r = document.querySelector('.host-table .ant-table-tbody-virtual-holder')?.getBoundingClientRect();
          return [...document.querySelectorAll('.host-table [data-testid="host-cell"]')].some((el) => {
            const b = el.getBoundingClientRect();
            return r && b.top >= r.top && b.bottom <= r.bottom;
          });
        });
        hostRows = { ...rows };
        await page.screenshot({ path: path.join(ARTIFACTS, 'hosts-10k.png') });
      }
      await page.close();
    }
    results.hosts = { first: hostsFirst, frames, rows: hostRows };
  } finally {
    await browser.close();
    await served.close();
    await stack.stop();
  }

  const fr = results.hosts.frames;
  const maxExecRows = Math.max(...results.exec.rows.map((r) => r.maxRows));
  const lines = [
    `Console benchmark: ${results.jobHosts} simulated hosts, headless Chromium 1280x800, ${RUNS} page loads each (first = cold cache).`,
    '',
    '| Measure | First load | Median of loads | Target |',
    '|---|---|---|---|',
    `| Execution page: first render (job header painted) | ${f(results.exec.first[0])} | ${f(median(results.exec.first))} | ≤ 1 s |`,
    `| Execution page: result groups shown | ${f(results.exec.groups[0])} | ${f(median(results.exec.groups))} | |`,
    `| Hosts page: first render (first row of data painted) | ${f(results.hosts.first[0])} | ${f(median(results.hosts.first))} | ≤ 1 s |`,
    `| Hosts page scrolling: frame time mean / p95 / max | ${fr.length} frames | ${(fr.reduce((a, b) => a + b, 0) / fr.length).toFixed(1)} / ${pct(fr, 0.95).toFixed(1)} / ${Math.max(...fr).toFixed(1)} ms | 16.7 ms |`,
    `| Hosts page scrolling: frames over 33 ms | ${fr.filter((x) => x > 33.4).length} of ${fr.length} | | |`,
    `| Host rows per response, execution page (max) | ${maxExecRows} | | ≤ 1 page |`,
    `| Host rows per response, hosts page (max) | ${results.hosts.rows.maxRows} | ${results.hosts.rows.responses} responses, ${results.hosts.rows.rows} rows in total for the whole session (scrolled to row ${results.scrolledRow ?? '?'} of ${N}) | ≤ 1 page |`,
    '',
    `The job on ${results.jobHosts} hosts ran in ${results.jobSeconds.toFixed(1)} s (API submit to finished).`,
  ];
  console.log(lines.join('\n'));
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
