// The signed-in account's own settings: changing its password.

import { App as AntApp, Form, Input, Modal } from 'antd';
import { useState } from 'react';
import { api } from '../api/client';
import { useReportError } from '../components/common';
import { useT } from '../i18n';

export function ChangePassword({ open, onClose }: { open: boolean; onClose: () => void }) {
  const t = useT();
  const report = useReportError();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<{ current: string; next: string; again: string }>();
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    const v = await form.validateFields();
    setBusy(true);
    try {
      await api.changePassword(v.current, v.next);
      message.success(t('account.passwordChanged'));
      form.resetFields();
      onClose();
    } catch (e) {
      report(e, t('account.passwordFailed'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open={open}
      title={t('account.changePassword')}
      onCancel={onClose}
      onOk={() => void submit().catch(() => {})}
      okText={t('common.save')}
      cancelText={t('common.cancel')}
      okButtonProps={{ loading: busy, 'data-testid': 'password-ok' }}
      destroyOnHidden
    >
      <Form form={form} layout="vertical" requiredMark={false}>
        <Form.Item name="current" label={t('account.currentPassword')} rules={[{ required: true, message: t('auth.passwordRequired') }]}>
          <Input.Password autoComplete="current-password" />
        </Form.Item>
        <Form.Item
          name="next"
          label={t('account.newPassword')}
          extra={t('account.passwordRule')}
          rules={[{ required: true, min: 10, message: t('account.passwordRule') }]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item
          name="again"
          label={t('account.repeatPassword')}
          dependencies={['next']}
          rules={[
            { required: true, message: t('account.passwordMismatch') },
            ({ getFieldValue }) => ({
              validator: (_, v) => (v === getFieldValue('next') ? Promise.resolve() : Promise.reject(new Error(t('account.passwordMismatch')))),
            }),
          ]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
      </Form>
    </Modal>
  );
}
