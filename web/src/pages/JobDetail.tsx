// Execution detail: job and step status with a live elapsed time, host counts per status, result
// groups with their hosts, per-host logs, terminate / retry failed / retry all (each confirmed),
// and a switch between attempts. Live through the job's Server-Sent Events. A file step also shows
// its per-file transfer rows (progress, speed, status, error) first. A tab shows what ran (script
// and settings, or sources and settings; never environment values); "run again" opens the
// script or file page prefilled from the job.

import { RedoOutlined, ReloadOutlined, StopOutlined, SyncOutlined } from '@ant-design/icons';
import { App as AntApp, Button, Card, Descriptions, Progress, Select, Space, Switch, Tabs, Tag, Tooltip, Typography } from 'antd';
import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { api } from '../api/client';
import type { JobDetail, JobEvent, ResultGroup, StatusCount, Step, TaskRow } from '../api/types';
import { Elapsed, ErrorAlert, RunStatusTag, taskStatusText, Needs, useReportError } from '../components/common';
import { LogDrawer, type LogTarget } from '../components/LogDrawer';
import { FileTable } from '../components/FileTable';
import { AllHosts, ResultGroups } from '../components/ResultGroups';
import { StepSpec } from '../components/StepSpec';
import { useJobEvents } from '../components/useJobEvents';
import { useT } from '../i18n';
import { runTerminal, TASK_STATUS, taskSuccess, taskTerminal } from '../status';
import { fmtTime } from '../util';
import { runAgainPath } from './History';

interface LiveStep {
  status: number;
  attempt: number;
  counts: StatusCount[];
}

export function JobPage() {
  const t = useT();
  const id = Number(useParams().id);
  const navigate = useNavigate();
  const report = useReportError();
  const { modal, message } = AntApp.useApp();
  const [detail, setDetail] = useState<JobDetail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [jobStatus, setJobStatus] = useState<number | null>(null);
  const [live, setLive] = useState<Record<number, LiveStep>>({});
  const [version, setVersion] = useState(0);
  const [wakeStream, setWakeStream] = useState(0);

  const load = useCallback(async () => {
    try {
      const d = await api.job(id);
      setDetail(d);
      setJobStatus(d.job.status);
      setLive((prev) => {
        const next = { ...prev };
        for (const s of d.steps) {
          const p = prev[s.step.id];
          if (!p || p.attempt <= s.step.attempt) next[s.step.id] = { status: s.step.status, attempt: s.step.attempt, counts: s.counts };
        }
        return next;
      });
      setError(null);
      setVersion((v) => v + 1);
    } catch (e) {
      setError(e);
    }
  }, [id]);

  useEffect(() => {
    setDetail(null);
    setLive({});
    void load();
  }, [load]);

  // Step events can come many times a second: refresh lists at most every 700 ms.
  const bumpTimer = useRef<number | undefined>(undefined);
  const lastBump = useRef(0);
  const bump = useCallback(() => {
    if (bumpTimer.current !== undefined) return;
    const wait = Math.max(0, 700 - (Date.now() - lastBump.current));
    bumpTimer.current = window.setTimeout(() => {
      bumpTimer.current = undefined;
      lastBump.current = Date.now();
      setVersion((v) => v + 1);
    }, wait);
  }, []);
  useEffect(() => () => window.clearTimeout(bumpTimer.current), []);

  const finished = jobStatus !== null && runTerminal(jobStatus);
  const streamState = useJobEvents(id, {
    enabled: detail !== null && (!finished || wakeStream > 0),
    onEvent: (e: JobEvent | { event: 'resync' }) => {
      if (e.event === 'resync') {
        void load();
      } else if (e.event === 'job') {
        setJobStatus(e.status);
        if (runTerminal(e.status)) void load();
      } else if (e.event === 'step') {
        setLive((prev) => {
          const p = prev[e.step_id];
          if (p && p.attempt > e.attempt) return prev;
          if (p && p.attempt < e.attempt) void load();
          return { ...prev, [e.step_id]: { status: e.status, attempt: e.attempt, counts: e.counts } };
        });
        bump();
      }
    },
  });

  // After a retry the job runs again: keep the stream open for a while even if the detail
  // still says finished.
  useEffect(() => {
    if (wakeStream === 0) return;
    const timer = setTimeout(() => setWakeStream(0), 15000);
    return () => clearTimeout(timer);
  }, [wakeStream]);

  if (error !== null && !detail) return <ErrorAlert error={error} onRetry={() => void load()} />;
  if (!detail) return <Card loading />;

  const job = detail.job;
  const status = jobStatus ?? job.status;

  const terminate = () =>
    modal.confirm({
      title: t('job.terminateConfirm'),
      content: t('job.terminateBody'),
      okText: t('job.terminate'),
      okButtonProps: { danger: true, 'data-testid': 'confirm-ok' },
      cancelText: t('common.cancel'),
      onOk: async () => {
        try {
          await api.terminate(job.id);
          message.success(t('job.terminateSent'));
          setWakeStream(Date.now());
          void load();
        } catch (e) {
          report(e, t('job.terminateFailed'));
        }
      },
    });

  return (
    <div>
      <div className="page-title">
        <Space wrap>
          <Typography.Title level={3} data-testid="job-name">
            {job.name}
          </Typography.Title>
          <span data-testid="job-status">
            <RunStatusTag status={status} />
          </span>
          {!finished && (
            <Tag icon={<SyncOutlined spin={streamState === 'live'} />} color={streamState === 'live' ? 'processing' : 'warning'} data-testid="live-state">
              {streamState === 'live' ? t('job.live') : t('job.reconnecting')}
            </Tag>
          )}
        </Space>
        <Space wrap>
          {!finished && (
            <Needs perm="operate" scope={job.scope_id}>
              <Button danger icon={<StopOutlined />} onClick={terminate} data-testid="terminate">
                {t('job.terminate')}
              </Button>
            </Needs>
          )}
          <Needs perm="execute" scope={job.scope_id}>
            <Button icon={<RedoOutlined />} onClick={() => navigate(runAgainPath(job))} data-testid="run-again">
              {t('history.runAgain')}
            </Button>
          </Needs>
          <Button icon={<ReloadOutlined />} onClick={() => void load()}>
            {t('common.refresh')}
          </Button>
        </Space>
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Card size="small" style={{ marginBottom: 16 }}>
        <Descriptions
          size="small"
          column={{ xs: 1, md: 3, xl: 6 }}
          items={[
            { key: 'id', label: t('job.id'), children: job.id },
            { key: 'op', label: t('history.operator'), children: job.operator },
            { key: 'mode', label: t('history.launchMode'), children: t(`launch.${job.launch_mode}` as 'launch.web') },
            { key: 'created', label: t('history.created'), children: fmtTime(job.created_at) },
            { key: 'started', label: t('job.started'), children: fmtTime(job.started_at) },
            { key: 'elapsed', label: t('job.elapsed'), children: <Elapsed start={job.started_at ?? job.created_at} end={finished ? job.ended_at ?? Date.now() : null} /> },
          ]}
        />
      </Card>
      {detail.steps.map(({ step }) => (
        <StepPanel
          key={step.id}
          jobId={job.id}
          step={step}
          live={live[step.id]}
          version={version}
          jobFinished={finished}
          onChanged={() => {
            setWakeStream(Date.now());
            void load();
          }}
        />
      ))}
    </div>
  );
}

