// Scopes and who holds which role in each (admin): the list of scopes, creating one, and the role
// bindings of the chosen scope (add or change with a role and a host selector, remove), with a
// live preview of the hosts the selector lets the role execute on.

import { DeleteOutlined, PlusOutlined } from '@ant-design/icons';
import { App as AntApp, Button, Card, Form, Input, Modal, Select, Space, Table, Tag, Tooltip, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { api } from '../api/client';
import type { PreviewResponse, Role, RoleBinding, Scope } from '../api/types';
import { useSession } from '../auth';
import { ErrorAlert, errorTitle, isErrorCode, useReportError } from '../components/common';
import { useDebounced, useLoad } from '../components/hooks';
import { useT } from '../i18n';
import { fmtTime } from '../util';

const ROLES: Role[] = ['viewer', 'operator', 'developer', 'owner'];

export function Scopes() {
  const t = useT();
  const report = useReportError();
  const { modal } = AntApp.useApp();
  const { me } = useSession();
  const { data: scopes, error, reload } = useLoad(api.scopes);
  const [scopeId, setScopeId] = useState<number | null>(null);
  const [newScope, setNewScope] = useState('');
  const isAdmin = me?.is_admin ?? false;

  const createScope = async () => {
    try {
      const s = await api.createScope(newScope.trim());
      setNewScope('');
      await reload();
      setScopeId(s.id);
    } catch (e) {
      report(e, t('scopes.createFailed'));
    }
  };

  const current = scopes?.find((s) => s.id === scopeId) ?? scopes?.[0] ?? null;
  const mayAdminister = (s: Scope) => isAdmin || (me?.scopes.find((a) => a.scope_id === s.id)?.permissions.includes('administer') ?? false);

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('scopes.title')}</Typography.Title>
        <Space>
          <Input
            placeholder={t('scopes.newName')}
            value={newScope}
            onChange={(e) => setNewScope(e.target.value)}
            disabled={!isAdmin}
            maxLength={128}
            data-testid="scope-name"
          />
          <Tooltip title={isAdmin ? undefined : t('access.needAdmin')}>
            <Button icon={<PlusOutlined />} disabled={!isAdmin || !newScope.trim()} onClick={() => void createScope()} data-testid="new-scope">
              {t('scopes.create')}
            </Button>
          </Tooltip>
        </Space>
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void reload()} />}
      <Space align="start" style={{ width: '100%' }} size="large">
        <Table<Scope>
          rowKey="id"
          size="small"
          style={{ width: 280 }}
          data-testid="scopes-table"
          loading={scopes === null && error === null}
          dataSource={scopes ?? []}
          pagination={false}
          onRow={(s) => ({ onClick: () => setScopeId(s.id), style: { cursor: 'pointer' } })}
          rowClassName={(s) => (s.id === current?.id ? 'ant-table-row-selected' : '')}
          columns={[
            { title: t('job.id'), dataIndex: 'id', width: 56 },
            { title: t('scopes.name'), dataIndex: 'name' },
          ]}
        />
        {current && <Bindings key={current.id} scope={current} editable={mayAdminister(current)} confirm={modal.confirm} />}
      </Space>
    </div>
  );
}

function Bindings({ scope, editable, confirm }: { scope: Scope; editable: boolean; confirm: ReturnType<typeof AntApp.useApp>['modal']['confirm'] }) {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  const { data: bindings, error, reload } = useLoad(() => api.bindings({ scope_id: scope.id }));
  const [editing, setEditing] = useState<RoleBinding | 'new' | null>(null);
  const why = editable ? undefined : t('access.needAdminister');

  const remove = (b: RoleBinding) =>
    confirm({
      title: t('bindings.removeConfirm', { name: b.user_name, role: t(`role.${b.role}`) }),
      okButtonProps: { danger: true, 'data-testid': 'confirm-ok' },
      okText: t('common.delete'),
      cancelText: t('common.cancel'),
      onOk: async () => {
        try {
          await api.deleteBinding(b.id);
          message.success(t('bindings.removed'));
          void reload();
        } catch (e) {
          report(e, t('bindings.failed'));
        }
      },
    });

  return (
    <Card
      title={t('bindings.title', { scope: scope.name })}
      style={{ minWidth: 640 }}
      extra={
        <Tooltip title={why}>
          <Button type="primary" icon={<PlusOutlined />} disabled={!editable} onClick={() => setEditing('new')} data-testid="new-binding">
            {t('bindings.add')}
          </Button>
        </Tooltip>
      }
    >
      {error !== null && <ErrorAlert error={error} onRetry={() => void reload()} />}
      <Table<RoleBinding>
        rowKey="id"
        size="small"
        data-testid="bindings-table"
        loading={bindings === null && error === null}
        dataSource={bindings ?? []}
        pagination={false}
        locale={{ emptyText: t('bindings.empty') }}
        columns={[
          { title: t('users.name'), dataIndex: 'user_name' },
          { title: t('bindings.role'), dataIndex: 'role', width: 110, render: (v: Role) => <Tag color="blue">{t(`role.${v}`)}</Tag> },
          { title: t('bindings.selector'), dataIndex: 'host_selector', render: (v: string) => (v ? <code>{v}</code> : t('bindings.allHosts')) },
          { title: t('users.source'), dataIndex: 'source', width: 80 },
          { title: t('tokens.created'), dataIndex: 'created_at', width: 170, render: fmtTime },
          {
            title: t('common.actions'),
            key: 'a',
            width: 160,
            render: (_, b) => (
              <Tooltip title={why}>
                <Space size={4}>
                  <Button size="small" disabled={!editable} onClick={() => setEditing(b)}>
                    {t('common.edit')}
                  </Button>
                  <Button size="small" danger icon={<DeleteOutlined />} disabled={!editable} onClick={() => remove(b)} data-testid="remove-binding" />
                </Space>
              </Tooltip>
            ),
          },
        ]}
      />
      {editing && (
        <EditBinding
          scope={scope}
          binding={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void reload();
          }}
        />
      )}
    </Card>
  );
}

