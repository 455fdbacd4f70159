// API and enrollment tokens: the list (state, creator, expiry), creating one (its secret is shown
// once, in a dialog with a copy button: only its hash is stored) and revoking one, confirmed.

import { CopyOutlined, DeleteOutlined, PlusOutlined } from '@ant-design/icons';
import { Alert, App as AntApp, Button, Checkbox, Form, Input, InputNumber, Modal, Radio, Select, Table, Tag, Tooltip, Typography } from 'antd';
import { useState } from 'react';
import { api } from '../api/client';
import type { CreateTokenResponse, TokenRecord } from '../api/types';
import { allows, useSession } from '../auth';
import { ErrorAlert, useReportError } from '../components/common';
import { useLoad } from '../components/hooks';
import { useT } from '../i18n';
import { copyText, fmtTime } from '../util';

function tokenState(r: TokenRecord, now: number): 'revoked' | 'expired' | 'active' {
  if (r.revoked_at !== null) return 'revoked';
  if (r.expires_at !== null && r.expires_at <= now) return 'expired';
  return 'active';
}

export function Tokens() {
  const t = useT();
  const report = useReportError();
  const { modal, message } = AntApp.useApp();
  const { data: tokens, error, reload: load } = useLoad(api.tokens);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreateTokenResponse | null>(null);

  const revoke = (r: TokenRecord) =>
    modal.confirm({
      title: t('tokens.revokeConfirm', { name: r.name }),
      content: t('tokens.revokeBody'),
      okText: t('tokens.revoke'),
      okButtonProps: { danger: true, 'data-testid': 'confirm-ok' },
      cancelText: t('common.cancel'),
      onOk: async () => {
        try {
          await api.revokeToken(r.id);
          message.success(t('tokens.revokedMsg'));
          void load();
        } catch (e) {
          report(e, t('tokens.revokeFailed'));
        }
      },
    });

  const now = Date.now();
  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('tokens.title')}</Typography.Title>
        <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="new-token">
          {t('tokens.create')}
        </Button>
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Table<TokenRecord>
        rowKey="id"
        size="middle"
        tableLayout="fixed"
        data-testid="tokens-table"
        loading={tokens === null && error === null}
        dataSource={tokens ?? []}
        pagination={false}
        locale={{ emptyText: t('tokens.empty') }}
        columns={[
          { title: t('job.id'), dataIndex: 'id', width: 64 },
          { title: t('tokens.name'), dataIndex: 'name', ellipsis: { showTitle: false }, render: (v) => <Tooltip title={v}>{v}</Tooltip> },
          { title: t('tokens.kind'), dataIndex: 'kind', width: 140, render: (v) => (v === 'enroll' ? t('tokens.kindEnroll') : t('tokens.kindApi')) },
          {
            title: t('tokens.state'),
            key: 'state',
            width: 110,
            render: (_, r) => {
              const s = tokenState(r, now);
              return (
                <Tag color={s === 'active' ? 'success' : 'default'} data-state={s}>
                  {t(`tokens.${s}`)}
                </Tag>
              );
            },
          },
          { title: t('tokens.createdBy'), dataIndex: 'created_by', width: 130, ellipsis: true, responsive: ['xl'] },
          { title: t('tokens.created'), dataIndex: 'created_at', width: 170, render: fmtTime },
          {
            title: t('tokens.lastUsed'),
            dataIndex: 'last_used_at',
            width: 170,
            // Shown from 1200 px on, with the creator: the name keeps its room at 1024 px.
            responsive: ['xl'],
            render: (v: number | null) => (v === null ? t('tokens.neverUsed') : fmtTime(v)),
          },
          { title: t('tokens.expires'), dataIndex: 'expires_at', width: 170, render: (v) => (v === null ? t('tokens.never') : fmtTime(v)) },
          {
            title: t('common.actions'),
            key: 'actions',
            width: 110,
            render: (_, r) =>
              r.revoked_at === null ? (
                <Button size="small" danger icon={<DeleteOutlined />} onClick={() => revoke(r)} data-testid="revoke-token">
                  {t('tokens.revoke')}
                </Button>
              ) : null,
          },
        ]}
      />
      {creating && (
        <CreateToken
          onClose={() => setCreating(false)}
          onCreated={(r) => {
            setCreating(false);
            setCreated(r);
            void load();
          }}
        />
      )}
      {created && <TokenSecret created={created} onClose={() => setCreated(null)} />}
    </div>
  );
}

