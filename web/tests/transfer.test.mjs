// Pins the pure helpers of the file distribution page (src/transfer.ts): the request built from
// the form (sources of each kind, defaults, limits, P2P), the problems found before sending, the
// base64 of inline text (UTF-8), and the progress and speed figures of the files table.
// The TypeScript file is transpiled with the project's own `typescript` (it has no runtime imports).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { importTs } from './lib.mjs';

const m = await importTs('src/transfer.ts');

const draft = (over = {}) => ({ ...m.DEFAULT_TRANSFER, targetDir: '/opt/app', ...over });
const server = (over = {}) => ({ kind: 'server', id: 1, targets: { host_ids: [3] }, paths: '/data/a.tar.gz\n\n  /etc/app/ \n', account: '', ...over });

test('a request from every kind of source', () => {
  const { req, problem } = m.buildTransfer(
    draft({ name: ' push ', account: 'app', uploadLimit: 5, downloadLimit: null, p2p: false, strict: true, duplicate: 'by_source_ip' }),
    [
      server({ account: ' reader ' }),
      { kind: 'upload', id: 2, name: 'pkg.bin', size: 10, sent: 10, uploadId: 'ab12' },
      { kind: 'inline', id: 3, name: 'app.conf', content: 'héllo=1\n' },
    ],
    { selector: 'web=true' },
  );
  assert.equal(problem, undefined);
  assert.deepEqual(req, {
    name: 'push',
    account: 'app',
    file_source_list: [
      { file_list: ['/data/a.tar.gz', '/etc/app/'], targets: { host_ids: [3] }, account: 'reader' },
      { upload_id: 'ab12', name: 'pkg.bin' },
      { name: 'app.conf', inline_content_base64: Buffer.from('héllo=1\n', 'utf8').toString('base64') },
    ],
    file_target_path: '/opt/app',
    targets: { selector: 'web=true' },
    transfer_mode: 'strict',
    duplicate_handling: 'by_source_ip',
    timeout: 7200,
    upload_speed_limit: 5,
    peer_to_peer: false,
  });
  // Defaults send neither limits nor P2P.
  const plain = m.buildTransfer(draft(), [server()], { ips: ['10.0.0.1'] }).req;
  assert.equal(plain.transfer_mode, 'force');
  assert.equal(plain.duplicate_handling, 'overwrite');
  for (const k of ['upload_speed_limit', 'download_speed_limit', 'peer_to_peer', 'account', 'name']) assert.ok(!(k in plain), k);
});

test('mistakes are found before sending', () => {
  const targets = { host_ids: [1] };
  const problem = (d, s, t = targets) => m.buildTransfer(d, s, t).problem;
  assert.equal(problem(draft(), []).key, 'files.needSources');
  assert.deepEqual(problem(draft(), [server({ paths: ' \n' })]), { key: 'files.needPaths', vars: { n: 1 } });
  assert.deepEqual(problem(draft(), [server({ targets: {} })]), { key: 'files.needPaths', vars: { n: 1 } });
  assert.deepEqual(problem(draft(), [server({ paths: 'relative/x' })]), { key: 'files.badPath', vars: { path: 'relative/x' } });
  assert.equal(problem(draft(), [{ kind: 'upload', id: 1, name: 'x', size: 5, sent: 2 }]).key, 'files.stillUploading');
  assert.equal(problem(draft(), [{ kind: 'inline', id: 1, name: '', content: 'x' }]).key, 'files.needInline');
  assert.equal(problem(draft(), [{ kind: 'inline', id: 1, name: 'a/b', content: 'x' }]).key, 'files.needInline');
  assert.equal(problem(draft(), [{ kind: 'inline', id: 1, name: 'big', content: 'x'.repeat(m.INLINE_MAX_BYTES + 1) }]).key, 'files.inlineTooLarge');
  assert.equal(problem(draft({ targetDir: 'opt' }), [server()]).key, 'files.needDir');
  assert.equal(problem(draft(), [server()], { selector: ' ' }).key, 'files.needTargets');
  assert.equal(problem(draft(), [server({ paths: 'REGEX:^/var/log/.*\\.log$\n/a b/[x]' })]), undefined);
});

test('paths, base64, progress and speed', () => {
  assert.deepEqual(m.parsePaths('\r\n /a \n\n/b c\r\n'), ['/a', '/b c']);
  assert.ok(m.isSourcePath('C:\\data\\x') && m.isSourcePath('REGEX:x') && !m.isSourcePath('REGEX:') && !m.isSourcePath('~/x'));
  const big = 'ü'.repeat(70_000); // more than one 0x8000 slice of bytes
  assert.equal(m.utf8ToBase64(big), Buffer.from(big, 'utf8').toString('base64'));
  assert.equal(m.utf8Length('ü'), 2);
  assert.equal(m.filePercent({ size: 200, bytes_done: 50, status: 3 }), 25);
  assert.equal(m.filePercent({ size: 0, bytes_done: 0, status: 4 }), 100);
  assert.equal(m.filePercent({ size: 0, bytes_done: 0, status: 1 }), 0);
  assert.equal(m.filePercent({ size: 10, bytes_done: 20, status: 3 }), 100);
  assert.equal(m.fmtSpeed(0), '—');
  assert.equal(m.fmtSpeed(512), '512 B/s');
  assert.equal(m.fmtSpeed(1536), '1.5 KiB/s');
  assert.equal(m.fmtSpeed(12.5 * 1024 * 1024), '12.5 MiB/s');
  assert.ok(m.fileTerminal(4) && m.fileTerminal(5) && !m.fileTerminal(3));
});
