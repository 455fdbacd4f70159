// Fast checks without a browser. They pin: ANSI escapes in logs; every label exists in English and Chinese with the same
// {placeholders}; every API error code (`ErrorCode` in the OpenAPI description, web/openapi.json) has
// a translated message; every status code of `RunStatus` / `HostTaskStatus` / `FileStatus` there
// has a label; permissions from whoami (per scope, any scope, platform admin).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { importTs, WEB } from './lib.mjs';

function parseDict() {
  const entries = (file, start) => {
    const src = readFileSync(path.join(WEB, 'src/i18n', file), 'utf8');
    const at = src.indexOf(start);
    assert.ok(at >= 0, `${file} has ${start}`);
    const out = new Map();
    const re = /^\s*'([^']+)':\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"),?\s*$/gm;
    for (const m of src.slice(at).matchAll(re)) out.set(m[1], m[2] ?? m[3]);
    return out;
  };
  return { en: entries('en.ts', 'export const en = {'), zh: entries('zh.ts', 'export const zh: Record<Key, string> = {') };
}

const placeholders = (s) => [...new Set([...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))].sort();

test('every label is translated, with the same placeholders', () => {
  const { en, zh } = parseDict();
  assert.ok(en.size > 200, `parsed ${en.size} English labels`);
  assert.deepEqual([...zh.keys()].sort(), [...en.keys()].sort());
  for (const [k, v] of en) {
    assert.ok(v.trim(), `en ${k} is empty`);
    assert.ok(zh.get(k).trim(), `zh ${k} is empty`);
    assert.deepEqual(placeholders(zh.get(k)), placeholders(v), `placeholders of ${k}`);
  }
  // Chinese labels are Chinese, except names and acronyms that stay as they are.
  const same = [...en].filter(([k, v]) => zh.get(k) === v).map(([k]) => k);
  assert.deepEqual(same.filter((k) => !['launch.api', 'hosts.ip', 'host.agentId', 'job.id', 'files.mbps'].includes(k)), []);
});

/** The API's OpenAPI description, as the server's code generates it (a Rust test keeps it current). */
const described = () => JSON.parse(readFileSync(path.join(WEB, 'openapi.json'), 'utf8')).components.schemas;

test('every API error code has a message', () => {
  const { en } = parseDict();
  const codes = described().ErrorCode.enum;
  assert.ok(codes.length >= 10);
  // client.ts lists them for `tsc` (checked against the generated union); messages are here.
  for (const code of codes) assert.ok(en.has(`err.${code}`), `err.${code} has a message`);
});

test('every status code has a label', () => {
  const { en } = parseDict();
  const codes = (name) => described()[name].enum.map(String);
  for (const c of codes('RunStatus')) assert.ok(en.has(`run.${c}`), `run.${c}`);
  for (const c of codes('HostTaskStatus')) assert.ok(en.has(`task.${c}`), `task.${c}`);
  const fileCodes = codes('FileStatus');
  assert.deepEqual(fileCodes, ['1', '2', '3', '4', '5']);
  for (const c of fileCodes) assert.ok(en.has(`fileStatus.${c}`), `fileStatus.${c}`);
});

// ANSI escapes in logs (src/ansi.ts): SGR colours
// become styled segments, every other escape is dropped, markup stays text.
test('ANSI colours become styles; other escapes are dropped', async () => {
  const m = await importTs('src/ansi.ts');
  assert.deepEqual(m.parseAnsi('a\x1b[31mred\x1b[0m b'), [
    { text: 'a', style: {} },
    { text: 'red', style: { fg: '#cd3131' } },
    { text: ' b', style: {} },
  ]);
  // Bold + 256 colours, then a cursor escape and a window title (dropped), then a reset.
  assert.deepEqual(m.parseAnsi('\x1b[1;38;5;208mX\x1b[2K\x1b]0;title\x07Y\x1b[m z'), [
    { text: 'XY', style: { bold: true, fg: 'rgb(255,135,0)' } },
    { text: ' z', style: {} },
  ]);
  assert.deepEqual(m.parseAnsi('\x1b[48;2;1;2;3;4mu\x1b[24;49m.'), [
    { text: 'u', style: { bg: 'rgb(1,2,3)', underline: true } },
    { text: '.', style: {} },
  ]);
  // Markup is text (rendered by React as text), charset switches and a cut escape vanish.
  assert.equal(m.stripAnsi('<b>\x1b(B\x1b[?25lhi</b>\x1b[3'), '<b>hi</b>');
  assert.equal(m.stripAnsi('plain\n'), 'plain\n');
});

test('permissions: per scope, any scope, and the platform admin', async () => {
  const { allows, mayAdminister } = await importTs('src/access.ts');
  const viewerOps = {
    is_admin: false,
    scopes: [
      { scope_id: 1, scope_name: 'default', role: 'viewer', host_selector: '', permissions: ['view'] },
      { scope_id: 2, scope_name: 'web', role: 'operator', host_selector: 'env!=prod', permissions: ['view', 'execute', 'operate'] },
    ],
  };
  assert.equal(allows(null, 'view'), false, 'signed out: nothing');
  assert.equal(allows(viewerOps, 'execute'), true, 'execute in some scope');
  assert.equal(allows(viewerOps, 'execute', 1), false, 'a viewer in scope 1 may not execute there');
  assert.equal(allows(viewerOps, 'execute', 2), true);
  assert.equal(allows(viewerOps, 'manage'), false);
  assert.equal(allows(viewerOps, 'view', 3), false, 'no access to a scope it has no role in');
  assert.equal(mayAdminister(viewerOps), false, 'no admin pages without administer');
  const owner = { is_admin: false, scopes: [{ scope_id: 2, permissions: ['view', 'execute', 'operate', 'manage', 'administer'] }] };
  assert.equal(mayAdminister(owner), true, 'who administers a scope gets the admin pages');
  const admin = { is_admin: true, scopes: [] };
  assert.equal(allows(admin, 'platform', 7), true, 'a platform admin holds everything everywhere');
  assert.equal(mayAdminister(admin), true);
});