/** Creating a token: for the caller, or (`userId`, admins only) for a service account. */
export function CreateToken({
  onClose,
  onCreated,
  userId,
}: {
  onClose: () => void;
  onCreated: (r: CreateTokenResponse) => void;
  userId?: number;
}) {
  const t = useT();
  const report = useReportError();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'api' | 'enroll'>('api');
  const [days, setDays] = useState<number | null>(null);
  const [readOnly, setReadOnly] = useState(false);
  const [scope, setScope] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const { me } = useSession();
  // Enrollment tokens are for who administers a scope; a service account's token is an API token.
  const mayEnroll = userId === undefined && allows(me, 'administer');

  const submit = async () => {
    setBusy(true);
    try {
      const api_ = kind === 'api';
      onCreated(
        await api.createToken({
          name: name.trim(),
          kind,
          ttl_secs: days ? days * 86400 : undefined,
          read_only: api_ && readOnly ? true : undefined,
          only_scope_id: api_ && scope !== null ? scope : undefined,
          user_id: userId,
        }),
      );
    } catch (e) {
      report(e, t('tokens.failed'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      title={t('tokens.create')}
      onCancel={onClose}
      okText={t('tokens.createOk')}
      cancelText={t('common.cancel')}
      okButtonProps={{ disabled: !name.trim(), loading: busy, 'data-testid': 'create-token-ok' }}
      onOk={() => void submit()}
    >
      <Form layout="vertical">
        <Form.Item label={t('tokens.name')} required>
          <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={128} data-testid="token-name" />
        </Form.Item>
        {mayEnroll && (
          <Form.Item label={t('tokens.kind')}>
            <Radio.Group
              value={kind}
              onChange={(e) => setKind(e.target.value)}
              options={[
                { value: 'api', label: t('tokens.kindApi') },
                { value: 'enroll', label: t('tokens.kindEnroll') },
              ]}
            />
          </Form.Item>
        )}
        {kind === 'api' && (
          <>
            <Form.Item label={t('tokens.scope')} extra={t('tokens.scopeHelp')}>
              <Select
                allowClear
                value={scope ?? undefined}
                onChange={(v) => setScope(v ?? null)}
                placeholder={t('tokens.allScopes')}
                options={(me?.scopes ?? []).map((s) => ({ value: s.scope_id, label: s.scope_name }))}
                data-testid="token-scope"
              />
            </Form.Item>
            <Form.Item>
              <Checkbox checked={readOnly} onChange={(e) => setReadOnly(e.target.checked)} data-testid="token-read-only">
                {t('tokens.readOnly')}
              </Checkbox>
            </Form.Item>
          </>
        )}
        <Form.Item label={t('tokens.ttl')} extra={t('tokens.ttlHelp')} style={{ marginBottom: 0 }}>
          <InputNumber min={1} max={3650} precision={0} value={days} onChange={(v) => setDays(typeof v === 'number' ? v : null)} style={{ width: 160 }} />
        </Form.Item>
      </Form>
    </Modal>
  );
}

/** The dialog that shows a new token's secret, once. */
export function TokenSecret({ created, onClose }: { created: CreateTokenResponse; onClose: () => void }) {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  return (
    <Modal
      open
      title={t('tokens.secretTitle')}
      onCancel={onClose}
      // A stray click next to the dialog must not lose the secret.
      maskClosable={false}
      footer={
        <Button type="primary" onClick={onClose} data-testid="secret-done">
          {t('tokens.done')}
        </Button>
      }
    >
      <Alert type="warning" showIcon title={t('tokens.secretBody')} style={{ marginBottom: 12 }} />
      <Typography.Paragraph>
        <code className="mono" data-testid="token-secret" style={{ wordBreak: 'break-all' }}>
          {created.token}
        </code>
      </Typography.Paragraph>
      <Button
        icon={<CopyOutlined />}
        onClick={() =>
          void copyText(created.token).then(
            () => message.success(t('tokens.copied')),
            (e) => report(e),
          )
        }
        data-testid="copy-secret"
      >
        {t('tokens.copy')}
      </Button>
    </Modal>
  );
}
