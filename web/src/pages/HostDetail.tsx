// One host: facts, labels (agent labels read-only, console labels editable) and its recent
// executions (history filtered by the host's IP).

import { CodeOutlined, DeleteOutlined, EditOutlined, PlusOutlined, StopOutlined } from '@ant-design/icons';
import { Alert, App as AntApp, Button, Card, Descriptions, Empty, Input, Modal, Space, Table, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { api } from '../api/client';
import type { Host, Job } from '../api/types';
import { AgentStatusTag, ErrorAlert, RunStatusTag, Needs, useReportError } from '../components/common';
import { useT } from '../i18n';
import { fmtTime } from '../util';

export function HostDetail() {
  const t = useT();
  const id = Number(useParams().id);
  const navigate = useNavigate();
  const [host, setHost] = useState<Host | null>(null);
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);
  const report = useReportError();
  const { modal, message } = AntApp.useApp();

  const load = useCallback(async () => {
    try {
      const h = await api.host(id);
      setHost(h);
      setError(null);
      if (h.ip) {
        const j = await api.jobs({ ip: h.ip, length: 10 });
        setJobs(j.data);
      } else setJobs([]);
    } catch (e) {
      setError(e);
    }
  }, [id]);

  useEffect(() => {
    void load();
  }, [load]);

  if (error !== null && !host) return <ErrorAlert error={error} onRetry={() => void load()} />;
  if (!host) return <Card loading />;

  const revoke = () =>
    modal.confirm({
      title: t('hosts.revokeConfirm', { name: host.hostname || host.ip }),
      content: t('hosts.revokeBody'),
      okText: t('hosts.revoke'),
      okButtonProps: { danger: true, 'data-testid': 'confirm-ok' },
      cancelText: t('common.cancel'),
      onOk: async () => {
        try {
          const h = await api.revokeHost(host.id);
          message.success(t('hosts.revoked'));
          setHost(h);
        } catch (e) {
          report(e, t('hosts.revokeFailed'));
        }
      },
    });

  return (
    <div>
      <div className="page-title">
        <Space>
          <Typography.Title level={3}>{host.hostname || host.ip}</Typography.Title>
          <AgentStatusTag status={host.status} />
        </Space>
        <Space wrap>
          <Needs perm="execute" scope={host.scope_id}>
            <Button type="primary" icon={<CodeOutlined />} disabled={host.revoked_at !== null} onClick={() => navigate(`/execute?host=${host.id}`)}>
              {t('host.runScript')}
            </Button>
          </Needs>
          {host.revoked_at === null && (
            <Needs perm="administer" scope={host.scope_id}>
              <Button danger icon={<StopOutlined />} onClick={revoke} data-testid="revoke-host">
                {t('hosts.revoke')}
              </Button>
            </Needs>
          )}
        </Space>
      </div>
      {host.revoked_at !== null && (
        <Alert type="warning" showIcon style={{ marginBottom: 16 }} title={t('hosts.revokedAt', { time: fmtTime(host.revoked_at) })} data-testid="host-revoked" />
      )}
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Card title={t('host.facts')} style={{ marginBottom: 16 }}>
        <Descriptions
          size="small"
          bordered
          column={{ xs: 1, md: 2, xl: 3 }}
          items={[
            { key: 'hostname', label: t('hosts.hostname'), children: host.hostname },
            { key: 'ip', label: t('hosts.ip'), children: <span className="mono">{host.ip || '—'}</span> },
            { key: 'id', label: t('host.id'), children: host.id },
            { key: 'os', label: t('hosts.os'), children: `${host.os} ${host.os_version}`.trim() },
            { key: 'arch', label: t('hosts.arch'), children: host.arch },
            { key: 'agent', label: t('host.agentVersion'), children: host.agent_version },
            { key: 'last_seen', label: t('hosts.lastSeen'), children: fmtTime(host.last_seen) },
            { key: 'created', label: t('host.enrolled'), children: fmtTime(host.created_at) },
            { key: 'ips', label: t('host.allIps'), children: <span className="mono">{host.ips.join(', ') || '—'}</span> },
            { key: 'agent_id', label: t('host.agentId'), span: 'filled', children: <span className="mono" style={{ wordBreak: 'break-all' }}>{host.agent_id}</span> },
          ]}
        />
      </Card>
      <Card
        title={t('hosts.labels')}
        style={{ marginBottom: 16 }}
        extra={
          <Needs perm="manage" scope={host.scope_id}>
            <Button icon={<EditOutlined />} onClick={() => setEditing(true)} data-testid="edit-labels">
              {t('host.editLabels')}
            </Button>
          </Needs>
        }
      >
        <LabelTags labels={host.labels} />
        {Object.keys(host.agent_labels).length > 0 && (
          <Typography.Paragraph type="secondary" style={{ marginTop: 12, marginBottom: 0 }}>
            {t('host.agentLabelsNote')}: <LabelTags labels={host.agent_labels} />
          </Typography.Paragraph>
        )}
      </Card>
      <Card title={t('host.recent')}>
        <Table<Job>
          size="small"
          rowKey="id"
          loading={jobs === null}
          dataSource={jobs ?? []}
          pagination={false}
          locale={{ emptyText: t('history.empty') }}
          columns={[
            { title: t('history.name'), dataIndex: 'name', render: (v, j) => <Link to={`/jobs/${j.id}`}>{v}</Link> },
            { title: t('history.status'), dataIndex: 'status', width: 140, render: (s) => <RunStatusTag status={s} /> },
            { title: t('history.operator'), dataIndex: 'operator', width: 160 },
            { title: t('history.created'), dataIndex: 'created_at', width: 180, render: fmtTime },
          ]}
          footer={() => (host.ip ? <Link to={`/jobs?ip=${encodeURIComponent(host.ip)}`}>{t('host.allExecutions')}</Link> : null)}
        />
      </Card>
      {editing && (
        <LabelEditor
          host={host}
          onClose={() => setEditing(false)}
          onSaved={(h) => {
            setHost(h);
            setEditing(false);
          }}
        />
      )}
    </div>
  );
}

