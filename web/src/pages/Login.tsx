// Sign-in with an API token (user accounts come later).

import { KeyOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Form, Input, Space, Typography } from 'antd';
import { useState } from 'react';
import { LangSwitch } from '../App';
import { useSession } from '../auth';
import { errorDetail, errorTitle } from '../components/common';
import { useT } from '../i18n';

export function Login() {
  const t = useT();
  const { signIn, expired } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const onFinish = async ({ token }: { token: string }) => {
    setBusy(true);
    setError(null);
    try {
      await signIn(token.trim());
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

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
          {error !== null && (
            <Alert
              type="error"
              showIcon
              className="shoal-error"
              title={errorTitle(t, error)}
              description={errorDetail(error)}
            />
          )}
          <Form layout="vertical" onFinish={onFinish} requiredMark={false}>
            <Form.Item
              name="token"
              label={t('auth.token')}
              rules={[{ required: true, whitespace: true, message: t('auth.tokenRequired') }]}
              extra={t('auth.tokenHelp')}
            >
              <Input.Password prefix={<KeyOutlined />} placeholder="shoal_…" autoFocus data-testid="token-input" />
            </Form.Item>
            <Button type="primary" htmlType="submit" block loading={busy} data-testid="sign-in">
              {t('auth.signIn')}
            </Button>
          </Form>
        </Space>
      </Card>
    </div>
  );
}
