// Helpers shared by the browser tests and the benchmark: start a real stack (server + agents)
// through start-stack.sh, launch Debian's Chromium through playwright-core, call the API, and
// serve `web/dist` with an API proxy when the server does not serve the console itself.

import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(WEB, '..');
export const ARTIFACTS = path.join(WEB, 'test-artifacts');

/**
 * Starts `tests/start-stack.sh` (or uses SHOAL_URL + SHOAL_TOKEN + SHOAL_PASSWORD from the env).
 * Resolves to `{ url, token, password, data, agentAddr, stop }` (`data` and `agentAddr` only for
 * a stack it started); `password` is the built-in admin's, `token` an admin API token.
 */
export async function startStack(env = {}) {
  if (process.env.SHOAL_URL && process.env.SHOAL_TOKEN && process.env.SHOAL_PASSWORD && !env.force) {
    return {
      url: process.env.SHOAL_URL.replace(/\/$/, ''),
      token: process.env.SHOAL_TOKEN.trim(),
      password: process.env.SHOAL_PASSWORD.trim(),
      stop: async () => {},
    };
  }
  const child = spawn('bash', [path.join(WEB, 'tests/start-stack.sh')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
    if (process.env.STACK_VERBOSE) process.stderr.write(d);
  });
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`start-stack timed out:\n${err}`)), Number(env.READY_TIMEOUT ?? 60) * 1000 + 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('READY\n')) {
        clearTimeout(timer);
        const kv = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
        resolve(kv);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`start-stack exited with ${code}:\n${err}`));
    });
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const done = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
  };
  return { url: info.SHOAL_URL, token: info.SHOAL_TOKEN, password: info.SHOAL_PASSWORD, data: info.SHOAL_DATA, agentAddr: info.SHOAL_AGENT_ADDR, stop };
}

export function apiClient(url, token) {
  return async function call(method, p, body) {
    const res = await fetch(url + p, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p} -> ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/**
 * Returns a URL where the console is served against `apiUrl`: `apiUrl` itself when the server
 * serves the console (GET / answers the app's HTML), otherwise a local static server for
 * `web/dist` that proxies `/api`, `/healthz` and `/metrics`.
 */
export async function consoleUrl(apiUrl) {
  const dist = path.join(WEB, 'dist');
  if (!existsSync(path.join(dist, 'index.html'))) throw new Error('web/dist is not built: run npm run build');
  const current = readFileSync(path.join(dist, 'index.html'), 'utf8');
  try {
    const res = await fetch(`${apiUrl}/`);
    const body = await res.text();
    // Served by the server, and the same build as web/dist (a release binary embeds the build
    // it was compiled with, which may be older).
    if (res.ok && body === current) return { url: apiUrl, close: async () => {}, proxied: false };
  } catch {
    /* fall through */
  }
  const target = new URL(apiUrl);
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname.startsWith('/api/') || u.pathname === '/healthz' || u.pathname === '/metrics') {
      const preq = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (pres) => {
          res.writeHead(pres.statusCode ?? 502, pres.headers);
          pres.pipe(res);
        },
      );
      preq.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(preq);
      res.on('close', () => preq.destroy());
      return;
    }
    let file = path.join(dist, path.normalize(u.pathname).replace(/^(\.\.[/\\])+/, ''));
    if (!file.startsWith(dist) || !existsSync(file) || statSync(file).isDirectory()) file = path.join(dist, 'index.html');
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    proxied: true,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}

/** Launches headless Chromium (Debian's) with a fresh profile. */
export async function launchBrowser(opts = {}) {
  const { chromium } = await import('playwright-core');
  const exe = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(exe)) throw new Error(`Chromium not found at ${exe}: apt-get install -y chromium (or set CHROMIUM)`);
  const profile = mkdtempSync(path.join(tmpdir(), 'shoal-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: exe,
    headless: true,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    ...opts,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` every 200 ms until it returns something truthy (returned), or fails after `ms`. */
export async function waitFor(fn, what, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Signs `page` in as `name` with `password` through the sign-in page, in English. */
export async function signIn(page, base, password, name = 'admin') {
  await page.goto(`${base}/login`);
  await page.evaluate(() => localStorage.setItem('shoal.lang', 'en'));
  await page.reload();
  await page.getByTestId('name-input').fill(name);
  await page.getByTestId('password-input').fill(password);
  await page.getByTestId('sign-in').click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
}

/** Imports a TypeScript file of `src/` that has no runtime imports, transpiled with the project's `typescript`. */
export async function importTs(rel) {
  const ts = (await import('typescript')).default;
  const src = readFileSync(path.join(WEB, rel), 'utf8');
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  return import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`);
}

/** The stack's web agents (label web=true) as the API lists them, sorted by their idx label. */
export async function webHosts(api) {
  const page = await api('GET', '/api/v1/hosts?selector=web%3Dtrue&length=10');
  return page.data.sort((a, b) => Number(a.labels.idx) - Number(b.labels.idx));
}
