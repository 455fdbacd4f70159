// Hosts: search and filter (status, label selector, IP, OS, dynamic group) over a virtualised
// table that asks the server for one page of rows at a time, only around what is on screen. Its
// columns are sized to the window, so nothing is cut or scrolls sideways at 1024 px.

import { ReloadOutlined } from '@ant-design/icons';
import { Button, Input, Select, Space, Table, Tag, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { api } from '../api/client';
import type { Group, Host } from '../api/types';
import { AgentStatusTag, ErrorAlert, useReportError } from '../components/common';
import { useDebounced, useElementWidth, useWindowHeight } from '../components/hooks';
import { usePagedRows } from '../components/usePagedRows';
import { useT } from '../i18n';
import { fmtTime } from '../util';

const ROW_H = 40;
const TEXT_KEYS = ['q', 'ip', 'os', 'selector'] as const;

interface Row {
  key: number;
  host: Host | undefined;
}

export function Hosts() {
  const t = useT();
  const navigate = useNavigate();
  const report = useReportError();
  const [params, setParams] = useSearchParams();
  const [groups, setGroups] = useState<Group[]>([]);
  const height = useWindowHeight();
  const [tableBox, tableWidth] = useElementWidth<HTMLDivElement>();

  // Text filters are edited locally and applied after a pause in typing.
  const [text, setText] = useState(() => ({
    q: params.get('q') ?? '',
    ip: params.get('ip') ?? '',
    os: params.get('os') ?? '',
    selector: params.get('selector') ?? '',
  }));
  const debounced = useDebounced(text, 350);
  const status = params.get('status') ?? '';
  const groupId = params.get('group') ?? '';

  useEffect(() => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(debounced)) {
      if (v.trim()) next.set(k, v.trim());
      else next.delete(k);
    }
    if (next.toString() !== params.toString()) setParams(next, { replace: true });
  }, [debounced]);

  // Keep the inputs in step with the URL when it changes from elsewhere (menu, back button).
  const urlText = TEXT_KEYS.map((k) => params.get(k) ?? '').join('\u0000');
  useEffect(() => {
    const fromUrl = Object.fromEntries(TEXT_KEYS.map((k) => [k, params.get(k) ?? ''])) as typeof text;
    setText((cur) => (TEXT_KEYS.every((k) => cur[k].trim() === fromUrl[k]) ? cur : fromUrl));
  }, [urlText]);

  useEffect(() => {
    api.groups().then(setGroups, (e) => report(e, t('groups.loadFailed')));
  }, [report, t]);

  const setParam = (k: string, v: string | undefined) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };

  const filterKey = params.toString();
  const fetchPage = useCallback(
    (start: number, length: number, signal: AbortSignal) =>
      api.hosts(
        {
          q: params.get('q') ?? undefined,
          ip: params.get('ip') ?? undefined,
          os: params.get('os') ?? undefined,
          selector: params.get('selector') ?? undefined,
          status: params.get('status') ?? undefined,
          group_id: params.get('group') ? Number(params.get('group')) : undefined,
          start,
          length,
        },
        signal,
      ),
    [filterKey],
  );
  const rows = usePagedRows(fetchPage, filterKey);

  const data = useMemo<Row[]>(
    () => Array.from({ length: rows.total ?? 0 }, (_, i) => ({ key: i, host: rows.row(i) })),
    [rows.total, rows.version],
  );

  const tableHeight = Math.max(240, height - 260);
  const scrollTimer = useRef<number | undefined>(undefined);
  const onScroll = useCallback(
    (e: React.UIEvent<HTMLElement>) => {
      const el = e.currentTarget;
      const top = el.scrollTop;
      window.clearTimeout(scrollTimer.current);
      scrollTimer.current = window.setTimeout(() => {
        const first = Math.floor(top / ROW_H);
        const last = first + Math.ceil(tableHeight / ROW_H);
        rows.ensure(Math.max(0, first - 20), last + 20);
      }, 60);
    },
    [rows, tableHeight],
  );

  const placeholder = <span className="placeholder-cell" />;
  // Columns sized to the table's width: the two text columns share what the fixed ones leave;
  // below 1100 px of table, architecture and last seen give way (the host page shows them).
  const wide = tableWidth >= 1100;
  const fixed = 140 + 100 + 160 + (wide ? 80 + 170 : 0);
  // 16 px stay free for the vertical scroll bar.
  const rest = Math.max(360, tableWidth - 16 - fixed);
  const nameWidth = Math.round(rest * 0.42);
  const columns: ColumnsType<Row> = [
    {
      title: t('hosts.hostname'),
      key: 'hostname',
      width: nameWidth,
      ellipsis: true,
      render: (_, r) => (r.host ? <span data-testid="host-cell" title={r.host.hostname}>{r.host.hostname}</span> : placeholder),
    },
    { title: t('hosts.ip'), key: 'ip', width: 140, ellipsis: true, render: (_, r) => (r.host ? <span className="mono" title={r.host.ip}>{r.host.ip}</span> : placeholder) },
    { title: t('hosts.status'), key: 'status', width: 100, render: (_, r) => (r.host ? <AgentStatusTag status={r.host.status} /> : placeholder) },
    {
      title: t('hosts.os'),
      key: 'os',
      width: 160,
      ellipsis: true,
      render: (_, r) => (r.host ? `${r.host.os} ${r.host.os_version}`.trim() : placeholder),
    },
    ...(wide ? [{ title: t('hosts.arch'), key: 'arch', width: 80, render: (_: unknown, r: Row) => (r.host ? r.host.arch : placeholder) }] : []),
    {
      title: t('hosts.labels'),
      key: 'labels',
      width: rest - nameWidth,
      ellipsis: true,
      render: (_, r) =>
        r.host ? (
          <span title={Object.entries(r.host.labels).map(([k, v]) => `${k}=${v}`).join(', ')}>
            {Object.entries(r.host.labels)
              .slice(0, 4)
              .map(([k, v]) => (
                <Tag key={k} style={{ marginInlineEnd: 4 }}>
                  {k}={v}
                </Tag>
              ))}
            {Object.keys(r.host.labels).length > 4 && <Tag>+{Object.keys(r.host.labels).length - 4}</Tag>}
          </span>
        ) : (
          placeholder
        ),
    },
    ...(wide ? [{ title: t('hosts.lastSeen'), key: 'last_seen', width: 170, render: (_: unknown, r: Row) => (r.host ? fmtTime(r.host.last_seen) : placeholder) }] : []),
  ];

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('hosts.title')}</Typography.Title>
        <Space>
          <Typography.Text type="secondary" data-testid="hosts-total">
            {rows.total === null ? '' : t('hosts.count', { n: rows.total })}
          </Typography.Text>
          <Tooltip title={t('common.refresh')}>
            <Button icon={<ReloadOutlined />} onClick={rows.reload} loading={rows.loading} />
          </Tooltip>
        </Space>
      </div>
      <div className="filters">
        <Input.Search
          allowClear
          style={{ width: 220 }}
          placeholder={t('hosts.search')}
          value={text.q}
          onChange={(e) => setText({ ...text, q: e.target.value })}
          data-testid="hosts-search"
        />
        <Select
          allowClear
          style={{ width: 150 }}
          placeholder={t('hosts.status')}
          value={status || undefined}
          onChange={(v) => setParam('status', v)}
          options={['online', 'offline', 'abnormal'].map((s) => ({ value: s, label: t(`agent.${s}` as 'agent.online') }))}
          data-testid="hosts-status"
        />
        <Input
          allowClear
          style={{ width: 160 }}
          placeholder={t('hosts.ipFilter')}
          value={text.ip}
          onChange={(e) => setText({ ...text, ip: e.target.value })}
        />
        <Input
          allowClear
          style={{ width: 140 }}
          placeholder={t('hosts.osFilter')}
          value={text.os}
          onChange={(e) => setText({ ...text, os: e.target.value })}
        />
        <Input
          allowClear
          style={{ width: 240 }}
          placeholder={t('hosts.selectorFilter')}
          value={text.selector}
          onChange={(e) => setText({ ...text, selector: e.target.value })}
          data-testid="hosts-selector"
        />
        <Select
          allowClear
          style={{ width: 180 }}
          placeholder={t('hosts.groupFilter')}
          value={groupId || undefined}
          onChange={(v) => setParam('group', v)}
          options={groups.map((g) => ({ value: String(g.id), label: g.name }))}
        />
      </div>
      {rows.error !== null && <ErrorAlert error={rows.error} onRetry={rows.reload} />}
      <div ref={tableBox}>
      <Table<Row>
        className="host-table"
        data-testid="hosts-table"
        virtual
        size="small"
        columns={columns}
        dataSource={data}
        pagination={false}
        loading={rows.total === null && rows.error === null}
        scroll={{ x: fixed + rest, y: tableHeight }}
        onScroll={onScroll}
        locale={{ emptyText: t('hosts.empty') }}
        onRow={(r) => ({
          onClick: () => r.host && navigate(`/hosts/${r.host.id}`),
        })}
      />
      </div>
    </div>
  );
}
