// Overview: host status counts, running jobs, recent failures, and the success rate of the last
// 24 hours. Refreshes every 10 seconds. Only totals and short lists travel (length=1..5).

import { Card, Col, List, Progress, Row, Statistic, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Link } from 'react-router';
import { api } from '../api/client';
import type { HostSummary, Job, Paged } from '../api/types';
import { ErrorAlert, RunStatusTag } from '../components/common';
import { useT } from '../i18n';
import { RUN_TERMINAL } from '../status';
import { fmtTime } from '../util';

interface Data {
  hosts: HostSummary;
  running: Paged<Job>;
  failures: Paged<Job>;
  finished24: number;
  success24: number;
}

const FAILED = [4, 9, 8, 11];

export function Overview() {
  const t = useT();
  const [data, setData] = useState<Data | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      const from = Date.now() - 24 * 3600 * 1000;
      const [hosts, running, failures, finished, success] = await Promise.all([
        api.hostSummary(),
        api.jobs({ status: '1,2,10', length: 5 }),
        api.jobs({ status: FAILED.join(','), length: 5 }),
        api.jobs({ from, status: RUN_TERMINAL.join(','), length: 1 }),
        api.jobs({ from, status: '3', length: 1 }),
      ]);
      setData({ hosts, running, failures, finished24: finished.total, success24: success.total });
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, []);

  useEffect(() => {
    void load();
    const id = setInterval(() => void load(), 10_000);
    return () => clearInterval(id);
  }, [load]);

  const rate = data && data.finished24 > 0 ? Math.round((data.success24 / data.finished24) * 1000) / 10 : null;

  return (
    <div>
      <div className="page-title">
        <Typography.Title level={3}>{t('overview.title')}</Typography.Title>
      </div>
      {error !== null && <ErrorAlert error={error} onRetry={() => void load()} />}
      <Row gutter={[16, 16]}>
        <Col xs={12} md={6}>
          <Card className="stat-card" loading={!data && !error}>
            <Link to="/hosts?status=online">
              <Statistic title={t('overview.online')} value={data?.hosts.online ?? 0} styles={{ content: { color: '#389e0d' } }} data-testid="stat-online" />
            </Link>
          </Card>
        </Col>
        <Col xs={12} md={6}>
          <Card className="stat-card" loading={!data && !error}>
            <Link to="/hosts?status=offline">
              <Statistic title={t('overview.offline')} value={data?.hosts.offline ?? 0} styles={{ content: { color: '#8c8c8c' } }} />
            </Link>
          </Card>
        </Col>
        <Col xs={12} md={6}>
          <Card className="stat-card" loading={!data && !error}>
            <Link to="/hosts?status=abnormal">
              <Statistic title={t('overview.abnormal')} value={data?.hosts.abnormal ?? 0} styles={{ content: { color: '#cf1322' } }} />
            </Link>
          </Card>
        </Col>
        <Col xs={12} md={6}>
          <Card className="stat-card" loading={!data && !error}>
            <Statistic title={t('overview.totalHosts')} value={data?.hosts.total ?? 0} />
          </Card>
        </Col>
        <Col xs={24} md={8}>
          <Card title={t('overview.successRate')} loading={!data && !error} style={{ height: '100%' }}>
            <div style={{ display: 'flex', alignItems: 'center', gap: 24 }}>
              <Progress type="circle" percent={rate ?? 0} format={() => (rate === null ? '—' : `${rate}%`)} size={110} />
              <div>
                <Typography.Paragraph style={{ margin: 0 }}>
                  {t('overview.successOf', { ok: data?.success24 ?? 0, total: data?.finished24 ?? 0 })}
                </Typography.Paragraph>
                <Typography.Text type="secondary">{t('overview.last24h')}</Typography.Text>
              </div>
            </div>
          </Card>
        </Col>
        <Col xs={24} md={8}>
          <Card
            title={`${t('overview.running')} (${data?.running.total ?? 0})`}
            extra={<Link to="/jobs?status=1,2,10">{t('common.all')}</Link>}
            loading={!data && !error}
            style={{ height: '100%' }}
          >
            <JobList jobs={data?.running.data ?? []} empty={t('overview.noRunning')} />
          </Card>
        </Col>
        <Col xs={24} md={8}>
          <Card
            title={t('overview.failures')}
            extra={<Link to={`/jobs?status=${FAILED.join(',')}`}>{t('common.all')}</Link>}
            loading={!data && !error}
            style={{ height: '100%' }}
          >
            <JobList jobs={data?.failures.data ?? []} empty={t('overview.noFailures')} />
          </Card>
        </Col>
      </Row>
    </div>
  );
}

function JobList({ jobs, empty }: { jobs: Job[]; empty: string }) {
  return (
    <List
      size="small"
      dataSource={jobs}
      locale={{ emptyText: empty }}
      renderItem={(j) => (
        <List.Item extra={<RunStatusTag status={j.status} />}>
          <List.Item.Meta
            title={<Link to={`/jobs/${j.id}`}>{j.name}</Link>}
            description={`${fmtTime(j.created_at)} · ${j.operator}`}
          />
        </List.Item>
      )}
    />
  );
}
