// Pure helpers of the file distribution page: turning the form into a `FileTransferRequest`
// (with the checks that catch mistakes before the server does), base64 of inline text, and the
// numbers shown in the files table. No runtime imports, so `node --test` can load this file
// alone (tests/transfer.test.mjs).

import type { DuplicateHandling, FileSourceRequest, FileTransferRequest, Targets } from './api/types';
import type { Key } from './i18n/dict';

/** Largest inline text file (decoded), as the server's `INLINE_MAX_BYTES`. */
export const INLINE_MAX_BYTES = 1024 * 1024;

export type SourceDraft =
  | { kind: 'server'; id: number; targets: Targets; paths: string; account: string }
  | { kind: 'upload'; id: number; name: string; size: number; sent: number; uploadId?: string; error?: string }
  | { kind: 'inline'; id: number; name: string; content: string };

export interface TransferDraft {
  name: string;
  targetDir: string;
  account: string;
  strict: boolean;
  duplicate: DuplicateHandling;
  /** MB/s; null = unlimited. */
  uploadLimit: number | null;
  downloadLimit: number | null;
  timeout: number;
  p2p: boolean;
}

export const DEFAULT_TRANSFER: TransferDraft = {
  name: '',
  targetDir: '',
  account: '',
  strict: false,
  duplicate: 'overwrite',
  uploadLimit: null,
  downloadLimit: null,
  timeout: 7200,
  p2p: true,
};

export interface Problem {
  key: Key;
  vars?: Record<string, string | number>;
}

/** Non-empty lines, trimmed. */
export function parsePaths(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** An absolute path (`/...` or `C:\...`), or `REGEX:<pattern>`. */
export function isSourcePath(p: string): boolean {
  return isAbsoluteDir(p) || (p.startsWith('REGEX:') && p.length > 'REGEX:'.length);
}

export function isAbsoluteDir(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p);
}

/** UTF-8 bytes of a string, base64. */
export function utf8ToBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

function targetsEmpty(t: Targets): boolean {
  return !t.host_ids?.length && !t.ips?.length && !t.selector?.trim() && !t.group_ids?.length;
}

/** The request of the form, or the first problem with it. */
export function buildTransfer(
  draft: TransferDraft,
  sources: SourceDraft[],
  targets: Targets,
): { req: FileTransferRequest; problem?: undefined } | { req?: undefined; problem: Problem } {
  if (sources.length === 0) return { problem: { key: 'files.needSources' } };
  const list: FileSourceRequest[] = [];
  for (const [i, s] of sources.entries()) {
    if (s.kind === 'server') {
      const paths = parsePaths(s.paths);
      if (paths.length === 0 || targetsEmpty(s.targets)) return { problem: { key: 'files.needPaths', vars: { n: i + 1 } } };
      const bad = paths.find((p) => !isSourcePath(p));
      if (bad !== undefined) return { problem: { key: 'files.badPath', vars: { path: bad } } };
      const src: FileSourceRequest = { file_list: paths, targets: s.targets };
      if (s.account.trim()) src.account = s.account.trim();
      list.push(src);
    } else if (s.kind === 'upload') {
      if (!s.uploadId) return { problem: { key: 'files.stillUploading' } };
      list.push({ upload_id: s.uploadId, name: s.name });
    } else {
      if (!s.name.trim() || s.name.includes('/')) return { problem: { key: 'files.needInline' } };
      if (utf8Length(s.content) > INLINE_MAX_BYTES) return { problem: { key: 'files.inlineTooLarge' } };
      list.push({ name: s.name.trim(), inline_content_base64: utf8ToBase64(s.content) });
    }
  }
  const dir = draft.targetDir.trim();
  if (!isAbsoluteDir(dir)) return { problem: { key: 'files.needDir' } };
  if (targetsEmpty(targets)) return { problem: { key: 'files.needTargets' } };
  const req: FileTransferRequest = {
    file_source_list: list,
    file_target_path: dir,
    targets,
    transfer_mode: draft.strict ? 'strict' : 'force',
    duplicate_handling: draft.duplicate,
    timeout: draft.timeout,
  };
  if (draft.name.trim()) req.name = draft.name.trim();
  if (draft.account.trim()) req.account = draft.account.trim();
  if (draft.uploadLimit) req.upload_speed_limit = draft.uploadLimit;
  if (draft.downloadLimit) req.download_speed_limit = draft.downloadLimit;
  if (!draft.p2p) req.peer_to_peer = false;
  return { req };
}

/** Percent done of one file row (an empty file is done when it succeeded). */
export function filePercent(row: { size: number; bytes_done: number; status: number }): number {
  if (row.status === 4) return 100;
  if (row.size <= 0) return 0;
  return Math.min(100, Math.floor((row.bytes_done / row.size) * 100));
}

/** `12.3 MiB/s`, or `—` when nothing moves. */
export function fmtSpeed(bytesPerSec: number): string {
  if (!bytesPerSec || bytesPerSec <= 0) return '—';
  if (bytesPerSec < 1024) return `${bytesPerSec} B/s`;
  if (bytesPerSec < 1024 * 1024) return `${(bytesPerSec / 1024).toFixed(1)} KiB/s`;
  if (bytesPerSec < 1024 * 1024 * 1024) return `${(bytesPerSec / 1024 / 1024).toFixed(1)} MiB/s`;
  return `${(bytesPerSec / 1024 / 1024 / 1024).toFixed(2)} GiB/s`;
}

/** File status codes that will not change again. */
export function fileTerminal(status: number): boolean {
  return status === 4 || status === 5;
}
