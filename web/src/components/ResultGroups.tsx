// Result groups of one step attempt (computed by the server: hosts that share status, exit code
// and tag, and on request identical output), each with a sample of its output and a paged list
// of its hosts; plus the paged list of all hosts with status/IP/output filters. Rows only ever
// arrive one page at a time.

import { CopyOutlined, FileTextOutlined } from '@ant-design/icons';
import { App as AntApp, Button, Card, Empty, Input, Select, Space, Spin, Table, Tag, Tooltip, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { api } from '../api/client';
import type { Paged, ResultGroup, TaskRow } from '../api/types';
import { useT } from '../i18n';
import { TASK_STATUS, taskSuccess, taskTerminal } from '../status';
import { copyText, fmtBytes, fmtDuration } from '../util';
import { ErrorAlert, TaskStatusTag, taskStatusText, useReportError } from './common';
import { useDebounced } from './hooks';
import { renderAnsi } from './AnsiText';
import { parseAnsi, stripAnsi } from '../ansi';

export function groupKey(g: ResultGroup): string {
  return `${g.status}|${g.exit_code ?? ''}|${g.tag ?? ''}|${g.digest ?? ''}`;
}

function groupQuery(g: ResultGroup) {
  return {
    group_status: g.status,
    group_exit_code: g.exit_code,
    group_tag: g.tag,
    group_digest: g.digest,
  };
}

/** Status 3: hosts that succeeded in an earlier attempt and did not run in this one. */
const CARRIED = 3;

/**
 * Problems first, then successes, then hosts carried from an earlier attempt, then hosts still
 * waiting or running; bigger groups first.
 */
export function sortGroups(groups: ResultGroup[]): ResultGroup[] {
  const rank = (s: number) => (!taskTerminal(s) ? 3 : s === CARRIED ? 2 : taskSuccess(s) ? 1 : 0);
  return [...groups].sort((a, b) => rank(a.status) - rank(b.status) || b.host_count - a.host_count || a.status - b.status);
}

export interface GroupsProps {
  jobId: number;
  stepId: number;
  attempt: number;
  groups: ResultGroup[];
  /** Bumped when the step's counts change; open lists refresh. */
  version: number;
  onOpenLog: (row: TaskRow) => void;
}

export function ResultGroups(props: GroupsProps) {
  const t = useT();
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [touched, setTouched] = useState(false);
  const sorted = sortGroups(props.groups);

  // Until the user picks, the first group of hosts that ran in this attempt is open (hosts
  // carried from an earlier attempt stay collapsed).
  const first = sorted.find((g) => g.status !== CARRIED);
  const isOpen = (k: string) => (touched ? open.has(k) : first !== undefined && k === groupKey(first));
  const toggle = (k: string) => {
    const next = new Set(touched ? open : first ? [groupKey(first)] : []);
    if (isOpen(k)) next.delete(k);
    else next.add(k);
    setOpen(next);
    setTouched(true);
  };

  if (sorted.length === 0) return <Empty description={t('job.noGroups')} />;
  return (
    <div data-testid="result-groups">
      {sorted.map((g) => (
        <GroupCard key={groupKey(g)} group={g} open={isOpen(groupKey(g))} onToggle={() => toggle(groupKey(g))} {...props} />
      ))}
    </div>
  );
}

function GroupCard({ group, open, onToggle, jobId, stepId, attempt, version, onOpenLog }: GroupsProps & { group: ResultGroup; open: boolean; onToggle: () => void }) {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  const [copying, setCopying] = useState(false);

  const copyIps = async () => {
    setCopying(true);
    try {
      const ips: string[] = [];
      for (let start = 0; ; start += 1000) {
        const page = await api.stepHosts(stepId, { attempt, ...groupQuery(group), start, length: 1000 });
        for (const r of page.data) ips.push(r.ip);
        if (page.data.length === 0 || start + page.data.length >= page.total) break;
      }
      await copyText(ips.join('\n'));
      message.success(t('job.copied', { n: ips.length }));
    } catch (e) {
      report(e, t('job.copyFailed'));
    } finally {
      setCopying(false);
    }
  };

  const title = (
    <Space wrap size={6}>
      <TaskStatusTag status={group.status} />
      {group.exit_code !== null && <Tag>{t('job.exitCode', { code: group.exit_code })}</Tag>}
      {group.tag && <Tag color="purple">{t('job.tag')}: {group.tag}</Tag>}
      <Typography.Text strong data-testid="group-count">
        {t('job.hostsN', { n: group.host_count })}
      </Typography.Text>
      {group.digest && <OutputSnippet stepId={stepId} attempt={attempt} hostId={group.sample_host_id} />}
    </Space>
  );

  return (
    <Card
      size="small"
      className="result-group"
      data-testid="result-group"
      data-status={group.status}
      title={<span style={{ cursor: 'pointer' }} onClick={onToggle}>{title}</span>}
      extra={
        <Space>
          <Tooltip title={t('job.copyIpsHelp')}>
            <Button size="small" icon={<CopyOutlined />} loading={copying} onClick={() => void copyIps()} data-testid="copy-ips">
              {t('job.copyIps')}
            </Button>
          </Tooltip>
          <Button size="small" type="link" onClick={onToggle} data-testid="group-toggle">
            {open ? t('job.collapse') : t('job.expand')}
          </Button>
        </Space>
      }
      styles={{ body: open ? undefined : { display: 'none' } }}
    >
      {open && (
        <>
          {group.status === 3 ? (
            <Typography.Paragraph type="secondary">{t('job.carried')}</Typography.Paragraph>
          ) : (
            <SampleOutput stepId={stepId} attempt={attempt} hostId={group.sample_host_id} version={taskTerminal(group.status) ? 0 : version} />
          )}
          <TaskTable jobId={jobId} stepId={stepId} attempt={attempt} version={version} query={groupQuery(group)} onOpenLog={onOpenLog} pageSize={10} />
        </>
      )}
    </Card>
  );
}

/** The first line of a host's output, for the header of an output group. */
function OutputSnippet({ stepId, attempt, hostId }: { stepId: number; attempt: number; hostId: number }) {
  const t = useT();
  const [line, setLine] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    api.log(stepId, hostId, { attempt, offset: 0, limit: 512 }).then(
      (r) => {
        if (cancelled) return;
        const first = stripAnsi(r.content)
          .split('\n')
          .map((l) => l.trim())
          .find(Boolean);
        setLine(first ?? '');
      },
      () => !cancelled && setLine(null),
    );
    return () => {
      cancelled = true;
    };
  }, [stepId, attempt, hostId]);
  if (line === null) return null;
  return (
    <Typography.Text code ellipsis={{ tooltip: line || t('log.empty') }} style={{ maxWidth: 360 }} data-testid="group-snippet">
      {line || t('log.empty')}
    </Typography.Text>
  );
}

