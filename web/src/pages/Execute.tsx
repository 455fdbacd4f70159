// Quick script execution: targets with a live count, a highlighted script editor, language,
// params, timeout, account and task name. Also prefilled by "run again" (`?from=JOB`), by a
// host page (`?host=ID`) and by a group (`?group=ID`).

import { PlayCircleOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Col, Collapse, Form, Input, Radio, Row, Space, Switch, Typography } from 'antd';
import { lazy, Suspense, useEffect, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { api } from '../api/client';
import type { ExecuteScriptRequest, Host, LanguageName, PreviewResponse, ScriptSpec } from '../api/types';
import { ErrorAlert } from '../components/common';
import { stepHosts, TimeoutInput, useStartJob } from '../components/jobForm';
import { EMPTY_TARGETS, TargetPicker, targetsEmpty, toTargets, type TargetState } from '../components/TargetPicker';
import { useT } from '../i18n';
import { joinArgs, parseEnv } from '../util';

const ScriptEditor = lazy(() => import('../components/ScriptEditor'));

const LANGS: { value: LanguageName; label: string }[] = [
  { value: 'shell', label: 'Shell' },
  { value: 'python', label: 'Python' },
  { value: 'perl', label: 'Perl' },
  { value: 'powershell', label: 'PowerShell' },
  { value: 'bat', label: 'Bat' },
];

const TEMPLATES: Record<LanguageName, string> = {
  shell: '#!/bin/bash\n\necho "hello from $(hostname)"\n',
  python: '#!/usr/bin/env python3\nimport socket\n\nprint("hello from", socket.gethostname())\n',
  perl: '#!/usr/bin/perl\nuse strict;\nuse warnings;\n\nprint "hello\\n";\n',
  powershell: 'Write-Output "hello from $env:COMPUTERNAME"\n',
  bat: '@echo off\necho hello from %COMPUTERNAME%\n',
};

export interface Draft {
  name: string;
  language: LanguageName;
  script: string;
  params: string;
  timeout: number;
  account: string;
  workdir: string;
  loginEnv: boolean;
  env: string;
}

const DEFAULT_DRAFT: Draft = {
  name: '',
  language: 'shell',
  script: TEMPLATES.shell,
  params: '',
  timeout: 7200,
  account: '',
  workdir: '',
  loginEnv: false,
  env: '',
};

export function Execute() {
  const t = useT();
  const [params] = useSearchParams();
  const [draft, setDraft] = useState<Draft>(DEFAULT_DRAFT);
  const [targets, setTargets] = useState<TargetState>(EMPTY_TARGETS);
  const [known, setKnown] = useState<Host[]>([]);
  const [preview, setPreview] = useState<PreviewResponse | null>(null);
  const { busy, start } = useStartJob(preview, { started: 'execute.started', failed: 'execute.failed' });
  const [prefillError, setPrefillError] = useState<unknown>(null);
  const [prefilling, setPrefilling] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  // The prefill runs when the URL changes, not when the language does.
  const tRef = useRef(t);
  tRef.current = t;
  const from = params.get('from');
  const hostParam = params.get('host');
  const groupParam = params.get('group');

  useEffect(() => {
    let cancelled = false;
    async function prefill() {
      setPrefillError(null);
      try {
        if (from) {
          setPrefilling(true);
          const detail = await api.job(Number(from));
          const step = detail.steps[0]?.step;
          const spec = step?.spec as ScriptSpec | undefined;
          if (!step || !spec || typeof spec.content !== 'string') throw new Error(tRef.current('execute.notScript'));
          const hosts = await stepHosts(step.id);
          if (cancelled) return;
          setDraft({
            name: detail.job.name,
            language: spec.language,
            script: spec.content,
            params: joinArgs(spec.args ?? []),
            timeout: spec.timeout_secs || 7200,
            account: spec.account ?? '',
            workdir: spec.workdir ?? '',
            loginEnv: !!spec.login_env,
            // Values are never shown by the API: the names come back for the operator to fill.
            env: (spec.env_names ?? []).map((k) => `${k}=`).join('\n'),
          });
          setKnown(hosts);
          setTargets({ ...EMPTY_TARGETS, hostIds: hosts.map((h) => h.id) });
        } else if (hostParam) {
          const h = await api.host(Number(hostParam));
          if (cancelled) return;
          setKnown([h]);
          setTargets({ ...EMPTY_TARGETS, hostIds: [h.id] });
        } else if (groupParam) {
          setTargets({ ...EMPTY_TARGETS, groupIds: [Number(groupParam)] });
        }
      } catch (e) {
        if (!cancelled) setPrefillError(e);
      } finally {
        if (!cancelled) setPrefilling(false);
      }
    }
    void prefill();
    return () => {
      cancelled = true;
    };
  }, [from, hostParam, groupParam]);

  const setLanguage = (language: LanguageName) => {
    // Swap the template if the script is still an untouched template.
    const untouched = Object.values(TEMPLATES).includes(draft.script) || draft.script.trim() === '';
    setDraft({ ...draft, language, script: untouched ? TEMPLATES[language] : draft.script });
  };

  const submit = async () => {
    setProblem(null);
    if (targetsEmpty(targets)) return setProblem(t('execute.needTargets'));
    if (!draft.script.trim()) return setProblem(t('execute.needScript'));
    const env = parseEnv(draft.env);
    if (env.bad !== undefined) return setProblem(t('execute.badEnv', { line: env.bad }));
    const req: ExecuteScriptRequest = {
      language: draft.language,
      script: draft.script,
      targets: toTargets(targets),
      timeout: draft.timeout,
    };
    if (draft.name.trim()) req.name = draft.name.trim();
    if (draft.params.trim()) req.params = draft.params;
    if (draft.account.trim()) req.account = draft.account.trim();
    if (draft.workdir.trim()) req.workdir = draft.workdir.trim();
    if (draft.loginEnv) req.login_env = true;
    if (Object.keys(env.env).length) req.env = env.env;

    await start(() => api.execute(req));
  };

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('execute.title')}</Typography.Title>
        <Button type="primary" size="large" icon={<PlayCircleOutlined />} loading={busy} onClick={() => void submit()} data-testid="run">
          {t('execute.run')}
        </Button>
      </div>
      {prefillError !== null && <ErrorAlert error={prefillError} />}
      {from && !prefillError && (
        <Alert style={{ marginBottom: 12 }} type="info" showIcon title={prefilling ? t('execute.loadingFrom', { id: from }) : t('execute.from', { id: from })} />
      )}
      {problem && <Alert style={{ marginBottom: 12 }} type="error" showIcon title={problem} data-testid="execute-problem" />}
      <Row gutter={16}>
        <Col xs={24} lg={15}>
          <Card size="small" style={{ marginBottom: 16 }}>
            <Form layout="vertical">
              <Row gutter={12}>
                <Col span={12}>
                  <Form.Item label={t('execute.name')}>
                    <Input value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} placeholder={t('execute.namePlaceholder')} maxLength={512} data-testid="task-name" />
                  </Form.Item>
                </Col>
                <Col span={12}>
                  <Form.Item label={t('execute.language')}>
                    <Radio.Group
                      optionType="button"
                      value={draft.language}
                      onChange={(e) => setLanguage(e.target.value)}
                      options={LANGS}
                      data-testid="language"
                    />
                  </Form.Item>
                </Col>
              </Row>
              <Form.Item label={t('execute.script')} style={{ marginBottom: 12 }}>
                <Suspense fallback={<div style={{ height: 320 }} />}>
                  <ScriptEditor language={draft.language} value={draft.script} onChange={(script) => setDraft((d) => ({ ...d, script }))} />
                </Suspense>
              </Form.Item>
              <Row gutter={12}>
                <Col span={10}>
                  <Form.Item label={t('execute.params')} extra={t('execute.paramsHelp')}>
                    <Input value={draft.params} onChange={(e) => setDraft({ ...draft, params: e.target.value })} className="mono" data-testid="params" />
                  </Form.Item>
                </Col>
                <Col span={7}>
                  <Form.Item label={t('execute.timeout')}>
                    <TimeoutInput value={draft.timeout} onChange={(timeout) => setDraft({ ...draft, timeout })} testId="timeout" />
                  </Form.Item>
                </Col>
                <Col span={7}>
                  <Form.Item label={t('execute.account')}>
                    <Input value={draft.account} onChange={(e) => setDraft({ ...draft, account: e.target.value })} placeholder={t('execute.accountPlaceholder')} data-testid="account" />
                  </Form.Item>
                </Col>
              </Row>
              <Collapse
                size="small"
                items={[
                  {
                    key: 'adv',
                    label: t('execute.advanced'),
                    children: (
                      <>
                        <Row gutter={12}>
                          <Col span={16}>
                            <Form.Item label={t('execute.workdir')}>
                              <Input value={draft.workdir} onChange={(e) => setDraft({ ...draft, workdir: e.target.value })} className="mono" />
                            </Form.Item>
                          </Col>
                          <Col span={8}>
                            <Form.Item label={t('execute.loginEnv')}>
                              <Switch checked={draft.loginEnv} onChange={(loginEnv) => setDraft({ ...draft, loginEnv })} />
                            </Form.Item>
                          </Col>
                        </Row>
                        <Form.Item label={t('execute.env')} extra={t('execute.envHelp')} style={{ marginBottom: 0 }}>
                          <Input.TextArea autoSize={{ minRows: 2, maxRows: 8 }} value={draft.env} onChange={(e) => setDraft({ ...draft, env: e.target.value })} className="mono" />
                        </Form.Item>
                      </>
                    ),
                  },
                ]}
              />
            </Form>
          </Card>
        </Col>
        <Col xs={24} lg={9}>
          <TargetPicker value={targets} onChange={setTargets} knownHosts={known} onPreview={setPreview} />
          <Space style={{ marginTop: 12 }}>
            <Button type="primary" icon={<PlayCircleOutlined />} loading={busy} onClick={() => void submit()}>
              {t('execute.run')}
            </Button>
          </Space>
        </Col>
      </Row>
    </div>
  );
}
