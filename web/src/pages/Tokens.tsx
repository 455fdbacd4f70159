// API and enrollment tokens: the list (state, creator, expiry), creating one (its secret is shown
// once, in a dialog with a copy button: only its hash is stored) and revoking one, confirmed.

import { CopyOutlined, DeleteOutlined, PlusOutlined } from '@ant-design/icons';
import { Alert, App as AntApp, Button, Form, Input, InputNumber, Modal, Radio, Table, Tag, Tooltip, Typography } from 'antd';
import { useState } from 'react';
import { api } from '../api/client';
import type { CreateTokenResponse, TokenRecord } from '../api/types';
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
      {created && (
        <Modal
          open
          title={t('tokens.secretTitle')}
          onCancel={() => setCreated(null)}
          // A stray click next to the dialog must not lose the secret.
          maskClosable={false}
          footer={
            <Button type="primary" onClick={() => setCreated(null)} data-testid="secret-done">
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
      )}
    </div>
  );
}

function CreateToken({ onClose, onCreated }: { onClose: () => void; onCreated: (r: CreateTokenResponse) => void }) {
  const t = useT();
  const report = useReportError();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'api' | 'enroll'>('api');
  const [days, setDays] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    setBusy(true);
    try {
      onCreated(await api.createToken({ name: name.trim(), kind, ttl_secs: days ? days * 86400 : undefined }));
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
        <Form.Item label={t('tokens.ttl')} extra={t('tokens.ttlHelp')} style={{ marginBottom: 0 }}>
          <InputNumber min={1} max={3650} precision={0} value={days} onChange={(v) => setDays(typeof v === 'number' ? v : null)} style={{ width: 160 }} />
        </Form.Item>
      </Form>
    </Modal>
  );
}
