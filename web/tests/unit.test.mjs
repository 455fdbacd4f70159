// Fast checks without a browser. They pin: every label exists in English and Chinese with the same
// {placeholders}; every API error code (the Rust `ErrorCode` enum) has a translated message; every
// status code of `RunStatus` / `HostTaskStatus` / `FileStatus` has a label.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, WEB } from './lib.mjs';

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

test('every API error code has a message', () => {
  const { en } = parseDict();
  const rust = readFileSync(path.join(ROOT, 'crates/shoal-types/src/api.rs'), 'utf8');
  const body = rust.slice(rust.indexOf('pub enum ErrorCode {'));
  const variants = body
    .slice(body.indexOf('{') + 1, body.indexOf('}'))
    .replace(/\/\/.*$/gm, '') // doc comments
    .match(/\b[A-Z]\w*\b/g);
  assert.ok(variants.length >= 10);
  const client = readFileSync(path.join(WEB, 'src/api/client.ts'), 'utf8');
  for (const v of variants) {
    const code = v.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
    assert.ok(en.has(`err.${code}`), `err.${code} has a message`);
    assert.ok(client.includes(`'${code}'`), `${code} is a known code in client.ts`);
  }
});

test('every status code has a label', () => {
  const { en } = parseDict();
  const rust = readFileSync(path.join(ROOT, 'crates/shoal-types/src/status.rs'), 'utf8');
  const block = (name) => {
    const s = rust.slice(rust.indexOf(`${name} {`));
    return [...s.slice(0, s.indexOf('}')).matchAll(/= (\d+) =>/g)].map((m) => m[1]);
  };
  for (const c of block('RunStatus')) assert.ok(en.has(`run.${c}`), `run.${c}`);
  for (const c of block('HostTaskStatus')) assert.ok(en.has(`task.${c}`), `task.${c}`);
  const files = readFileSync(path.join(ROOT, 'crates/shoal-store/src/records/files.rs'), 'utf8');
  const codes = files.slice(files.indexOf('pub fn code(self)'));
  const fileCodes = [...codes.slice(0, codes.indexOf('}\n    }')).matchAll(/=> (\d+),/g)].map((m) => m[1]);
  assert.deepEqual(fileCodes, ['1', '2', '3', '4', '5']);
  for (const c of fileCodes) assert.ok(en.has(`fileStatus.${c}`), `fileStatus.${c}`);
});
