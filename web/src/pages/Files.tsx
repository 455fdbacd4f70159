// File distribution: sources (files on hosts, uploads with a progress bar, small inline text
// files), targets with a live count, target directory, owner, strict/force mode, duplicate
// handling, speed limits (MB/s), timeout and peer-to-peer. Starting it opens the job page, which
// follows the transfer live. "Run again" (`?from=JOB`) prefills everything from a file job.

import { CloudUploadOutlined, DeleteOutlined, DesktopOutlined, FileTextOutlined, InboxOutlined, SendOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Col, Empty, Form, Input, InputNumber, Progress, Radio, Row, Select, Space, Switch, Tag, Typography, Upload } from 'antd';
import { useEffect, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { api, uploadFile } from '../api/client';
import type { DuplicateHandling, FileSourceSpec, Host, PreviewResponse } from '../api/types';
import { ErrorAlert, errorDetail, errorTitle, useReportError } from '../components/common';
import { stepHosts, TimeoutInput, useStartJob } from '../components/jobForm';
import { isFileSpec } from '../components/StepSpec';
import { EMPTY_TARGETS, TargetPicker, toTargets, type TargetState } from '../components/TargetPicker';
import { useT } from '../i18n';
import { buildTransfer, DEFAULT_TRANSFER, type SourceDraft, type TransferDraft } from '../transfer';
import { fmtBytes } from '../util';

/** A source as the form holds it: server sources keep the picker's state. */
type FormSource =
  | { kind: 'server'; id: number; picker: TargetState; paths: string; account: string; known?: Host[] }
  | Exclude<SourceDraft, { kind: 'server' }>;

/**
 * A stored source as the form holds it: hosts and paths, or an upload still on the server (its
 * size asked again; one that expired must be uploaded again and says so).
 */
async function prefillSource(src: FileSourceSpec, id: () => number): Promise<FormSource> {
  if (src.kind === 'host') {
    const hosts = await Promise.all(src.host_ids.map((h) => api.host(h).catch(() => null)));
    return {
      kind: 'server',
      id: id(),
      picker: { ...EMPTY_TARGETS, hostIds: src.host_ids },
      known: hosts.filter((h): h is Host => h !== null),
      paths: src.paths.join('\n'),
      account: src.account ?? '',
    };
  }
  try {
    const u = await api.upload(src.upload_id);
    return { kind: 'upload', id: id(), name: src.name, size: u.size, sent: u.size, uploadId: u.id };
  } catch (e) {
    return { kind: 'upload', id: id(), name: src.name, size: 0, sent: 0, error: `${src.name}: ${errorDetail(e)}` };
  }
}

function toDraft(s: FormSource): SourceDraft {
  return s.kind === 'server' ? { kind: 'server', id: s.id, targets: toTargets(s.picker), paths: s.paths, account: s.account } : s;
}

export function Files() {
  const t = useT();
  const report = useReportError();
  const [draft, setDraft] = useState<TransferDraft>(DEFAULT_TRANSFER);
  const [sources, setSources] = useState<FormSource[]>([]);
  const [targets, setTargets] = useState<TargetState>(EMPTY_TARGETS);
  const [preview, setPreview] = useState<PreviewResponse | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const { busy, start } = useStartJob(preview, { started: 'files.started', failed: 'files.failed' });
  const nextId = useRef(1);
  const uploads = useRef(new Map<number, AbortController>());
  const [params] = useSearchParams();
  const from = params.get('from');
  const [known, setKnown] = useState<Host[]>([]);
  const [prefillError, setPrefillError] = useState<unknown>(null);
  const [prefilling, setPrefilling] = useState(false);

  // "Run again": the sources, settings and targets of a file job. The prefill runs when the URL
  // changes, not when the language does.
  const tRef = useRef(t);
  tRef.current = t;
  useEffect(() => {
    if (!from) return;
    let cancelled = false;
    (async () => {
      setPrefillError(null);
      setPrefilling(true);
      try {
        const detail = await api.job(Number(from));
        const step = detail.steps[0]?.step;
        if (!step || !isFileSpec(step.spec)) throw new Error(tRef.current('files.notFile'));
        const spec = step.spec;
        const [hosts, list] = await Promise.all([stepHosts(step.id), Promise.all(spec.sources.map((src) => prefillSource(src, () => nextId.current++)))]);
        if (cancelled) return;
        setDraft({
          name: detail.job.name,
          targetDir: spec.target_dir,
          account: spec.account ?? '',
          strict: spec.dir_mode === 'strict',
          duplicate: spec.duplicate ?? 'overwrite',
          uploadLimit: spec.upload_limit_mbps ?? null,
          downloadLimit: spec.download_limit_mbps ?? null,
          timeout: spec.timeout_secs || DEFAULT_TRANSFER.timeout,
          p2p: spec.peer_to_peer !== false,
        });
        setSources(list);
        setKnown(hosts);
        setTargets({ ...EMPTY_TARGETS, hostIds: hosts.map((h) => h.id) });
      } catch (e) {
        if (!cancelled) setPrefillError(e);
      } finally {
        if (!cancelled) setPrefilling(false);
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [from]);

  const add = (s: FormSource) => setSources((list) => [...list, s]);
  const update = (id: number, patch: Partial<FormSource>) =>
    setSources((list) => list.map((s) => (s.id === id ? ({ ...s, ...patch } as FormSource) : s)));
  const remove = (id: number) => {
    uploads.current.get(id)?.abort();
    uploads.current.delete(id);
    setSources((list) => list.filter((s) => s.id !== id));
  };

  const startUpload = (file: File) => {
    const id = nextId.current++;
    const ctl = new AbortController();
    uploads.current.set(id, ctl);
    add({ kind: 'upload', id, name: file.name, size: file.size, sent: 0 });
    uploadFile(file, file.name, (sent) => update(id, { sent }), ctl.signal).then(
      (r) => {
        uploads.current.delete(id);
        update(id, { uploadId: r.upload_id, name: r.name, size: r.size, sent: r.size });
      },
      (e) => {
        uploads.current.delete(id);
        if ((e as Error).name === 'AbortError') return;
        update(id, { error: `${errorTitle(t, e)}: ${errorDetail(e)}` });
        report(e, t('files.uploadFailed'));
      },
    );
  };

  const submit = async () => {
    setProblem(null);
    const built = buildTransfer(draft, sources.map(toDraft), toTargets(targets));
    if (built.problem) return setProblem(t(built.problem.key, built.problem.vars));
    await start(() => api.transferFiles(built.req));
  };

  const startButton = (size?: 'large') => (
    <Button type="primary" size={size} icon={<SendOutlined />} loading={busy} onClick={() => void submit()} data-testid="start-transfer">
      {t('files.start')}
    </Button>
  );

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('files.title')}</Typography.Title>
        {startButton('large')}
      </div>
      {prefillError !== null && <ErrorAlert error={prefillError} />}
      {from && prefillError === null && (
        <Alert style={{ marginBottom: 12 }} type="info" showIcon title={prefilling ? t('execute.loadingFrom', { id: from }) : t('files.from', { id: from })} data-testid="files-from" />
      )}
      {problem && <Alert style={{ marginBottom: 12 }} type="error" showIcon title={problem} data-testid="files-problem" />}
      <Row gutter={16}>
        <Col xs={24} lg={14}>
          <Card
            size="small"
            style={{ marginBottom: 16 }}
            title={t('files.sources')}
            extra={
              <Space wrap size={4}>
                <Button
                  size="small"
                  icon={<DesktopOutlined />}
                  onClick={() => add({ kind: 'server', id: nextId.current++, picker: EMPTY_TARGETS, paths: '', account: '' })}
                  data-testid="add-server-source"
                >
                  {t('files.addServer')}
                </Button>
                <Button
                  size="small"
                  icon={<FileTextOutlined />}
                  onClick={() => add({ kind: 'inline', id: nextId.current++, name: '', content: '' })}
                  data-testid="add-inline-source"
                >
                  {t('files.addInline')}
                </Button>
              </Space>
            }
          >
            <Upload.Dragger
              multiple
              showUploadList={false}
              customRequest={({ file }) => startUpload(file as File)}
              data-testid="upload-dragger"
            >
              <p className="ant-upload-drag-icon">
                <InboxOutlined />
              </p>
              <p className="ant-upload-text">{t('files.dragger')}</p>
            </Upload.Dragger>
            <div style={{ marginTop: 12 }} data-testid="file-sources">
              {sources.length === 0 && <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('files.noSources')} />}
              {sources.map((s, i) => (
                <SourceCard key={s.id} index={i} source={s} onChange={(patch) => update(s.id, patch)} onRemove={() => remove(s.id)} />
              ))}
            </div>
          </Card>
        </Col>
        <Col xs={24} lg={10}>
          <div data-testid="file-targets">
            <TargetPicker value={targets} onChange={setTargets} onPreview={setPreview} knownHosts={known} />
          </div>
          <Card size="small" style={{ marginTop: 16 }}>
            <Form layout="vertical">
              <Form.Item label={t('files.targetDir')} extra={t('files.targetDirHelp')}>
                <Input
                  value={draft.targetDir}
                  onChange={(e) => setDraft({ ...draft, targetDir: e.target.value })}
                  placeholder="/opt/app/[date:%Y%m%d]"
                  className="mono"
                  data-testid="target-dir"
                />
              </Form.Item>
              <Row gutter={12}>
                <Col span={12}>
                  <Form.Item label={t('files.account')}>
                    <Input value={draft.account} onChange={(e) => setDraft({ ...draft, account: e.target.value })} placeholder={t('files.accountPlaceholder')} data-testid="target-account" />
                  </Form.Item>
                </Col>
                <Col span={12}>
                  <Form.Item label={t('files.name')}>
                    <Input value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} placeholder={t('execute.namePlaceholder')} maxLength={512} data-testid="transfer-name" />
                  </Form.Item>
                </Col>
              </Row>
              <Form.Item label={t('files.mode')}>
                <Radio.Group
                  value={draft.strict ? 'strict' : 'force'}
                  onChange={(e) => setDraft({ ...draft, strict: e.target.value === 'strict' })}
                  options={[
                    { value: 'force', label: t('files.modeForce') },
                    { value: 'strict', label: t('files.modeStrict') },
                  ]}
                  data-testid="transfer-mode"
                />
              </Form.Item>
              <Form.Item label={t('files.duplicate')}>
                <Select<DuplicateHandling>
                  value={draft.duplicate}
                  onChange={(duplicate) => setDraft({ ...draft, duplicate })}
                  options={[
                    { value: 'overwrite', label: t('files.dupOverwrite') },
                    { value: 'by_source_ip', label: t('files.dupBySourceIp') },
                    { value: 'by_date_and_source_ip', label: t('files.dupByDateAndSourceIp') },
                  ]}
                  data-testid="duplicate"
                />
              </Form.Item>
              <Row gutter={12}>
                <Col span={12}>
                  <Form.Item label={t('files.uploadLimit')} extra={t('files.limitHelp')}>
                    <SpeedLimitInput value={draft.uploadLimit} onChange={(uploadLimit) => setDraft({ ...draft, uploadLimit })} testId="upload-limit" />
                  </Form.Item>
                </Col>
                <Col span={12}>
                  <Form.Item label={t('files.downloadLimit')}>
                    <SpeedLimitInput value={draft.downloadLimit} onChange={(downloadLimit) => setDraft({ ...draft, downloadLimit })} testId="download-limit" />
                  </Form.Item>
                </Col>
              </Row>
              <Row gutter={12}>
                <Col span={12}>
                  <Form.Item label={t('files.timeout')}>
                    <TimeoutInput value={draft.timeout} onChange={(timeout) => setDraft({ ...draft, timeout })} precision={0} testId="transfer-timeout" />
                  </Form.Item>
                </Col>
                <Col span={12}>
                  <Form.Item label={t('files.p2p')} extra={t('files.p2pHelp')} style={{ marginBottom: 0 }}>
                    <Switch checked={draft.p2p} onChange={(p2p) => setDraft({ ...draft, p2p })} data-testid="p2p" />
                  </Form.Item>
                </Col>
              </Row>
            </Form>
          </Card>
          <Space style={{ marginTop: 12 }}>{startButton()}</Space>
        </Col>
      </Row>
    </div>
  );
}

/** A speed limit in MB/s; cleared, it is unlimited (null). */
function SpeedLimitInput({ value, onChange, testId }: { value: number | null; onChange: (mbps: number | null) => void; testId: string }) {
  const t = useT();
  return (
    <InputNumber
      min={1}
      max={100000}
      precision={0}
      style={{ width: '100%' }}
      value={value}
      onChange={(v) => onChange(typeof v === 'number' ? v : null)}
      suffix={t('files.mbps')}
      data-testid={testId}
    />
  );
}

function SourceCard({
  index,
  source,
  onChange,
  onRemove,
}: {
  index: number;
  source: FormSource;
  onChange: (patch: Partial<FormSource>) => void;
  onRemove: () => void;
}) {
  const t = useT();
  const kind = source.kind === 'server' ? t('files.kindServer') : source.kind === 'upload' ? t('files.kindUpload') : t('files.kindInline');
  return (
    <Card
      size="small"
      type="inner"
      style={{ marginBottom: 12 }}
      data-testid="file-source"
      data-kind={source.kind}
      title={
        <Space>
          <Tag>{index + 1}</Tag>
          <span>{kind}</span>
        </Space>
      }
      extra={
        <Button size="small" type="text" danger icon={<DeleteOutlined />} onClick={onRemove} aria-label={t('files.remove')} data-testid="remove-source" />
      }
    >
      {source.kind === 'server' && (
        <Row gutter={12}>
          <Col xs={24} md={12}>
            <TargetPicker title={t('files.sourceHosts')} value={source.picker} onChange={(picker) => onChange({ picker })} knownHosts={source.known} />
          </Col>
          <Col xs={24} md={12}>
            <Form layout="vertical">
              <Form.Item label={t('files.paths')} extra={t('files.pathsHelp')}>
                <Input.TextArea
                  autoSize={{ minRows: 3, maxRows: 10 }}
                  value={source.paths}
                  onChange={(e) => onChange({ paths: e.target.value })}
                  placeholder={'/data/release/app.tar.gz\n/etc/app/\n/var/log/app/*.log'}
                  className="mono"
                  data-testid="source-paths"
                />
              </Form.Item>
              <Form.Item label={t('files.sourceAccount')} style={{ marginBottom: 0 }}>
                <Input value={source.account} onChange={(e) => onChange({ account: e.target.value })} placeholder={t('files.accountPlaceholder')} data-testid="source-account" />
              </Form.Item>
            </Form>
          </Col>
        </Row>
      )}
      {source.kind === 'upload' && (
        <div data-testid="upload-source" data-done={source.uploadId ? 'true' : 'false'}>
          <Space>
            <CloudUploadOutlined />
            <span className="mono">{source.name}</span>
            <Typography.Text type="secondary">{fmtBytes(source.size)}</Typography.Text>
            {source.uploadId && <Tag color="success">{t('files.uploaded')}</Tag>}
          </Space>
          <Progress
            percent={source.size ? Math.floor((source.sent / source.size) * 100) : source.uploadId ? 100 : 0}
            status={source.error ? 'exception' : source.uploadId ? 'success' : 'active'}
            data-testid="upload-progress"
          />
          {source.error && <Typography.Text type="danger">{source.error}</Typography.Text>}
        </div>
      )}
      {source.kind === 'inline' && (
        <Form layout="vertical">
          <Form.Item label={t('files.inlineName')}>
            <Input value={source.name} onChange={(e) => onChange({ name: e.target.value })} placeholder="app.conf" className="mono" data-testid="inline-name" />
          </Form.Item>
          <Form.Item label={t('files.inlineContent')} style={{ marginBottom: 0 }}>
            <Input.TextArea
              autoSize={{ minRows: 4, maxRows: 16 }}
              value={source.content}
              onChange={(e) => onChange({ content: e.target.value })}
              className="mono"
              data-testid="inline-content"
            />
          </Form.Item>
        </Form>
      )}
    </Card>
  );
}