function EditBinding({ scope, binding, onClose, onSaved }: { scope: Scope; binding: RoleBinding | null; onClose: () => void; onSaved: () => void }) {
  const t = useT();
  const report = useReportError();
  const { data: users } = useLoad(api.users);
  const [userId, setUserId] = useState<number | null>(binding?.user_id ?? null);
  const [role, setRole] = useState<Role>(binding?.role ?? 'viewer');
  const [selector, setSelector] = useState(binding?.host_selector ?? '');
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState<PreviewResponse | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const debounced = useDebounced(selector.trim(), 300);

  // The hosts of the scope the selector allows, refreshed as it is typed.
  useEffect(() => {
    const ctl = new AbortController();
    setPreviewError(null);
    if (!debounced) {
      setPreview(null);
      return;
    }
    api.preview({ selector: debounced }, ctl.signal, scope.id).then(setPreview, (e) => {
      if ((e as Error).name === 'AbortError') return;
      // A selector that matches nothing is a valid binding: it allows no host.
      if (isErrorCode(e, 'EMPTY_TARGET')) {
        setPreview({ total: 0, online: 0, offline: 0, abnormal: 0, not_online_ids: [] });
        return;
      }
      setPreview(null);
      setPreviewError(e);
    });
    return () => ctl.abort();
  }, [debounced, scope.id]);

  const submit = async () => {
    if (userId === null) return;
    setBusy(true);
    try {
      await api.putBinding({ user_id: userId, scope_id: scope.id, role, host_selector: selector.trim() });
      onSaved();
    } catch (e) {
      report(e, t('bindings.failed'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      title={binding ? t('bindings.change') : t('bindings.add')}
      onCancel={onClose}
      onOk={() => void submit()}
      okText={t('common.save')}
      cancelText={t('common.cancel')}
      okButtonProps={{ loading: busy, disabled: userId === null, 'data-testid': 'binding-ok' }}
    >
      <Form layout="vertical">
        <Form.Item label={t('users.name')} required>
          <Select
            showSearch
            optionFilterProp="label"
            disabled={binding !== null}
            value={userId ?? undefined}
            onChange={setUserId}
            options={(users ?? []).map((u) => ({ value: u.id, label: u.name }))}
            data-testid="binding-user"
          />
        </Form.Item>
        <Form.Item label={t('bindings.role')} extra={t(`role.${role}Help`)}>
          <Select value={role} onChange={setRole} options={ROLES.map((r) => ({ value: r, label: t(`role.${r}`) }))} data-testid="binding-role" />
        </Form.Item>
        <Form.Item label={t('bindings.selector')} extra={t('bindings.selectorHelp')} style={{ marginBottom: 8 }}>
          <Input value={selector} onChange={(e) => setSelector(e.target.value)} placeholder="env!=prod" className="mono" data-testid="binding-selector" />
        </Form.Item>
        <div data-testid="binding-preview">
          {previewError !== null ? (
            <Typography.Text type="danger">{errorTitle(t, previewError)}</Typography.Text>
          ) : preview && debounced ? (
            <Typography.Text type="secondary" data-total={preview.total}>
              {t('bindings.previewCount', { n: preview.total, online: preview.online })}
            </Typography.Text>
          ) : (
            <Typography.Text type="secondary">{t('bindings.allHosts')}</Typography.Text>
          )}
        </div>
      </Form>
    </Modal>
  );
}
