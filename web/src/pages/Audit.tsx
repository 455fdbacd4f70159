// The audit trail (admin): who did what, where, with what outcome; newest first, filtered by time,
// actor, action, scope, resource and outcome, "load more" by `next_before_id`, and an export of
// the same filters.

import { DownloadOutlined, SearchOutlined } from '@ant-design/icons';
import { Button, DatePicker, Input, Select, Space, Table, Tag, Tooltip, Typography } from 'antd';
import type { Dayjs } from 'dayjs';
import { useCallback, useEffect, useState } from 'react';
import { api, auditExportUrl, type AuditQuery } from '../api/client';
import type { AuditRecord } from '../api/types';
import { useSession } from '../auth';
import { ErrorAlert } from '../components/common';
import { useT } from '../i18n';
import { fmtTime } from '../util';

const PAGE = 100;
const OUTCOMES = ['ok', 'denied', 'failed', 'throttled'];

export function Audit() {
  const t = useT();
  const { me } = useSession();
  const [range, setRange] = useState<[Dayjs | null, Dayjs | null] | null>(null);
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [resource, setResource] = useState('');
  const [outcome, setOutcome] = useState<string | undefined>();
  const [scopeId, setScopeId] = useState<number | undefined>();
  const [filters, setFilters] = useState<AuditQuery>({});
  const [rows, setRows] = useState<AuditRecord[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async (q: AuditQuery, before?: number) => {
    setBusy(true);
    setError(null);
    try {
      const page = await api.audit({ ...q, before_id: before, limit: PAGE });
      setRows((old) => (before === undefined ? page.data : [...(old ?? []), ...page.data]));
      setNext(page.next_before_id);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);

  useEffect(() => {
    void load(filters);
  }, [filters, load]);

  const apply = () =>
    setFilters({
      from: range?.[0]?.valueOf(),
      to: range?.[1]?.valueOf(),
      actor: actor.trim() || undefined,
      action: action.trim() || undefined,
      resource: resource.trim() || undefined,
      outcome,
      scope_id: scopeId,
    });

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('audit.title')}</Typography.Title>
        <Button icon={<DownloadOutlined />} href={auditExportUrl(filters)} data-testid="audit-export">
          {t('audit.export')}
        </Button>
      </div>
      <Space wrap style={{ marginBottom: 16 }}>
        <DatePicker.RangePicker showTime value={range} onChange={(v) => setRange(v)} />
        <Input placeholder={t('audit.actor')} value={actor} onChange={(e) => setActor(e.target.value)} style={{ width: 140 }} data-testid="audit-actor" />
        <Input placeholder={t('audit.action')} value={action} onChange={(e) => setAction(e.target.value)} style={{ width: 170 }} data-testid="audit-action" />
        <Select
          allowClear
          placeholder={t('audit.scope')}
          value={scopeId}
          onChange={setScopeId}
          style={{ width: 150 }}
          // The scopes whose trail the account may read: every one for an admin, else those it administers.
          options={(me?.scopes ?? [])
            .filter((s) => me?.is_admin || s.permissions.includes('administer'))
            .map((s) => ({ value: s.scope_id, label: s.scope_name }))}
        />
        <Input placeholder={t('audit.resource')} value={resource} onChange={(e) => setResource(e.target.value)} style={{ width: 150 }} />
        <Select
          allowClear
          placeholder={t('audit.outcome')}
          value={outcome}
          onChange={setOutcome}
          style={{ width: 130 }}
          options={OUTCOMES.map((o) => ({ value: o, label: t(`audit.outcome.${o}` as 'audit.outcome.ok') }))}
        />
        <Button type="primary" icon={<SearchOutlined />} onClick={apply} data-testid="audit-search">
          {t('audit.search')}
        </Button>
      </Space>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load(filters)} />}
      <Table<AuditRecord>
        rowKey="id"
        size="small"
        data-testid="audit-table"
        loading={rows === null && error === null}
        dataSource={rows ?? []}
        pagination={false}
        locale={{ emptyText: t('audit.empty') }}
        columns={[
          { title: t('audit.at'), dataIndex: 'at', width: 170, render: fmtTime },
          { title: t('audit.actor'), dataIndex: 'actor', width: 120, render: (v: string) => v || '—' },
          { title: t('audit.action'), dataIndex: 'action', width: 180, render: (v: string) => <code>{v}</code> },
          { title: t('audit.resource'), dataIndex: 'resource', ellipsis: true },
          {
            title: t('audit.outcome'),
            dataIndex: 'outcome',
            width: 100,
            render: (v: string, r) => (
              <Tooltip title={r.detail || undefined}>
                <Tag color={v === 'ok' ? 'success' : v === 'denied' ? 'warning' : 'error'}>
                  {OUTCOMES.includes(v) ? t(`audit.outcome.${v}` as 'audit.outcome.ok') : v}
                </Tag>
              </Tooltip>
            ),
          },
          { title: t('audit.origin'), dataIndex: 'origin', width: 70 },
          { title: t('audit.address'), dataIndex: 'address', width: 130, responsive: ['xl'] },
        ]}
      />
      {next !== null && (
        <div style={{ textAlign: 'center', marginTop: 12 }}>
          <Button loading={busy} onClick={() => void load(filters, next)} data-testid="audit-more">
            {t('audit.more')}
          </Button>
        </div>
      )}
    </div>
  );
}
