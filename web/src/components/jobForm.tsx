// Pieces shared by the forms that start a job (script execution, file distribution): the
// start flow (confirm when some targets are not online, start, open the job page, report a
// refusal), the timeout input, and the hosts of a job's step for "run again".

import { App as AntApp, InputNumber } from 'antd';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api } from '../api/client';
import type { ExecuteScriptResponse, Host, PreviewResponse } from '../api/types';
import { useT } from '../i18n';
import type { Key } from '../i18n/dict';
import { useReportError } from './common';

/** Pages through a step's first attempt to collect its hosts (one page per request), for "run again". */
export async function stepHosts(stepId: number): Promise<Host[]> {
  const out: Host[] = [];
  for (let start = 0; ; start += 1000) {
    const page = await api.stepHosts(stepId, { attempt: 0, start, length: 1000 });
    for (const r of page.data) out.push({ id: r.host_id, hostname: r.hostname, ip: r.ip, status: 'online' } as Host);
    if (page.data.length === 0 || start + page.data.length >= page.total) break;
  }
  return out;
}

/** The server's step timeout limits and default, in seconds. */
export const TIMEOUT_MAX_SECS = 259200;
export const TIMEOUT_DEFAULT_SECS = 7200;

/**
 * Starts a job with `launch`: first asks for confirmation when the last target preview counted
 * offline or abnormal hosts; on success says `started` (with the job's name) and opens the job
 * page; a refusal is reported as `failed`. `busy` is true while the request is out.
 */
export function useStartJob(preview: PreviewResponse | null, keys: { started: Key; failed: Key }) {
  const t = useT();
  const navigate = useNavigate();
  const report = useReportError();
  const { modal, message } = AntApp.useApp();
  const [busy, setBusy] = useState(false);

  const start = async (launch: () => Promise<ExecuteScriptResponse>) => {
    const run = async () => {
      setBusy(true);
      try {
        const res = await launch();
        message.success(t(keys.started, { name: res.job_instance_name }));
        navigate(`/jobs/${res.job_instance_id}`);
      } catch (e) {
        report(e, t(keys.failed));
      } finally {
        setBusy(false);
      }
    };
    const notOnline = preview ? preview.offline + preview.abnormal : 0;
    if (notOnline > 0) {
      modal.confirm({
        title: t('execute.confirmOffline', { n: notOnline }),
        content: t('execute.confirmOfflineBody'),
        okText: t('execute.runAnyway'),
        cancelText: t('common.cancel'),
        onOk: run,
      });
    } else await run();
  };

  return { busy, start };
}

/** A step timeout in seconds, within the server's limits; cleared, it is the default. */
export function TimeoutInput({
  value,
  onChange,
  precision,
  testId,
}: {
  value: number;
  onChange: (secs: number) => void;
  precision?: number;
  testId: string;
}) {
  const t = useT();
  return (
    <InputNumber
      min={1}
      max={TIMEOUT_MAX_SECS}
      precision={precision}
      style={{ width: '100%' }}
      value={value}
      onChange={(v) => onChange(typeof v === 'number' ? v : TIMEOUT_DEFAULT_SECS)}
      suffix={t('execute.seconds')}
      data-testid={testId}
    />
  );
}