/** The start of one host's output, standing for its whole group. */
function SampleOutput({ stepId, attempt, hostId, version }: { stepId: number; attempt: number; hostId: number; version: number }) {
  const t = useT();
  const [text, setText] = useState<string | null>(null);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let cancelled = false;
    api.log(stepId, hostId, { attempt, offset: 0, limit: 4096 }).then(
      (r) => {
        if (cancelled) return;
        setText(r.content);
        setMore(r.total > r.next_offset);
        setError(null);
      },
      (e) => !cancelled && setError(e),
    );
    return () => {
      cancelled = true;
    };
  }, [stepId, attempt, hostId, version]);
  if (error !== null) return <ErrorAlert error={error} />;
  if (text === null) return <Spin size="small" />;
  return (
    <div style={{ marginBottom: 12 }}>
      <Typography.Text type="secondary">{t('job.sampleOutput')}</Typography.Text>
      <pre className="log-view wrap sample-output" data-testid="sample-output">
        {text ? renderAnsi(parseAnsi(text)) : <span style={{ opacity: 0.6 }}>{t('log.empty')}</span>}
        {more ? '\n…' : ''}
      </pre>
    </div>
  );
}

interface TaskQuery {
  status?: string;
  ip?: string;
  keyword?: string;
  group_status?: number;
  group_exit_code?: number | null;
  group_tag?: string | null;
  group_digest?: string | null;
}

