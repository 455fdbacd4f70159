// Per-host log viewer: loads the log in slices (exact bytes, decoded as UTF-8), follows it live
// through the job's event stream for that host, with search, wrap toggle and download. ANSI
// colours are shown as colours (other escapes dropped); the download keeps the exact bytes.

import { ArrowDownOutlined, ArrowUpOutlined, DownloadOutlined } from '@ant-design/icons';
import { Alert, Button, Drawer, Input, Space, Switch, Tag, Tooltip, Typography } from 'antd';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api } from '../api/client';
import type { JobEvent, TaskRow } from '../api/types';
import { useT } from '../i18n';
import { taskTerminal } from '../status';
import { download, fmtBytes, fmtDuration } from '../util';
import { ErrorAlert, TaskStatusTag } from './common';
import { useDebounced } from './hooks';
import { useJobEvents } from './useJobEvents';
import { renderAnsi } from './AnsiText';
import { parseAnsi } from '../ansi';

const SLICE = 256 * 1024;
const MAX_MARKS = 2000;

export interface LogTarget {
  jobId: number;
  stepId: number;
  attempt: number;
  row: TaskRow;
  /** The attempt is the step's current one, so the log may still grow. */
  current: boolean;
}

function b64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function LogDrawer({ target, onClose }: { target: LogTarget; onClose: () => void }) {
  const t = useT();
  const { jobId, stepId, attempt, row } = target;
  const [text, setText] = useState('');
  const [bytes, setBytes] = useState(0);
  const [total, setTotal] = useState(0);
  const [finished, setFinished] = useState(taskTerminal(row.status) || !target.current);
  const [truncated, setTruncated] = useState(row.truncated);
  const [status, setStatus] = useState(row.status);
  const [error, setError] = useState<unknown>(null);
  const [wrap, setWrap] = useState(true);
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState('');
  const [current, setCurrent] = useState(0);
  const q = useDebounced(query, 200);

  const chunks = useRef<Uint8Array[]>([]);
  const next = useRef(0);
  const decoder = useRef(new TextDecoder('utf-8'));
  const loading = useRef(false);
  const again = useRef(false);
  const pre = useRef<HTMLPreElement>(null);

  const load = useCallback(async () => {
    if (loading.current) {
      again.current = true;
      return;
    }
    loading.current = true;
    try {
      for (;;) {
        const r = await api.log(stepId, row.host_id, { attempt, offset: next.current, limit: SLICE });
        const data = b64ToBytes(r.content_base64);
        if (data.length > 0) {
          chunks.current.push(data);
          next.current = r.next_offset;
          const piece = decoder.current.decode(data, { stream: !r.finished || r.next_offset < r.total });
          setText((s) => s + piece);
          setBytes(r.next_offset);
        }
        setTotal(r.total);
        setTruncated(r.truncated);
        if (r.finished) setFinished(true);
        setError(null);
        if (data.length === 0 || r.next_offset >= r.total) {
          if (!again.current) break;
          again.current = false;
        }
      }
    } catch (e) {
      setError(e);
    } finally {
      loading.current = false;
    }
  }, [stepId, row.host_id, attempt]);

  useEffect(() => {
    void load();
  }, [load]);

  const live = useJobEvents(jobId, {
    hostId: row.host_id,
    enabled: !finished,
    onEvent: (e: JobEvent | { event: 'resync' }) => {
      if (e.event === 'log' && e.step_id === stepId && e.attempt === attempt && e.total > next.current) void load();
      if (e.event === 'task' && e.step_id === stepId && e.attempt === attempt) {
        setStatus(e.status);
        if (taskTerminal(e.status)) void load();
      }
      if (e.event === 'resync') void load();
    },
  });

  // A slow fallback while the stream is down.
  useEffect(() => {
    if (finished || live === 'live') return;
    const id = setInterval(() => void load(), 3000);
    return () => clearInterval(id);
  }, [finished, live, load]);

  // Keep the newest output in view while following.
  useEffect(() => {
    if (follow && !q && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow, q]);

  // Colours are rendered, other escapes dropped; search runs over the text as shown.
  const segments = useMemo(() => parseAnsi(text), [text]);
  const plain = useMemo(() => segments.map((s) => s.text).join(''), [segments]);

  const matches = useMemo(() => {
    if (!q) return [] as number[];
    const hay = plain.toLowerCase();
    const needle = q.toLowerCase();
    const out: number[] = [];
    for (let i = hay.indexOf(needle); i >= 0 && out.length < MAX_MARKS; i = hay.indexOf(needle, i + needle.length)) out.push(i);
    return out;
  }, [plain, q]);

  useEffect(() => setCurrent(0), [q]);
  useEffect(() => {
    const el = pre.current?.querySelector('mark.current');
    el?.scrollIntoView({ block: 'center' });
  }, [current, matches]);

  const rendered = useMemo(() => renderAnsi(segments, q ? matches : [], q.length, current), [segments, q, matches, current]);

  const saveFile = () => {
    const name = `shoal-job${jobId}-step${stepId}-attempt${attempt}-${row.ip || row.host_id}.log`;
    const all = new Uint8Array(chunks.current.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of chunks.current) {
      all.set(c, off);
      off += c.length;
    }
    download(name, all);
  };

  const duration = row.started_at ? fmtDuration((row.ended_at ?? Date.now()) - row.started_at) : '—';

  return (
    <Drawer
      open
      size={Math.min(1000, window.innerWidth - 80)}
      onClose={onClose}
      destroyOnHidden
      title={
        <Space wrap>
          <span className="mono" data-testid="log-host">{row.ip || `#${row.host_id}`}</span>
          <Typography.Text type="secondary">{row.hostname}</Typography.Text>
          <TaskStatusTag status={status} />
          {row.exit_code !== null && <Tag>{t('job.exitCode', { code: row.exit_code })}</Tag>}
          <Typography.Text type="secondary">{t('job.attemptN', { n: attempt + 1 })}</Typography.Text>
        </Space>
      }
      extra={
        <Space>
          {!finished && (
            <Tag color={live === 'live' ? 'processing' : 'warning'} data-testid="log-live">
              {live === 'live' ? t('job.live') : t('job.reconnecting')}
            </Tag>
          )}
        </Space>
      }
    >
      <Space wrap style={{ marginBottom: 8, width: '100%', justifyContent: 'space-between' }}>
        <Space.Compact>
          <Input
            allowClear
            style={{ width: 240 }}
            placeholder={t('log.search')}
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            onPressEnter={() => matches.length && setCurrent((current + 1) % matches.length)}
            suffix={q ? <span data-testid="log-matches">{matches.length ? `${current + 1}/${matches.length}${matches.length >= MAX_MARKS ? '+' : ''}` : '0/0'}</span> : undefined}
            data-testid="log-search"
          />
          <Tooltip title={t('log.prev')}>
            <Button icon={<ArrowUpOutlined />} disabled={!matches.length} onClick={() => setCurrent((current - 1 + matches.length) % matches.length)} />
          </Tooltip>
          <Tooltip title={t('log.next')}>
            <Button icon={<ArrowDownOutlined />} disabled={!matches.length} onClick={() => setCurrent((current + 1) % matches.length)} />
          </Tooltip>
        </Space.Compact>
        <Space>
          <Space size={4}>
            <Switch size="small" checked={wrap} onChange={setWrap} data-testid="log-wrap" />
            <span>{t('log.wrap')}</span>
          </Space>
          {!finished && (
            <Space size={4}>
              <Switch size="small" checked={follow} onChange={setFollow} />
              <span>{t('log.follow')}</span>
            </Space>
          )}
          <Button icon={<DownloadOutlined />} onClick={saveFile} disabled={bytes === 0} data-testid="log-download">
            {t('log.download')}
          </Button>
        </Space>
      </Space>
      {row.error && <Alert type="warning" showIcon style={{ marginBottom: 8 }} title={row.error} />}
      {truncated && <Alert type="info" showIcon style={{ marginBottom: 8 }} title={t('log.truncated')} />}
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <pre ref={pre} className={`log-view ${wrap ? 'wrap' : 'nowrap'}`} style={{ height: 'calc(100vh - 230px)' }} data-testid="log-content">
        {text === '' ? <span style={{ opacity: 0.6 }}>{finished ? t('log.empty') : t('log.waiting')}</span> : rendered}
      </pre>
      <Typography.Text type="secondary">
        {fmtBytes(bytes)}
        {total > bytes ? ` / ${fmtBytes(total)}` : ''} · {t('job.duration')}: {duration}
      </Typography.Text>
    </Drawer>
  );
}