function LabelTags({ labels }: { labels: Record<string, string> }) {
  const t = useT();
  const entries = Object.entries(labels);
  if (entries.length === 0) return <Typography.Text type="secondary">{t('host.noLabels')}</Typography.Text>;
  return (
    <span data-testid="label-tags">
      {entries.map(([k, v]) => (
        <Tag key={k} color="blue">
          {k}={v}
        </Tag>
      ))}
    </span>
  );
}

/** Edits the labels set through the API (they overlay the agent's own labels). */
function LabelEditor({ host, onClose, onSaved }: { host: Host; onClose: () => void; onSaved: (h: Host) => void }) {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  const [rows, setRows] = useState<[string, string][]>(() => Object.entries(host.user_labels));
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  const save = async () => {
    const labels: Record<string, string> = {};
    for (const [k, v] of rows) {
      const key = k.trim();
      if (!key) continue;
      if (labels[key] !== undefined) {
        setProblem(t('host.duplicateKey', { key }));
        return;
      }
      labels[key] = v.trim();
    }
    setProblem(null);
    setBusy(true);
    try {
      const h = await api.setLabels(host.id, labels);
      message.success(t('host.labelsSaved'));
      onSaved(h);
    } catch (e) {
      report(e, t('host.labelsSaveFailed'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      title={t('host.editLabels')}
      onCancel={onClose}
      onOk={() => void save()}
      okText={t('common.save')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      width={560}
    >
      <Typography.Paragraph type="secondary">{t('host.labelsHelp')}</Typography.Paragraph>
      {rows.length === 0 && <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('host.noLabels')} />}
      {rows.map(([k, v], i) => (
        <Space.Compact key={i} style={{ display: 'flex', marginBottom: 8 }}>
          <Input
            placeholder={t('host.labelKey')}
            value={k}
            onChange={(e) => setRows(rows.map((r, j) => (j === i ? [e.target.value, r[1]] : r)))}
            data-testid={`label-key-${i}`}
          />
          <Input
            placeholder={t('host.labelValue')}
            value={v}
            onChange={(e) => setRows(rows.map((r, j) => (j === i ? [r[0], e.target.value] : r)))}
            data-testid={`label-value-${i}`}
          />
          <Button icon={<DeleteOutlined />} onClick={() => setRows(rows.filter((_, j) => j !== i))} aria-label={t('common.delete')} />
        </Space.Compact>
      ))}
      <Button icon={<PlusOutlined />} onClick={() => setRows([...rows, ['', '']])} data-testid="add-label">
        {t('host.addLabel')}
      </Button>
      {problem && (
        <Typography.Paragraph type="danger" style={{ marginTop: 8 }}>
          {problem}
        </Typography.Paragraph>
      )}
    </Modal>
  );
}
