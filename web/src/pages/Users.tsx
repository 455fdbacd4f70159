// Accounts (admin): people and service accounts; creating one, enabling or disabling it, the
// admin flag, setting a password, and API tokens for service accounts.

import { KeyOutlined, PlusOutlined } from '@ant-design/icons';
import { App as AntApp, Button, Checkbox, Form, Input, Modal, Radio, Space, Switch, Table, Tag, Tooltip, Typography } from 'antd';
import { useState } from 'react';
import { api } from '../api/client';
import type { CreateTokenResponse, CreateUserRequest, User } from '../api/types';
import { useSession } from '../auth';
import { ErrorAlert, useReportError } from '../components/common';
import { useLoad } from '../components/hooks';
import { useT } from '../i18n';
import { fmtTime } from '../util';
import { CreateToken, TokenSecret } from './Tokens';

export function Users() {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  const { me } = useSession();
  const { data: users, error, reload } = useLoad(api.users);
  const [creating, setCreating] = useState(false);
  const [passwordFor, setPasswordFor] = useState<User | null>(null);
  const [tokenFor, setTokenFor] = useState<User | null>(null);
  const [created, setCreated] = useState<CreateTokenResponse | null>(null);
  const isAdmin = me?.is_admin ?? false;
  const notAdmin = isAdmin ? undefined : t('access.needAdmin');

  const update = async (u: User, body: Parameters<typeof api.updateUser>[1]) => {
    try {
      await api.updateUser(u.id, body);
      message.success(t('users.saved'));
      void reload();
    } catch (e) {
      report(e, t('users.saveFailed'));
    }
  };

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('users.title')}</Typography.Title>
        <Tooltip title={notAdmin}>
          <Button type="primary" icon={<PlusOutlined />} disabled={!isAdmin} onClick={() => setCreating(true)} data-testid="new-user">
            {t('users.create')}
          </Button>
        </Tooltip>
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void reload()} />}
      <Table<User>
        rowKey="id"
        size="middle"
        data-testid="users-table"
        loading={users === null && error === null}
        dataSource={users ?? []}
        pagination={false}
        columns={[
          { title: t('users.name'), dataIndex: 'name', render: (v, u) => <span title={u.display_name}>{v}</span> },
          {
            title: t('users.kind'),
            dataIndex: 'kind',
            width: 130,
            render: (v) => <Tag>{v === 'service' ? t('users.kindService') : t('users.kindUser')}</Tag>,
          },
          { title: t('users.source'), dataIndex: 'source', width: 90 },
          {
            title: t('users.enabled'),
            dataIndex: 'enabled',
            width: 100,
            render: (v: boolean, u) => (
              <Tooltip title={notAdmin}>
                <Switch size="small" checked={v} disabled={!isAdmin || u.id === me?.user_id} onChange={(on) => void update(u, { enabled: on })} data-testid="user-enabled" />
              </Tooltip>
            ),
          },
          {
            title: t('users.admin'),
            dataIndex: 'is_admin',
            width: 90,
            render: (v: boolean, u) => (
              <Tooltip title={notAdmin}>
                <Switch size="small" checked={v} disabled={!isAdmin || u.id === me?.user_id} onChange={(on) => void update(u, { is_admin: on })} data-testid="user-admin" />
              </Tooltip>
            ),
          },
          { title: t('tokens.created'), dataIndex: 'created_at', width: 170, render: fmtTime, responsive: ['xl'] },
          {
            title: t('common.actions'),
            key: 'actions',
            width: 230,
            render: (_, u) => (
              <Space size={4}>
                {u.kind === 'user' && (
                  <Button size="small" disabled={!isAdmin} onClick={() => setPasswordFor(u)} data-testid="set-password">
                    {t('users.setPassword')}
                  </Button>
                )}
                {u.kind === 'service' && (
                  <Button size="small" icon={<KeyOutlined />} disabled={!isAdmin} onClick={() => setTokenFor(u)} data-testid="service-token">
                    {t('users.newToken')}
                  </Button>
                )}
              </Space>
            ),
          },
        ]}
      />
      {creating && (
        <CreateUser
          onClose={() => setCreating(false)}
          onCreated={() => {
            setCreating(false);
            void reload();
          }}
        />
      )}
      {passwordFor && <SetPassword user={passwordFor} onClose={() => setPasswordFor(null)} />}
      {tokenFor && (
        <CreateToken
          userId={tokenFor.id}
          onClose={() => setTokenFor(null)}
          onCreated={(r) => {
            setTokenFor(null);
            setCreated(r);
          }}
        />
      )}
      {created && <TokenSecret created={created} onClose={() => setCreated(null)} />}
    </div>
  );
}

