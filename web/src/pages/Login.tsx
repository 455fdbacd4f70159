// Sign-in with a user name and password, and single sign-on when the server has it configured.

import { LockOutlined, LoginOutlined, UserOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Divider, Form, Input, Space, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { api } from '../api/client';
import type { AuthConfig } from '../api/types';
import { LangSwitch } from '../App';
import { useSession } from '../auth';
import { errorDetail, errorTitle, isErrorCode } from '../components/common';
import { useT } from '../i18n';

export function Login() {
  const t = useT();
  const { signIn, expired } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [config, setConfig] = useState<AuthConfig | null>(null);
  // The server sends a failed single sign-on back here with the reason.
  const [ssoError] = useState(() => new URLSearchParams(window.location.search).get('sso_error'));

  useEffect(() => {
    api.authConfig().then(setConfig, () => setConfig(null));
  }, []);

  const onFinish = async ({ name, password }: { name: string; password: string }) => {
    setBusy(true);
    setError(null);
    try {
      await signIn(name.trim(), password);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  // A wrong name or password is a 401 on the sign-in itself: say so plainly.
  const title = isErrorCode(error, 'UNAUTHENTICATED') ? t('auth.wrongPassword') : errorTitle(t, error);

  return (
    <div className="login-wrap">
      <Card style={{ width: 420 }}>
        <Space orientation="vertical" style={{ width: '100%' }} size="middle">
          <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center' }}>
            <Space>
              <img src="/favicon.svg" alt="" width={28} height={28} />
              <Typography.Title level={3} style={{ margin: 0 }}>
                Shoal
              </Typography.Title>
            </Space>
            <LangSwitch />
          </div>
          <Typography.Text type="secondary">{t('auth.intro')}</Typography.Text>
          {expired && !error && <Alert type="warning" showIcon title={t('auth.expired')} />}
          {ssoError && !error && (
            <Alert type="error" showIcon data-testid="sso-error" title={t('auth.ssoFailed')} description={ssoError} />
          )}
          {error !== null && (
            <Alert
              type="error"
              showIcon
              className="shoal-error"
              data-testid="sign-in-error"
              title={title}
              description={isErrorCode(error, 'UNAUTHENTICATED') ? undefined : errorDetail(error)}
            />
          )}
          <Form layout="vertical" onFinish={onFinish} requiredMark={false}>
            <Form.Item
              name="name"
              label={t('auth.name')}
              rules={[{ required: true, whitespace: true, message: t('auth.nameRequired') }]}
            >
              <Input prefix={<UserOutlined />} autoComplete="username" autoFocus data-testid="name-input" />
            </Form.Item>
            <Form.Item name="password" label={t('auth.password')} rules={[{ required: true, message: t('auth.passwordRequired') }]}>
              <Input.Password prefix={<LockOutlined />} autoComplete="current-password" data-testid="password-input" />
            </Form.Item>
            <Button type="primary" htmlType="submit" block loading={busy} data-testid="sign-in">
              {t('auth.signIn')}
            </Button>
          </Form>
          {config?.sso && (
            <>
              <Divider plain>{t('auth.or')}</Divider>
              <Button block icon={<LoginOutlined />} href={config.sso.start_url} data-testid="sign-in-sso">
                {t('auth.signInWith', { label: config.sso.label })}
              </Button>
            </>
          )}
        </Space>
      </Card>
    </div>
  );
}
