// The console shell: antd theme and locale, the sign-in gate, the side menu and the routes.

import {
  ClusterOutlined,
  CodeOutlined,
  DashboardOutlined,
  DesktopOutlined,
  FolderOpenOutlined,
  HistoryOutlined,
  KeyOutlined,
  AuditOutlined,
  LockOutlined,
  LogoutOutlined,
  SafetyOutlined,
  TeamOutlined,
  UserOutlined,
} from '@ant-design/icons';
import { App as AntApp, Button, ConfigProvider, Dropdown, Layout, Menu, Result, Segmented, Space, Spin, Typography } from 'antd';
import enUS from 'antd/locale/en_US';
import zhCN from 'antd/locale/zh_CN';
import dayjs from 'dayjs';
import 'dayjs/locale/zh-cn';
import { lazy, Suspense, useEffect, useState, type ReactNode } from 'react';
import { Link, Navigate, Route, Routes, useLocation, useNavigate } from 'react-router';
import { api } from './api/client';
import { allows, mayAdminister, useSession } from './auth';
import { useReportError } from './components/common';
import { useI18n } from './i18n';
import type { Lang } from './i18n/dict';
import { Groups } from './pages/Groups';
import { History } from './pages/History';
import { HostDetail } from './pages/HostDetail';
import { Hosts } from './pages/Hosts';
import { JobPage } from './pages/JobDetail';
import { Login } from './pages/Login';
import { ChangePassword } from './pages/Account';
import { Audit } from './pages/Audit';
import { Overview } from './pages/Overview';
import { Scopes } from './pages/Scopes';
import { Users } from './pages/Users';
import { Tokens } from './pages/Tokens';

// The script page carries the code editor; load it only when needed.
const Execute = lazy(() => import('./pages/Execute').then((m) => ({ default: m.Execute })));
// So does the file page with its uploader.
const Files = lazy(() => import('./pages/Files').then((m) => ({ default: m.Files })));

export function Root() {
  const { lang } = useI18n();
  useEffect(() => {
    dayjs.locale(lang === 'zh' ? 'zh-cn' : 'en');
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  }, [lang]);
  return (
    <ConfigProvider locale={lang === 'zh' ? zhCN : enUS} theme={{ token: { borderRadius: 6 } }}>
      <AntApp>
        <Gate />
      </AntApp>
    </ConfigProvider>
  );
}

function Gate() {
  const { me, checking } = useSession();
  const location = useLocation();
  if (checking) return <Spin style={{ display: 'block', marginTop: 120 }} />;
  if (!me) {
    if (location.pathname !== '/login') {
      const next = location.pathname + location.search;
      return <Navigate to={`/login${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`} replace />;
    }
    return <Login />;
  }
  if (location.pathname === '/login') {
    const next = new URLSearchParams(location.search).get('next');
    return <Navigate to={next && next.startsWith('/') ? next : '/'} replace />;
  }
  return <Shell />;
}

export function LangSwitch() {
  const { lang, setLang } = useI18n();
  return (
    <Segmented
      data-testid="lang-switch"
      size="small"
      value={lang}
      onChange={(v) => setLang(v as Lang)}
      options={[
        { label: 'EN', value: 'en' },
        { label: '中文', value: 'zh' },
      ]}
    />
  );
}

