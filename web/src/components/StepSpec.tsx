// What a step ran, from the spec `GET /jobs/{id}` returns: for a script, the language, the script
// (read-only CodeMirror), parameters, account, timeout, working directory, login environment and
// the names of environment variables (never their values); for a file step, the sources, target
// directory, owner, mode, duplicate handling, speed limits and peer-to-peer; and the targets.

import { Descriptions, Spin, Tag, Typography } from 'antd';
import { lazy, Suspense, useEffect, useState } from 'react';
import { api } from '../api/client';
import type { FileSpec, ScriptSpec, Step } from '../api/types';
import { useT } from '../i18n';
import type { Key } from '../i18n/dict';
import { joinArgs } from '../util';

const ScriptEditor = lazy(() => import('./ScriptEditor'));

/** Addresses shown for the targets; the rest is counted. */
const TARGETS_SHOWN = 20;

export function isScriptSpec(spec: Step['spec']): spec is ScriptSpec {
  return typeof (spec as ScriptSpec).content === 'string';
}

export function isFileSpec(spec: Step['spec']): spec is FileSpec {
  return Array.isArray((spec as FileSpec).sources);
}

const DUPLICATE: Record<string, Key> = {
  overwrite: 'files.dupOverwrite',
  by_source_ip: 'files.dupBySourceIp',
  by_date_and_source_ip: 'files.dupByDateAndSourceIp',
};

export function StepSpec({ step }: { step: Step }) {
  const t = useT();
  const spec = step.spec;
  const dash = <Typography.Text type="secondary">—</Typography.Text>;
  const limit = (v: number | null | undefined) => (v ? `${v} ${t('files.mbps')}` : t('spec.unlimited'));
  const targets = { key: 'targets', label: t('spec.targets'), span: 'filled' as const, children: <StepTargets step={step} /> };

  if (isScriptSpec(spec)) {
    const env = spec.env_names ?? [];
    return (
      <div data-testid="step-spec" data-kind="script">
        <Descriptions
          size="small"
          bordered
          column={{ xs: 1, md: 2, xl: 3 }}
          items={[
            { key: 'lang', label: t('execute.language'), children: <span data-testid="spec-language">{spec.language}</span> },
            { key: 'timeout', label: t('execute.timeout'), children: t('spec.seconds', { n: spec.timeout_secs }) },
            { key: 'account', label: t('execute.account'), children: spec.account || t('execute.accountPlaceholder') },
            {
              key: 'params',
              label: t('execute.params'),
              children: spec.args?.length ? <code className="mono" data-testid="spec-params">{joinArgs(spec.args)}</code> : dash,
            },
            { key: 'workdir', label: t('execute.workdir'), children: spec.workdir ? <code className="mono">{spec.workdir}</code> : dash },
            { key: 'login', label: t('execute.loginEnv'), children: spec.login_env ? t('spec.yes') : t('spec.no') },
            {
              key: 'env',
              label: t('execute.env'),
              span: 'filled',
              children: env.length ? (
                <span data-testid="spec-env">
                  {env.map((k) => (
                    <Tag key={k} className="mono">
                      {k}=<span title={t('spec.hidden')}>••••••</span>
                    </Tag>
                  ))}
                </span>
              ) : (
                dash
              ),
            },
            targets,
          ]}
        />
        <Typography.Text type="secondary" style={{ display: 'block', margin: '12px 0 4px' }}>
          {t('spec.script')}
        </Typography.Text>
        <Suspense fallback={<Spin size="small" />}>
          <div data-testid="spec-script">
            <ScriptEditor language={spec.language} value={spec.content} readOnly height="auto" maxHeight="360px" />
          </div>
        </Suspense>
      </div>
    );
  }

  if (isFileSpec(spec)) {
    return (
      <div data-testid="step-spec" data-kind="file">
        <Descriptions
          size="small"
          bordered
          column={{ xs: 1, md: 2, xl: 3 }}
          items={[
            {
              key: 'sources',
              label: t('files.sources'),
              span: 'filled',
              children: (
                <div data-testid="spec-sources">
                  {spec.sources.map((s, i) => (
                    <div key={i} className="mono">
                      {s.kind === 'host' ? (
                        <>
                          <Tag>{t('spec.fromHosts', { ids: s.host_ids.map((h) => `#${h}`).join(', ') })}</Tag>
                          {s.paths.join('  ')}
                          {s.account ? <Typography.Text type="secondary"> ({s.account})</Typography.Text> : null}
                        </>
                      ) : (
                        <>
                          <Tag>{t('files.kindUpload')}</Tag>
                          {s.name}
                        </>
                      )}
                    </div>
                  ))}
                </div>
              ),
            },
            { key: 'dir', label: t('files.targetDir'), children: <code className="mono" data-testid="spec-target-dir">{spec.target_dir}</code> },
            { key: 'account', label: t('files.account'), children: spec.account || t('execute.accountPlaceholder') },
            { key: 'mode', label: t('files.mode'), children: spec.dir_mode === 'strict' ? t('files.modeStrict') : t('files.modeForce') },
            { key: 'dup', label: t('files.duplicate'), children: t(DUPLICATE[spec.duplicate ?? 'overwrite'] ?? 'files.dupOverwrite') },
            { key: 'up', label: t('files.uploadLimit'), children: limit(spec.upload_limit_mbps) },
            { key: 'down', label: t('files.downloadLimit'), children: <span data-testid="spec-download-limit">{limit(spec.download_limit_mbps)}</span> },
            { key: 'timeout', label: t('files.timeout'), children: t('spec.seconds', { n: spec.timeout_secs }) },
            { key: 'p2p', label: t('files.p2p'), children: spec.peer_to_peer === false ? t('spec.no') : t('spec.yes') },
            targets,
          ]}
        />
      </div>
    );
  }
  return null;
}

/** The step's target hosts (first attempt): a count and the first addresses. */
function StepTargets({ step }: { step: Step }) {
  const t = useT();
  const [ips, setIps] = useState<string[] | null>(null);
  useEffect(() => {
    let cancelled = false;
    api.stepHosts(step.id, { attempt: 0, length: TARGETS_SHOWN }).then(
      (r) => !cancelled && setIps(r.data.map((h) => h.ip || `#${h.host_id}`)),
      () => !cancelled && setIps([]),
    );
    return () => {
      cancelled = true;
    };
  }, [step.id]);
  return (
    <span data-testid="spec-targets">
      <Typography.Text strong>{t('job.hostsN', { n: step.host_count })}</Typography.Text>
      {ips?.map((ip) => (
        <Tag key={ip} className="mono" style={{ marginInlineStart: 6 }}>
          {ip}
        </Tag>
      ))}
      {ips && step.host_count > ips.length && <Typography.Text type="secondary">…</Typography.Text>}
    </span>
  );
}