function StepPanel({
  jobId,
  step,
  live,
  version,
  jobFinished,
  onChanged,
}: {
  jobId: number;
  step: Step;
  live: LiveStep | undefined;
  version: number;
  jobFinished: boolean;
  onChanged: () => void;
}) {
  const t = useT();
  const report = useReportError();
  const { modal, message } = AntApp.useApp();
  const latest = Math.max(step.attempt, live?.attempt ?? 0);
  const [picked, setPicked] = useState<number | null>(null);
  const attempt = picked ?? latest;
  const isLatest = attempt === latest;
  const status = live?.status ?? step.status;
  const [groups, setGroups] = useState<ResultGroup[] | null>(null);
  const [groupsError, setGroupsError] = useState<unknown>(null);
  const [log, setLog] = useState<LogTarget | null>(null);
  // Groups are by status, exit code and tag; this also splits them by identical output.
  const [byOutput, setByOutput] = useState(false);
  const by = byOutput ? 'output' : 'status';

  useEffect(() => {
    let cancelled = false;
    api.stepGroups(step.id, attempt, by).then(
      (r) => {
        if (cancelled) return;
        setGroups(r.groups);
        setGroupsError(null);
      },
      (e) => !cancelled && setGroupsError(e),
    );
    return () => {
      cancelled = true;
    };
  }, [step.id, attempt, version, by]);

  // Counts: live for the latest attempt; from the groups for older ones.
  let counts: StatusCount[];
  if (isLatest && live) counts = live.counts;
  else {
    const m = new Map<StatusCount['status'], number>();
    for (const g of groups ?? []) m.set(g.status, (m.get(g.status) ?? 0) + g.host_count);
    counts = [...m].map(([s, count]) => ({ status: s, count }));
  }
  const total = counts.reduce((n, c) => n + c.count, 0);
  const done = counts.filter((c) => taskTerminal(c.status)).reduce((n, c) => n + c.count, 0);
  const ok = counts.filter((c) => taskSuccess(c.status)).reduce((n, c) => n + c.count, 0);
  const failed = done - ok;
  const stepDone = runTerminal(status);

  const retry = (mode: 'failed' | 'all') =>
    modal.confirm({
      title: mode === 'failed' ? t('job.retryFailedConfirm', { n: failed }) : t('job.retryAllConfirm', { n: total }),
      content: t('job.retryBody'),
      okText: mode === 'failed' ? t('job.retryFailed') : t('job.retryAll'),
      okButtonProps: { 'data-testid': 'confirm-ok' },
      cancelText: t('common.cancel'),
      onOk: async () => {
        try {
          const r = await api.retry(step.id, mode);
          message.success(t('job.retryStarted', { n: r.rerun_count, attempt: r.attempt + 1 }));
          setPicked(null);
          onChanged();
        } catch (e) {
          report(e, t('job.retryFailedMsg'));
        }
      },
    });

  const openLog = (row: TaskRow) => setLog({ jobId, stepId: step.id, attempt, row, current: isLatest && !jobFinished });

  return (
    <Card
      style={{ marginBottom: 16 }}
      data-testid="step-panel"
      title={
        <Space wrap>
          <span>{step.name || t('job.step', { n: step.ordinal + 1 })}</span>
          <span data-testid="step-status">
            <RunStatusTag status={isLatest ? status : stepStatusFromCounts(counts)} />
          </span>
          <Typography.Text type="secondary" style={{ fontWeight: 'normal' }}>
            <Elapsed start={step.started_at} end={stepDone ? step.ended_at ?? Date.now() : null} />
          </Typography.Text>
        </Space>
      }
      extra={
        <Space wrap>
          {latest > 0 && (
            <Select
              size="small"
              value={attempt}
              onChange={(v) => setPicked(v === latest ? null : v)}
              style={{ width: 170 }}
              data-testid="attempt-select"
              options={Array.from({ length: latest + 1 }, (_, i) => latest - i).map((a) => ({
                value: a,
                label: a === latest ? t('job.attemptLatest', { n: a + 1 }) : t('job.attemptN', { n: a + 1 }),
              }))}
            />
          )}
          <Needs perm="operate">
            <Button size="small" disabled={!stepDone || failed === 0} onClick={() => retry('failed')} data-testid="retry-failed">
              {t('job.retryFailed')}
            </Button>
          </Needs>
          <Needs perm="operate">
            <Button size="small" disabled={!stepDone} onClick={() => retry('all')} data-testid="retry-all">
              {t('job.retryAll')}
            </Button>
          </Needs>
        </Space>
      }
    >
      <div style={{ display: 'flex', gap: 24, alignItems: 'center', flexWrap: 'wrap', marginBottom: 12 }}>
        <Progress
          style={{ width: 280, margin: 0 }}
          percent={total ? Math.round((done / total) * 100) : 0}
          success={{ percent: total ? Math.round((ok / total) * 100) : 0 }}
          status={failed > 0 ? 'exception' : done === total && total > 0 ? 'success' : 'active'}
          format={() => `${done}/${total}`}
        />
        <Space wrap size={4} data-testid="status-counts">
          {counts
            .filter((c) => c.count > 0)
            .sort((a, b) => a.status - b.status)
            .map((c) => (
              <Tag key={c.status} color={TASK_STATUS[c.status]?.color} data-status={c.status} data-count={c.count}>
                {taskStatusText(t, c.status)}: {c.count}
              </Tag>
            ))}
        </Space>
      </div>
      {groupsError !== null && <ErrorAlert error={groupsError} />}
      <Tabs
        size="small"
        items={[
          ...(step.step_type === 'file'
            ? [
                {
                  key: 'files',
                  label: t('files.tab'),
                  children: <FileTable stepId={step.id} attempt={attempt} version={version} running={isLatest && !stepDone} />,
                },
              ]
            : []),
          {
            key: 'groups',
            label: t('job.groups', { n: groups?.length ?? 0 }),
            children: (
              <>
                <Space size={6} style={{ marginBottom: 8 }}>
                  <Switch size="small" checked={byOutput} onChange={setByOutput} data-testid="group-by-output" />
                  <Tooltip title={t('job.byOutputHelp')}>
                    <span>{t('job.byOutput')}</span>
                  </Tooltip>
                </Space>
                {groups === null ? (
                  <Card loading size="small" />
                ) : (
                  <ResultGroups key={`${attempt}-${by}`} jobId={jobId} stepId={step.id} attempt={attempt} groups={groups} version={version} onOpenLog={openLog} />
                )}
              </>
            ),
          },
          {
            key: 'hosts',
            label: t('job.allHosts'),
            children: <AllHosts jobId={jobId} stepId={step.id} attempt={attempt} version={version} onOpenLog={openLog} />,
          },
          {
            key: 'spec',
            label: <span data-testid="spec-tab">{t('spec.title')}</span>,
            children: <StepSpec step={step} />,
          },
        ]}
      />
      {log && <LogDrawer key={`${log.stepId}-${log.attempt}-${log.row.host_id}`} target={log} onClose={() => setLog(null)} />}
      {!isLatest && (
        <Typography.Paragraph type="secondary" style={{ marginTop: 8 }}>
          {t('job.viewingOld', { n: attempt + 1 })} <Link to="#" onClick={(e) => { e.preventDefault(); setPicked(null); }}>{t('job.backToLatest')}</Link>
        </Typography.Paragraph>
      )}
    </Card>
  );
}

/** For an older attempt: success if every host succeeded, failed otherwise. */
function stepStatusFromCounts(counts: StatusCount[]): number {
  const total = counts.reduce((n, c) => n + c.count, 0);
  if (counts.some((c) => !taskTerminal(c.status) && c.count > 0)) return 2;
  return counts.filter((c) => taskSuccess(c.status)).reduce((n, c) => n + c.count, 0) === total ? 3 : 4;
}