function CreateUser({ onClose, onCreated }: { onClose: () => void; onCreated: () => void }) {
  const t = useT();
  const report = useReportError();
  const [form] = Form.useForm<CreateUserRequest & { kind: 'user' | 'service' }>();
  const [busy, setBusy] = useState(false);
  const kind = Form.useWatch('kind', form) ?? 'user';

  const submit = async () => {
    const v = await form.validateFields();
    setBusy(true);
    try {
      await api.createUser({
        name: v.name.trim(),
        display_name: v.display_name || undefined,
        email: v.email || undefined,
        kind: v.kind,
        is_admin: v.is_admin ?? false,
        password: v.kind === 'user' && v.password ? v.password : undefined,
      });
      onCreated();
    } catch (e) {
      report(e, t('users.createFailed'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      title={t('users.create')}
      onCancel={onClose}
      onOk={() => void submit().catch(() => {})}
      okText={t('tokens.createOk')}
      cancelText={t('common.cancel')}
      okButtonProps={{ loading: busy, 'data-testid': 'create-user-ok' }}
    >
      <Form form={form} layout="vertical" requiredMark={false} initialValues={{ kind: 'user', is_admin: false }}>
        <Form.Item name="kind" label={t('users.kind')}>
          <Radio.Group
            options={[
              { value: 'user', label: t('users.kindUser') },
              { value: 'service', label: t('users.kindService') },
            ]}
          />
        </Form.Item>
        <Form.Item name="name" label={t('users.name')} extra={t('users.nameRule')} rules={[{ required: true, whitespace: true, message: t('auth.nameRequired') }]}>
          <Input maxLength={64} data-testid="user-name-input" />
        </Form.Item>
        <Form.Item name="display_name" label={t('users.displayName')}>
          <Input maxLength={128} />
        </Form.Item>
        <Form.Item name="email" label={t('users.email')}>
          <Input maxLength={256} />
        </Form.Item>
        {kind === 'user' && (
          <Form.Item name="password" label={t('auth.password')} extra={t('users.passwordHelp')} rules={[{ min: 10, message: t('account.passwordRule') }]}>
            <Input.Password autoComplete="new-password" data-testid="user-password-input" />
          </Form.Item>
        )}
        <Form.Item name="is_admin" valuePropName="checked" style={{ marginBottom: 0 }}>
          <Checkbox>{t('users.admin')}</Checkbox>
        </Form.Item>
      </Form>
    </Modal>
  );
}

function SetPassword({ user, onClose }: { user: User; onClose: () => void }) {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    try {
      await api.updateUser(user.id, { password });
      message.success(t('users.saved'));
      onClose();
    } catch (e) {
      report(e, t('users.saveFailed'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={t('users.setPasswordFor', { name: user.name })}
      onCancel={onClose}
      onOk={() => void submit()}
      okText={t('common.save')}
      cancelText={t('common.cancel')}
      okButtonProps={{ loading: busy, disabled: password.length < 10 }}
    >
      <Input.Password value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
      <Typography.Text type="secondary">{t('account.passwordRule')}</Typography.Text>
    </Modal>
  );
}
