// Dynamic groups: saved label selectors. Creating or editing one shows, live, how many hosts match
// and the first few of them.

import { CodeOutlined, DeleteOutlined, EditOutlined, PlusOutlined } from '@ant-design/icons';
import { Alert, App as AntApp, Button, Form, Input, List, Modal, Space, Table, Tag, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { api } from '../api/client';
import type { Group, Host, PreviewResponse } from '../api/types';
import { AgentStatusTag, ErrorAlert, errorDetail, errorTitle, Needs, useReportError } from '../components/common';
import { useDebounced, useLoad } from '../components/hooks';
import { useT } from '../i18n';
import { fmtTime } from '../util';

export function Groups() {
  const t = useT();
  const navigate = useNavigate();
  const report = useReportError();
  const { modal, message } = AntApp.useApp();
  const { data: groups, error, reload: load } = useLoad(api.groups);
  const [editing, setEditing] = useState<Group | 'new' | null>(null);

  const remove = (g: Group) =>
    modal.confirm({
      title: t('groups.deleteConfirm', { name: g.name }),
      okText: t('common.delete'),
      okButtonProps: { danger: true },
      cancelText: t('common.cancel'),
      onOk: async () => {
        try {
          await api.deleteGroup(g.id);
          message.success(t('groups.deleted'));
          void load();
        } catch (e) {
          report(e, t('groups.deleteFailed'));
        }
      },
    });

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('groups.title')}</Typography.Title>
        <Needs perm="manage">
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="new-group">
            {t('groups.new')}
          </Button>
        </Needs>
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Table<Group>
        rowKey="id"
        size="middle"
        loading={groups === null && error === null}
        dataSource={groups ?? []}
        pagination={false}
        locale={{ emptyText: t('groups.empty') }}
        columns={[
          { title: t('groups.name'), dataIndex: 'name', render: (v, g) => <Link to={`/hosts?group=${g.id}`}>{v}</Link> },
          { title: t('groups.selector'), dataIndex: 'selector', render: (v) => <code>{v}</code> },
          { title: t('groups.updated'), dataIndex: 'updated_at', width: 180, render: fmtTime },
          {
            title: t('common.actions'),
            key: 'actions',
            width: 300,
            render: (_, g) => (
              <Space>
                <Needs perm="execute" scope={g.scope_id}>
                  <Button size="small" icon={<CodeOutlined />} onClick={() => navigate(`/execute?group=${g.id}`)}>
                    {t('groups.run')}
                  </Button>
                </Needs>
                <Needs perm="manage" scope={g.scope_id}>
                  <Button size="small" icon={<EditOutlined />} onClick={() => setEditing(g)}>
                    {t('common.edit')}
                  </Button>
                </Needs>
                <Needs perm="manage" scope={g.scope_id}>
                  <Button size="small" danger icon={<DeleteOutlined />} onClick={() => remove(g)}>
                    {t('common.delete')}
                  </Button>
                </Needs>
              </Space>
            ),
          },
        ]}
      />
      {editing !== null && (
        <GroupEditor
          group={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void load();
          }}
        />
      )}
    </div>
  );
}

export function GroupEditor({
  group,
  initialSelector,
  onClose,
  onSaved,
}: {
  group: Group | null;
  initialSelector?: string;
  onClose: () => void;
  onSaved: (g: Group) => void;
}) {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  const [name, setName] = useState(group?.name ?? '');
  const [selector, setSelector] = useState(group?.selector ?? initialSelector ?? '');
  const [busy, setBusy] = useState(false);
  const debounced = useDebounced(selector.trim(), 300);
  const preview = useSelectorPreview(debounced);

  const save = async () => {
    setBusy(true);
    try {
      const g = group ? await api.updateGroup(group.id, name, selector) : await api.createGroup(name, selector);
      message.success(t('groups.saved'));
      onSaved(g);
    } catch (e) {
      report(e, t('groups.saveFailed'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      title={group ? t('groups.edit') : t('groups.new')}
      onCancel={onClose}
      onOk={() => void save()}
      okText={t('common.save')}
      cancelText={t('common.cancel')}
      okButtonProps={{ disabled: !name.trim() || !selector.trim(), 'data-testid': 'group-save' }}
      confirmLoading={busy}
      width={620}
    >
      <Form layout="vertical">
        <Form.Item label={t('groups.name')} required>
          <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={128} data-testid="group-name" />
        </Form.Item>
        <Form.Item label={t('groups.selector')} required extra={t('groups.selectorHelp')}>
          <Input value={selector} onChange={(e) => setSelector(e.target.value)} className="mono" placeholder="role=web,env in (prod,staging)" data-testid="group-selector" />
        </Form.Item>
      </Form>
      <SelectorPreview preview={preview} />
    </Modal>
  );
}

interface PreviewState {
  loading: boolean;
  error: unknown;
  counts: PreviewResponse | null;
  sample: Host[];
}

export function useSelectorPreview(selector: string): PreviewState {
  const [state, setState] = useState<PreviewState>({ loading: false, error: null, counts: null, sample: [] });
  useEffect(() => {
    if (!selector) {
      setState({ loading: false, error: null, counts: null, sample: [] });
      return;
    }
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    Promise.all([api.preview({ selector }, ctl.signal), api.hosts({ selector, length: 8 }, ctl.signal)]).then(
      ([counts, page]) => setState({ loading: false, error: null, counts, sample: page.data }),
      (e) => {
        if ((e as Error).name !== 'AbortError') setState({ loading: false, error: e, counts: null, sample: [] });
      },
    );
    return () => ctl.abort();
  }, [selector]);
  return state;
}

function SelectorPreview({ preview }: { preview: PreviewState }) {
  const t = useT();
  if (preview.error !== null)
    return <Alert type="error" showIcon className="shoal-error" title={errorTitle(t, preview.error)} description={errorDetail(preview.error)} />;
  if (!preview.counts) return <Typography.Text type="secondary">{t('groups.previewHint')}</Typography.Text>;
  const c = preview.counts;
  return (
    <div data-testid="group-preview">
      <Space style={{ marginBottom: 8 }} wrap>
        <Typography.Text strong>{t('groups.matching', { n: c.total })}</Typography.Text>
        <Tag color="success">{t('agent.online')} {c.online}</Tag>
        {c.offline > 0 && <Tag>{t('agent.offline')} {c.offline}</Tag>}
        {c.abnormal > 0 && <Tag color="error">{t('agent.abnormal')} {c.abnormal}</Tag>}
      </Space>
      <List
        size="small"
        bordered
        loading={preview.loading}
        dataSource={preview.sample}
        locale={{ emptyText: t('groups.noMatch') }}
        renderItem={(h) => (
          <List.Item extra={<AgentStatusTag status={h.status} />}>
            <span className="mono">{h.ip}</span>&nbsp;&nbsp;{h.hostname}
          </List.Item>
        )}
        footer={c.total > preview.sample.length ? <Typography.Text type="secondary">{t('groups.andMore', { n: c.total - preview.sample.length })}</Typography.Text> : undefined}
      />
    </div>
  );
}
