// Per-file transfer rows of a file step attempt (`GET /steps/{id}/files`): one row per file per
// target (download side) or per source host (upload side), with progress bars, speed, status and
// error (speed and error columns only when a row on the page has one, so paths keep the room);
// filters by side and status; server-paged. Refreshes when the step's counts change
// (`version`, coalesced by the job page) and, while the step runs, about once a second for the
// bytes (agents report progress about once a second; no event carries it).

import { Empty, Progress, Segmented, Select, Table, Tag, Tooltip, Typography } from 'antd';
import { useCallback, useEffect, useState, type HTMLAttributes } from 'react';
import { api } from '../api/client';
import type { FileTaskRow, Paged } from '../api/types';
import { useT } from '../i18n';
import { FILE_STATUS } from '../status';
import { filePercent, fmtSpeed } from '../transfer';
import { fmtBytes } from '../util';
import { ErrorAlert } from './common';

const LIVE_REFRESH_MS = 1500;

function rowKey(r: FileTaskRow): string {
  return `${r.mode}|${r.host_id}|${r.source_host_id ?? ''}|${r.source_path}|${r.dest_path}`;
}

export function FileTable({ stepId, attempt, version, running }: { stepId: number; attempt: number; version: number; running: boolean }) {
  const t = useT();
  const [mode, setMode] = useState<'download' | 'upload'>('download');
  const [status, setStatus] = useState<number | undefined>(undefined);
  const [page, setPage] = useState(1);
  const [size, setSize] = useState(20);
  const [data, setData] = useState<Paged<FileTaskRow> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => setPage(1), [mode, status, attempt]);

  // While the step runs, poll for bytes; a hidden tab does not poll.
  useEffect(() => {
    if (!running) return;
    const id = window.setInterval(() => {
      if (document.visibilityState === 'visible') setTick((n) => n + 1);
    }, LIVE_REFRESH_MS);
    return () => window.clearInterval(id);
  }, [running]);

  const load = useCallback(
    (signal?: AbortSignal) =>
      api.stepFiles(stepId, { attempt, mode, status, start: (page - 1) * size, length: size }, signal).then(
        (r) => {
          setData(r);
          setError(null);
        },
        (e) => {
          if ((e as Error).name !== 'AbortError') setError(e);
        },
      ),
    [stepId, attempt, mode, status, page, size],
  );

  useEffect(() => {
    const ctl = new AbortController();
    void load(ctl.signal);
    return () => ctl.abort();
  }, [load, version, tick]);

  const hostName = (ip: string | null, hostname: string | null, id: number | null) => ip || hostname || (id !== null ? `#${id}` : '');
  const rowsShown = data?.data ?? [];

  return (
    <div data-testid="file-table">
      <div className="filters">
        <Segmented
          size="small"
          value={mode}
          onChange={(v) => setMode(v as 'download' | 'upload')}
          options={[
            { value: 'download', label: t('files.modeDownload') },
            { value: 'upload', label: t('files.modeUpload') },
          ]}
          data-testid="file-mode"
        />
        <Select
          allowClear
          size="small"
          style={{ minWidth: 160 }}
          placeholder={t('files.status')}
          value={status}
          onChange={(v) => setStatus(v)}
          options={Object.entries(FILE_STATUS).map(([code, s]) => ({ value: Number(code), label: t(s.key) }))}
          data-testid="file-status-filter"
        />
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Table<FileTaskRow>
        size="small"
        rowKey={rowKey}
        loading={data === null && error === null}
        dataSource={rowsShown}
        tableLayout="fixed"
        locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('files.empty')} /> }}
        onRow={(r) => ({ 'data-testid': 'file-row', 'data-status': r.status }) as HTMLAttributes<HTMLElement>}
        pagination={{
          current: page,
          pageSize: size,
          total: data?.total ?? 0,
          size: 'small',
          showSizeChanger: true,
          pageSizeOptions: [20, 50, 100],
          showTotal: (n) => t('files.table', { n }),
          onChange: (p, s) => {
            setPage(p);
            setSize(s);
          },
        }}
        columns={[
          {
            title: t('files.host'),
            key: 'host',
            width: 140,
            ellipsis: { showTitle: false },
            render: (_, r) =>
              r.host_id === 0 ? (
                <Typography.Text type="secondary">{t('files.server')}</Typography.Text>
              ) : (
                <Tooltip title={r.hostname}>
                  <span className="mono">{r.ip || r.hostname || `#${r.host_id}`}</span>
                  {r.ip && r.hostname && (
                    <Typography.Text type="secondary" style={{ display: 'block', fontSize: 12 }} ellipsis>
                      {r.hostname}
                    </Typography.Text>
                  )}
                </Tooltip>
              ),
          },
          {
            title: t('files.source'),
            key: 'source',
            ellipsis: { showTitle: false },
            render: (_, r) =>
              r.source_host_id === null ? (
                <span>
                  <Typography.Text type="secondary">{t('files.fromUpload')}</Typography.Text> <span className="mono">{r.source_path}</span>
                </span>
              ) : (
                <Tooltip title={`${hostName(r.source_ip, r.source_hostname, r.source_host_id)}:${r.source_path}`}>
                  <span className="mono">
                    {hostName(r.source_ip, r.source_hostname, r.source_host_id)}:{r.source_path}
                  </span>
                </Tooltip>
              ),
          },
          {
            title: t('files.dest'),
            dataIndex: 'dest_path',
            ellipsis: { showTitle: false },
            render: (v: string) => (
              <Tooltip title={v}>
                <span className="mono">{v}</span>
              </Tooltip>
            ),
          },
          { title: t('files.size'), dataIndex: 'size', width: 88, render: (v: number) => fmtBytes(v) },
          {
            title: t('files.progress'),
            key: 'progress',
            width: 130,
            render: (_, r) => (
              <Progress
                size="small"
                percent={filePercent(r)}
                status={r.status === 5 ? 'exception' : r.status === 4 ? 'success' : r.status === 1 ? 'normal' : 'active'}
                data-testid="file-progress"
              />
            ),
          },
          // Speed only while some file on the page is moving, the error only when one failed.
          ...(rowsShown.some((r) => r.status === 2 || r.status === 3)
            ? [
                {
                  title: t('files.speed'),
                  dataIndex: 'speed',
                  width: 96,
                  render: (v: number, r: FileTaskRow) => (r.status === 2 || r.status === 3 ? fmtSpeed(v) : '—'),
                },
              ]
            : []),
          {
            title: t('files.status'),
            dataIndex: 'status',
            width: 100,
            render: (s: number) => (
              <Tag color={FILE_STATUS[s]?.color ?? 'default'} data-file-status={s}>
                {FILE_STATUS[s] ? t(FILE_STATUS[s].key) : s}
              </Tag>
            ),
          },
          ...(rowsShown.some((r) => r.error)
            ? [
                {
                  title: t('files.error'),
                  dataIndex: 'error',
                  ellipsis: { showTitle: false },
                  render: (e: string | null) =>
                    e ? (
                      <Tooltip title={e}>
                        <Typography.Text type="danger">{e}</Typography.Text>
                      </Tooltip>
                    ) : (
                      ''
                    ),
                },
              ]
            : []),
        ]}
      />
    </div>
  );
}
