// Shared bits: status tags, a ticking elapsed time, and the error reporter that turns every API
// error into a translated message (nothing fails silently).

import { Alert, App as AntApp, Button, Tag, Tooltip } from 'antd';
import { cloneElement, useCallback, useEffect, useState, type ReactElement } from 'react';
import type { Permission } from '../api/types';
import { allows, useSession } from '../auth';
import { ApiError, ERROR_CODES, isSignedIn, type ErrorCode } from '../api/client';
import { useT, type TFunc } from '../i18n';
import type { Key } from '../i18n/dict';
import { AGENT_STATUS, RUN_STATUS, TASK_STATUS } from '../status';
import { fmtDuration } from '../util';

export function RunStatusTag({ status }: { status: number }) {
  const t = useT();
  const s = RUN_STATUS[status];
  return (
    <Tag color={s?.color ?? 'default'} data-status={status}>
      {s ? t(s.key) : t('run.unknown', { code: status })}
    </Tag>
  );
}

export function TaskStatusTag({ status }: { status: number }) {
  const t = useT();
  const s = TASK_STATUS[status];
  return (
    <Tag color={s?.color ?? 'default'} data-status={status}>
      {s ? t(s.key) : t('task.unknown', { code: status })}
    </Tag>
  );
}

export function AgentStatusTag({ status }: { status: string }) {
  const t = useT();
  const s = AGENT_STATUS[status];
  return <Tag color={s?.color ?? 'default'}>{s ? t(s.key) : status}</Tag>;
}

export function taskStatusText(t: TFunc, status: number): string {
  const s = TASK_STATUS[status];
  return s ? t(s.key) : t('task.unknown', { code: status });
}

/** Elapsed time from `start` to `end`, ticking every second while `end` is null. */
export function Elapsed({ start, end }: { start: number | null; end: number | null }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (start === null || end !== null) return;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [start, end]);
  if (start === null) return <span>—</span>;
  return <span data-testid="elapsed">{fmtDuration((end ?? now) - start)}</span>;
}

export function errorTitle(t: TFunc, e: unknown): string {
  if (e instanceof ApiError) return t(`err.${e.code}` as Key);
  return t('err.UNEXPECTED');
}

export function errorDetail(e: unknown): string {
  if (e instanceof ApiError) return e.detail;
  if (e instanceof Error) return e.message;
  return String(e);
}

export function isErrorCode(e: unknown, code: ErrorCode): boolean {
  return e instanceof ApiError && e.code === code;
}

/**
 * Whether an error is not worth a notification: an aborted request, or any failure once the
 * session has ended (a 401 signs out and returns to the sign-in page, which says why; requests
 * still in flight then must not pop up there).
 */
export function quietError(e: unknown): boolean {
  if ((e as Error)?.name === 'AbortError') return true;
  return !isSignedIn() || isErrorCode(e, 'UNAUTHENTICATED');
}

/** Returns a function that reports an error as a translated notification. */
export function useReportError() {
  const t = useT();
  const { notification } = AntApp.useApp();
  return useCallback(
    (e: unknown, action?: string) => {
      if (quietError(e)) return;
      console.error(e);
      notification.error({
        title: action ? `${action}: ${errorTitle(t, e)}` : errorTitle(t, e),
        description: errorDetail(e),
        placement: 'topRight',
        className: 'shoal-error',
      });
    },
    [notification, t],
  );
}

/** An inline error with a retry button, for pages and panels that failed to load. */
export function ErrorAlert({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const t = useT();
  return (
    <Alert
      type="error"
      showIcon
      className="shoal-error"
      title={errorTitle(t, error)}
      description={errorDetail(error)}
      action={onRetry ? <Button size="small" onClick={onRetry}>{t('common.retry')}</Button> : undefined}
      style={{ marginBottom: 16 }}
    />
  );
}

export { ERROR_CODES };

/**
 * A control that needs `perm` (in `scope`, or in some scope): shown as is when the signed-in
 * account holds it, otherwise disabled with the reason in a tooltip. The server checks every
 * request anyway.
 */
export function Needs({ perm, scope, children }: { perm: Permission; scope?: number; children: ReactElement<{ disabled?: boolean }> }) {
  const t = useT();
  const { me } = useSession();
  if (allows(me, perm, scope)) return children;
  return (
    <Tooltip title={t('access.needs', { permission: t(`perm.${perm}`) })}>
      <span data-testid="needs-permission" data-permission={perm}>
        {cloneElement(children, { disabled: true })}
      </span>
    </Tooltip>
  );
}
