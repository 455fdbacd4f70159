// Target picker: hosts (searched on the server), IPs, a label selector and saved dynamic groups,
// with a live count from `POST /targets/preview` that flags hosts whose agent is not online.

import { WarningOutlined } from '@ant-design/icons';
import { Alert, Card, Input, Select, Space, Spin, Tag, Typography } from 'antd';
import { useEffect, useMemo, useRef, useState } from 'react';
import { api } from '../api/client';
import type { Group, Host, PreviewResponse, Targets } from '../api/types';
import { useT } from '../i18n';
import { errorDetail, errorTitle, useReportError } from './common';
import { useDebounced } from './hooks';

export interface TargetState {
  hostIds: number[];
  ips: string;
  selector: string;
  groupIds: number[];
}

export const EMPTY_TARGETS: TargetState = { hostIds: [], ips: '', selector: '', groupIds: [] };

export function toTargets(s: TargetState): Targets {
  const ips = s.ips
    .split(/[\s,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);
  const t: Targets = {};
  if (s.hostIds.length) t.host_ids = s.hostIds;
  if (ips.length) t.ips = ips;
  if (s.selector.trim()) t.selector = s.selector.trim();
  if (s.groupIds.length) t.group_ids = s.groupIds;
  return t;
}

export function targetsEmpty(s: TargetState): boolean {
  return Object.keys(toTargets(s)).length === 0;
}

export function TargetPicker({
  value,
  onChange,
  knownHosts,
  onPreview,
  title,
}: {
  value: TargetState;
  onChange: (v: TargetState) => void;
  /** Hosts already known (e.g. when prefilled), so their tags show names. */
  knownHosts?: Host[];
  onPreview?: (p: PreviewResponse | null) => void;
  /** The card's title (default: "Targets"). */
  title?: string;
}) {
  const t = useT();
  const report = useReportError();
  const [groups, setGroups] = useState<Group[]>([]);
  const [search, setSearch] = useState('');
  const [found, setFound] = useState<Host[]>([]);
  const [searching, setSearching] = useState(false);
  const cache = useRef(new Map<number, Host>());
  const debouncedSearch = useDebounced(search, 250);

  for (const h of knownHosts ?? []) cache.current.set(h.id, h);

  useEffect(() => {
    api.groups().then(setGroups, (e) => report(e, t('groups.loadFailed')));
  }, [report, t]);

  useEffect(() => {
    const ctl = new AbortController();
    setSearching(true);
    api.hosts({ q: debouncedSearch || undefined, length: 20 }, ctl.signal).then(
      (p) => {
        for (const h of p.data) cache.current.set(h.id, h);
        setFound(p.data);
        setSearching(false);
      },
      (e) => {
        if ((e as Error).name !== 'AbortError') {
          setSearching(false);
          report(e, t('targets.searchFailed'));
        }
      },
    );
    return () => ctl.abort();
  }, [debouncedSearch, report, t]);

  const options = useMemo(() => {
    const ids = new Set<number>([...value.hostIds, ...found.map((h) => h.id)]);
    return [...ids].map((id) => {
      const h = cache.current.get(id);
      return {
        value: id,
        label: h ? `${h.hostname} (${h.ip})` : `#${id}`,
        title: h ? `${h.hostname} ${h.ip}` : String(id),
        disabled: false,
        status: h?.status,
      };
    });
  }, [value.hostIds, found]);

  // The live count.
  const targets = useMemo(() => toTargets(value), [value]);
  const debouncedTargets = useDebounced(JSON.stringify(targets), 300);
  const [preview, setPreview] = useState<PreviewResponse | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const [previewing, setPreviewing] = useState(false);
  const [offlineHosts, setOfflineHosts] = useState<Host[]>([]);
  useEffect(() => {
    const tg = JSON.parse(debouncedTargets) as Targets;
    if (Object.keys(tg).length === 0) {
      setPreview(null);
      setPreviewError(null);
      onPreview?.(null);
      return;
    }
    const ctl = new AbortController();
    setPreviewing(true);
    api.preview(tg, ctl.signal).then(
      (p) => {
        setPreview(p);
        setPreviewError(null);
        setPreviewing(false);
        onPreview?.(p);
        // Name the first few hosts that are not online.
        Promise.all(p.not_online_ids.slice(0, 5).map((id) => cache.current.get(id) ?? api.host(id))).then(
          (hs) => {
            for (const h of hs) cache.current.set(h.id, h);
            if (!ctl.signal.aborted) setOfflineHosts(hs);
          },
          () => setOfflineHosts([]),
        );
      },
      (e) => {
        if ((e as Error).name === 'AbortError') return;
        setPreview(null);
        setPreviewError(e);
        setPreviewing(false);
        onPreview?.(null);
      },
    );
    return () => ctl.abort();
  }, [debouncedTargets]);

  const notOnline = preview ? preview.offline + preview.abnormal : 0;

  return (
    <Card size="small" title={title ?? t('targets.title')} data-testid="target-picker">
      <Space orientation="vertical" style={{ width: '100%' }} size="small">
        <div>
          <Typography.Text type="secondary">{t('targets.hosts')}</Typography.Text>
          <Select
            mode="multiple"
            style={{ width: '100%' }}
            placeholder={t('targets.hostsPlaceholder')}
            value={value.hostIds}
            onChange={(ids: number[]) => onChange({ ...value, hostIds: ids })}
            showSearch={{ filterOption: false, onSearch: setSearch, searchValue: search }}
            notFoundContent={searching ? <Spin size="small" /> : t('targets.noHosts')}
            options={options}
            optionRender={(o) => (
              <Space>
                <span>{o.label}</span>
                {o.data.status && o.data.status !== 'online' && (
                  <Tag color={o.data.status === 'abnormal' ? 'error' : 'default'}>{t(`agent.${o.data.status}` as 'agent.online')}</Tag>
                )}
              </Space>
            )}
            maxTagCount="responsive"
            data-testid="target-hosts"
          />
        </div>
        <div>
          <Typography.Text type="secondary">{t('targets.ips')}</Typography.Text>
          <Input.TextArea
            autoSize={{ minRows: 1, maxRows: 4 }}
            value={value.ips}
            onChange={(e) => onChange({ ...value, ips: e.target.value })}
            placeholder="10.0.0.1, 10.0.0.2"
            className="mono"
            data-testid="target-ips"
          />
        </div>
        <div>
          <Typography.Text type="secondary">{t('targets.selector')}</Typography.Text>
          <Input
            value={value.selector}
            onChange={(e) => onChange({ ...value, selector: e.target.value })}
            placeholder="role=web,env in (prod,staging)"
            className="mono"
            data-testid="target-selector"
          />
        </div>
        <div>
          <Typography.Text type="secondary">{t('targets.groups')}</Typography.Text>
          <Select
            mode="multiple"
            style={{ width: '100%' }}
            placeholder={t('targets.groupsPlaceholder')}
            value={value.groupIds}
            onChange={(ids: number[]) => onChange({ ...value, groupIds: ids })}
            options={groups.map((g) => ({ value: g.id, label: g.name }))}
            showSearch={{ optionFilterProp: 'label' }}
            data-testid="target-groups"
          />
        </div>
        <div data-testid="target-count" aria-live="polite">
          {previewError !== null ? (
            <Alert type="error" showIcon className="shoal-error" title={errorTitle(t, previewError)} description={errorDetail(previewError)} />
          ) : preview ? (
            <Space orientation="vertical" style={{ width: '100%' }} size={4}>
              <Space wrap>
                <Typography.Text strong data-testid="target-total">
                  {t('targets.count', { n: preview.total })}
                </Typography.Text>
                <Tag color="success">
                  {t('agent.online')} {preview.online}
                </Tag>
                {preview.offline > 0 && (
                  <Tag>
                    {t('agent.offline')} {preview.offline}
                  </Tag>
                )}
                {preview.abnormal > 0 && (
                  <Tag color="error">
                    {t('agent.abnormal')} {preview.abnormal}
                  </Tag>
                )}
                {previewing && <Spin size="small" />}
              </Space>
              {notOnline > 0 && (
                <Alert
                  type="warning"
                  showIcon
                  icon={<WarningOutlined />}
                  data-testid="target-offline-warning"
                  title={t('targets.notOnline', { n: notOnline })}
                  description={
                    <span>
                      {offlineHosts.map((h) => (
                        <Tag key={h.id}>
                          {h.hostname} ({h.ip})
                        </Tag>
                      ))}
                      {notOnline > offlineHosts.length && t('groups.andMore', { n: notOnline - offlineHosts.length })}
                    </span>
                  }
                />
              )}
              {preview.total === 0 && <Alert type="warning" showIcon title={t('targets.none')} />}
            </Space>
          ) : (
            <Typography.Text type="secondary">{previewing ? <Spin size="small" /> : t('targets.pickSome')}</Typography.Text>
          )}
        </div>
      </Space>
    </Card>
  );
}