function Shell() {
  const { t } = useI18n();
  const { me, name, signOut } = useSession();
  const { message, modal } = AntApp.useApp();
  const report = useReportError();
  const navigate = useNavigate();
  const [changingPassword, setChangingPassword] = useState(false);
  const location = useLocation();
  const section = '/' + (location.pathname.split('/')[1] ?? '');
  const canExecute = allows(me, 'execute');
  const admin = mayAdminister(me);
  const items = [
    { key: '/', icon: <DashboardOutlined />, label: <Link to="/">{t('nav.overview')}</Link> },
    { key: '/hosts', icon: <DesktopOutlined />, label: <Link to="/hosts">{t('nav.hosts')}</Link> },
    { key: '/groups', icon: <ClusterOutlined />, label: <Link to="/groups">{t('nav.groups')}</Link> },
    ...(canExecute
      ? [
          { key: '/execute', icon: <CodeOutlined />, label: <Link to="/execute">{t('nav.execute')}</Link> },
          { key: '/files', icon: <FolderOpenOutlined />, label: <Link to="/files">{t('nav.files')}</Link> },
        ]
      : []),
    { key: '/jobs', icon: <HistoryOutlined />, label: <Link to="/jobs">{t('nav.history')}</Link> },
    { key: '/tokens', icon: <KeyOutlined />, label: <Link to="/tokens">{t('nav.tokens')}</Link> },
    ...(admin
      ? [
          { key: '/users', icon: <TeamOutlined />, label: <Link to="/users">{t('nav.users')}</Link> },
          { key: '/scopes', icon: <SafetyOutlined />, label: <Link to="/scopes">{t('nav.scopes')}</Link> },
          { key: '/audit', icon: <AuditOutlined />, label: <Link to="/audit">{t('nav.audit')}</Link> },
        ]
      : []),
  ];
  const signOutEverywhere = () =>
    modal.confirm({
      title: t('account.signOutEverywhereConfirm'),
      content: t('account.signOutEverywhereBody'),
      onOk: async () => {
        if (!me) return;
        try {
          await api.revokeSessions(me.user_id);
          message.success(t('account.signedOutEverywhere'));
        } catch (e) {
          report(e, t('account.signOutEverywhere'));
        }
        await signOut();
      },
    });
  const userMenu = {
    items: [
      { key: 'tokens', icon: <KeyOutlined />, label: t('account.myTokens'), onClick: () => navigate('/tokens') },
      ...(me?.via === 'session'
        ? [{ key: 'password', icon: <LockOutlined />, label: t('account.changePassword'), onClick: () => setChangingPassword(true) }]
        : []),
      { key: 'everywhere', icon: <LogoutOutlined />, label: t('account.signOutEverywhere'), onClick: signOutEverywhere },
    ],
  };
  return (
    <Layout style={{ minHeight: '100vh' }}>
      {/* Collapsed below 1200 px, so tables keep their columns at 1024 px. */}
      <Layout.Sider breakpoint="xl" collapsedWidth={56} theme="dark" width={200}>
        <div className="brand">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          <span>Shoal</span>
        </div>
        <Menu theme="dark" mode="inline" selectedKeys={[section]} items={items} />
      </Layout.Sider>
      <Layout>
        <Layout.Header className="topbar">
          <Typography.Text type="secondary">{t('app.tagline')}</Typography.Text>
          <Space size="middle">
            <LangSwitch />
            <Dropdown menu={userMenu} trigger={['click']}>
              <Button type="text" size="small" data-testid="user-menu">
                <Space size={4}>
                  <UserOutlined />
                  <span data-testid="user-name">{name}</span>
                </Space>
              </Button>
            </Dropdown>
            <Button icon={<LogoutOutlined />} size="small" onClick={() => void signOut()} data-testid="sign-out">
              {t('auth.signOut')}
            </Button>
          </Space>
        </Layout.Header>
        <Layout.Content className="content">
          <Suspense fallback={<Spin />}>
            <Routes>
              <Route path="/" element={<Overview />} />
              <Route path="/hosts" element={<Hosts />} />
              <Route path="/hosts/:id" element={<HostDetail />} />
              <Route path="/groups" element={<Groups />} />
              <Route path="/execute" element={<Allowed ok={canExecute}><Execute /></Allowed>} />
              <Route path="/files" element={<Allowed ok={canExecute}><Files /></Allowed>} />
              <Route path="/jobs" element={<History />} />
              <Route path="/jobs/:id" element={<JobPage />} />
              <Route path="/tokens" element={<Tokens />} />
              <Route path="/users" element={<Allowed ok={admin}><Users /></Allowed>} />
              <Route path="/scopes" element={<Allowed ok={admin}><Scopes /></Allowed>} />
              <Route path="/audit" element={<Allowed ok={admin}><Audit /></Allowed>} />
              <Route path="*" element={<NotFound />} />
            </Routes>
          </Suspense>
        </Layout.Content>
      </Layout>
      <ChangePassword open={changingPassword} onClose={() => setChangingPassword(false)} />
    </Layout>
  );
}

/** A page shown only to who may use it; a direct link otherwise says so. */
function Allowed({ ok, children }: { ok: boolean; children: ReactNode }) {
  const { t } = useI18n();
  if (ok) return <>{children}</>;
  return (
    <Result
      status="403"
      title={t('access.notPermitted')}
      subTitle={t('access.notPermittedBody')}
      extra={<Link to="/">{t('nav.overview')}</Link>}
      data-testid="not-permitted"
    />
  );
}

function NotFound() {
  const { t } = useI18n();
  return (
    <div style={{ padding: 48, textAlign: 'center' }}>
      <Typography.Title level={3}>{t('common.notFound')}</Typography.Title>
      <Link to="/">{t('nav.overview')}</Link>
    </div>
  );
}
