// Execution history: filter by time range, status, operator, name and host IP; server-paged;
// "run again". Filters live in the URL so they survive navigation.

import { RedoOutlined, ReloadOutlined } from '@ant-design/icons';
import { Button, DatePicker, Input, Select, Table, Tooltip, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useCallback, useEffect, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api } from '../api/client';
import type { Job, Paged } from '../api/types';
import { ErrorAlert, Needs, RunStatusTag } from '../components/common';
import { useDebounced } from '../components/hooks';
import { useT } from '../i18n';
import { RUN_FILTERABLE, RUN_STATUS } from '../status';
import { fmtDuration, fmtTime } from '../util';

const TEXT_KEYS = ['name', 'operator', 'ip'] as const;

/** "Run again" opens the page of the job's kind, prefilled from it. */
export function runAgainPath(j: Job): string {
  return `${j.job_type === 'file' ? '/files' : '/execute'}?from=${j.id}`;
}

/** Terminated (8) and stopped (11) read the same ("Terminated"): one filter matches both. */
function withStopped(status: string | null): string | undefined {
  if (!status) return undefined;
  const codes = status.split(',');
  return (codes.includes('8') && !codes.includes('11') ? [...codes, '11'] : codes).join(',');
}

export function History() {
  const t = useT();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const [data, setData] = useState<Paged<Job> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [text, setText] = useState(() => Object.fromEntries(TEXT_KEYS.map((k) => [k, params.get(k) ?? ''])) as Record<(typeof TEXT_KEYS)[number], string>);
  const dtext = useDebounced(text, 350);

  const page = Number(params.get('page') ?? 1) || 1;
  const size = Number(params.get('size') ?? 20) || 20;
  const from = params.get('from');
  const to = params.get('to');
  const status = params.get('status') ?? '';

  const update = useCallback(
    (changes: Record<string, string | null>, resetPage = true) => {
      const next = new URLSearchParams(params);
      for (const [k, v] of Object.entries(changes)) {
        if (v) next.set(k, v);
        else next.delete(k);
      }
      if (resetPage) next.delete('page');
      if (next.toString() !== params.toString()) setParams(next, { replace: true });
    },
    [params, setParams],
  );

  useEffect(() => {
    if (TEXT_KEYS.every((k) => dtext[k].trim() === (params.get(k) ?? ''))) return;
    update(Object.fromEntries(TEXT_KEYS.map((k) => [k, dtext[k].trim() || null])));
  }, [dtext]);

  // Keep the inputs in step with the URL when it changes from elsewhere (menu, back button).
  const urlText = TEXT_KEYS.map((k) => params.get(k) ?? '').join('\u0000');
  useEffect(() => {
    const fromUrl = Object.fromEntries(TEXT_KEYS.map((k) => [k, params.get(k) ?? ''])) as typeof text;
    setText((cur) => (TEXT_KEYS.every((k) => cur[k].trim() === fromUrl[k]) ? cur : fromUrl));
  }, [urlText]);

  const key = params.toString();
  const load = useCallback(async () => {
    setLoading(true);
    try {
      const p = new URLSearchParams(key);
      const r = await api.jobs({
        from: p.get('from') ? Number(p.get('from')) : undefined,
        to: p.get('to') ? Number(p.get('to')) : undefined,
        status: withStopped(p.get('status')),
        name: p.get('name') ?? undefined,
        operator: p.get('operator') ?? undefined,
        ip: p.get('ip') ?? undefined,
        start: ((Number(p.get('page') ?? 1) || 1) - 1) * (Number(p.get('size') ?? 20) || 20),
        length: Number(p.get('size') ?? 20) || 20,
      });
      setData(r);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  }, [key]);

  useEffect(() => {
    void load();
  }, [load]);

  const range: [Dayjs, Dayjs] | null = from && to ? [dayjs(Number(from)), dayjs(Number(to))] : null;

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('history.title')}</Typography.Title>
        <Tooltip title={t('common.refresh')}>
          <Button icon={<ReloadOutlined />} onClick={() => void load()} loading={loading} />
        </Tooltip>
      </div>
      <div className="filters">
        <DatePicker.RangePicker
          showTime={{ format: 'HH:mm' }}
          format="YYYY-MM-DD HH:mm"
          value={range}
          onChange={(v) => update({ from: v?.[0] ? String(v[0].valueOf()) : null, to: v?.[1] ? String(v[1].valueOf()) : null })}
          presets={[
            { label: t('history.last1h'), value: [dayjs().subtract(1, 'hour'), dayjs()] },
            { label: t('history.last24h'), value: [dayjs().subtract(1, 'day'), dayjs()] },
            { label: t('history.last7d'), value: [dayjs().subtract(7, 'day'), dayjs()] },
            { label: t('history.last30d'), value: [dayjs().subtract(30, 'day'), dayjs()] },
          ]}
          data-testid="history-range"
        />
        <Select
          mode="multiple"
          allowClear
          style={{ minWidth: 200 }}
          placeholder={t('history.status')}
          value={status ? status.split(',').map(Number) : []}
          onChange={(v: number[]) => update({ status: v.length ? v.join(',') : null })}
          options={RUN_FILTERABLE.map((s) => ({ value: s, label: t(RUN_STATUS[s].key) }))}
          maxTagCount="responsive"
          data-testid="history-status"
        />
        <Input allowClear style={{ width: 180 }} placeholder={t('history.name')} value={text.name} onChange={(e) => setText({ ...text, name: e.target.value })} data-testid="history-name" />
        <Input allowClear style={{ width: 150 }} placeholder={t('history.operator')} value={text.operator} onChange={(e) => setText({ ...text, operator: e.target.value })} data-testid="history-operator" />
        <Input allowClear style={{ width: 160 }} placeholder={t('history.ip')} value={text.ip} onChange={(e) => setText({ ...text, ip: e.target.value })} data-testid="history-ip" />
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Table<Job>
        rowKey="id"
        size="middle"
        data-testid="history-table"
        loading={loading && data === null}
        dataSource={data?.data ?? []}
        locale={{ emptyText: t('history.empty') }}
        pagination={{
          current: page,
          pageSize: size,
          total: data?.total ?? 0,
          showSizeChanger: true,
          pageSizeOptions: [20, 50, 100],
          showTotal: (n) => t('history.total', { n }),
          onChange: (p, s) => update({ page: p > 1 ? String(p) : null, size: s !== 20 ? String(s) : null }, false),
        }}
        tableLayout="fixed"
        columns={[
          { title: t('job.id'), dataIndex: 'id', width: 64 },
          {
            title: t('history.name'),
            dataIndex: 'name',
            ellipsis: { showTitle: false },
            render: (v, j) => (
              <Tooltip title={v}>
                <Link to={`/jobs/${j.id}`}>{v}</Link>
              </Tooltip>
            ),
          },
          { title: t('history.status'), dataIndex: 'status', width: 120, render: (s) => <RunStatusTag status={s} /> },
          { title: t('history.hosts'), dataIndex: 'host_count', width: 72, align: 'right' },
          { title: t('history.operator'), dataIndex: 'operator', width: 120, ellipsis: true },
          // Below 1200 px the launch mode and duration give way (the job page shows both).
          { title: t('history.launchMode'), dataIndex: 'launch_mode', width: 120, responsive: ['xl'], render: (m) => t(`launch.${m}` as 'launch.web') },
          { title: t('history.created'), dataIndex: 'created_at', width: 170, render: fmtTime },
          { title: t('job.duration'), key: 'dur', width: 90, responsive: ['xl'], render: (_, j) => (j.started_at ? fmtDuration((j.ended_at ?? Date.now()) - j.started_at) : '—') },
          {
            title: '',
            key: 'actions',
            width: 130,
            render: (_, j) => (
              <Needs perm="execute" scope={j.scope_id}>
                <Button size="small" icon={<RedoOutlined />} onClick={() => navigate(runAgainPath(j))} data-testid="history-run-again">
                  {t('history.runAgain')}
                </Button>
              </Needs>
            ),
          },
        ]}
      />
    </div>
  );
}