/** A server-paged table of a step attempt's hosts. */
export function TaskTable({
  stepId,
  attempt,
  version,
  query,
  onOpenLog,
  pageSize = 20,
}: {
  jobId: number;
  stepId: number;
  attempt: number;
  version: number;
  query: TaskQuery;
  onOpenLog: (row: TaskRow) => void;
  pageSize?: number;
}) {
  const t = useT();
  const [page, setPage] = useState(1);
  const [size, setSize] = useState(pageSize);
  const [ip, setIp] = useState('');
  const dip = useDebounced(ip.trim(), 300);
  const [data, setData] = useState<Paged<TaskRow> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const qkey = JSON.stringify(query);

  useEffect(() => setPage(1), [qkey, dip, attempt]);

  const load = useCallback(
    (signal?: AbortSignal) => {
      setLoading(true);
      return api
        .stepHosts(stepId, { attempt, ...(JSON.parse(qkey) as TaskQuery), ip: dip || query.ip, start: (page - 1) * size, length: size }, signal)
        .then(
          (r) => {
            setData(r);
            setError(null);
            setLoading(false);
          },
          (e) => {
            if ((e as Error).name === 'AbortError') return;
            setError(e);
            setLoading(false);
          },
        );
    },
    [stepId, attempt, qkey, dip, page, size],
  );

  useEffect(() => {
    const ctl = new AbortController();
    void load(ctl.signal);
    return () => ctl.abort();
  }, [load, version]);

  return (
    <div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Table<TaskRow>
        size="small"
        rowKey="host_id"
        loading={loading && data === null}
        dataSource={data?.data ?? []}
        data-testid="task-table"
        title={() => (
          <Input
            allowClear
            size="small"
            style={{ width: 220 }}
            placeholder={t('job.filterIp')}
            value={ip}
            onChange={(e) => setIp(e.target.value)}
            data-testid="task-ip-filter"
          />
        )}
        pagination={{
          current: page,
          pageSize: size,
          total: data?.total ?? 0,
          size: 'small',
          showSizeChanger: true,
          pageSizeOptions: [10, 20, 50, 100],
          showTotal: (n) => t('job.hostsN', { n }),
          onChange: (p, s) => {
            setPage(p);
            setSize(s);
          },
        }}
        onRow={(r) => ({ onDoubleClick: () => onOpenLog(r) })}
        tableLayout="fixed"
        columns={[
          {
            title: t('hosts.ip'),
            dataIndex: 'ip',
            width: 136,
            ellipsis: { showTitle: false },
            render: (v, r) => (
              <Tooltip title={v}>
                <a className="mono" onClick={() => onOpenLog(r)}>
                  {v || `#${r.host_id}`}
                </a>
              </Tooltip>
            ),
          },
          { title: t('hosts.hostname'), dataIndex: 'hostname', ellipsis: { showTitle: false }, render: (v) => <Tooltip title={v}>{v}</Tooltip> },
          { title: t('hosts.status'), dataIndex: 'status', width: 150, render: (s) => <TaskStatusTag status={s} /> },
          // The reason a host ended as it did (e.g. why its agent was abnormal), only when a host
          // on this page has one.
          ...((data?.data ?? []).some((r) => r.error)
            ? [
                {
                  title: t('job.reason'),
                  dataIndex: 'error',
                  key: 'error',
                  ellipsis: { showTitle: false },
                  render: (v: string | null) =>
                    v ? (
                      <Tooltip title={v}>
                        <Typography.Text type="secondary" data-testid="task-error">
                          {v}
                        </Typography.Text>
                      </Tooltip>
                    ) : (
                      '—'
                    ),
                },
              ]
            : []),
          { title: t('job.exit'), dataIndex: 'exit_code', width: 64, render: (v) => (v === null ? '—' : v) },
          { title: t('job.duration'), key: 'dur', width: 90, render: (_, r) => (r.started_at ? fmtDuration((r.ended_at ?? Date.now()) - r.started_at) : '—') },
          { title: t('job.output'), dataIndex: 'log_len', width: 90, render: (v, r) => `${fmtBytes(v)}${r.truncated ? ' ✂' : ''}` },
          {
            title: '',
            key: 'log',
            width: 84,
            render: (_, r) => (
              <Button size="small" icon={<FileTextOutlined />} onClick={() => onOpenLog(r)} data-testid="open-log">
                {t('job.log')}
              </Button>
            ),
          },
        ]}
      />
    </div>
  );
}

/** All hosts of the attempt with status, IP and output-keyword filters. */
export function AllHosts(props: { jobId: number; stepId: number; attempt: number; version: number; onOpenLog: (row: TaskRow) => void }) {
  const t = useT();
  const [statuses, setStatuses] = useState<number[]>([]);
  const [keyword, setKeyword] = useState('');
  const dk = useDebounced(keyword.trim(), 400);
  return (
    <div>
      <div className="filters">
        <Select
          mode="multiple"
          allowClear
          style={{ minWidth: 260 }}
          placeholder={t('job.filterStatus')}
          value={statuses}
          onChange={setStatuses}
          options={Object.keys(TASK_STATUS).map((s) => ({ value: Number(s), label: taskStatusText(t, Number(s)) }))}
        />
        <Input allowClear style={{ width: 240 }} placeholder={t('job.filterKeyword')} value={keyword} onChange={(e) => setKeyword(e.target.value)} />
      </div>
      <TaskTable {...props} query={{ status: statuses.length ? statuses.join(',') : undefined, keyword: dk || undefined }} />
    </div>
  );
}
