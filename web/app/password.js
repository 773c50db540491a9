// The password card.

import { $ } from './dom.js';
import { forgetDevice } from './storage.js';
import { authed, session } from './api.js';
import { fieldError, onSubmit, toast } from './forms.js';
import { refreshAll } from '../app.js';

onSubmit(
  $('form-password'),
  async () => {
    if ($('password-new').value !== $('password-confirm').value) {
      fieldError($('password-confirm'), "The passwords don't match.");
      $('password-confirm').focus();
      return;
    }
    await authed('POST', '/v1/auth/password', {
      currentPassword: $('password-current').value,
      newPassword: $('password-new').value,
    });
    if (session.user) forgetDevice(session.user.id);
    $('form-password').reset();
    toast('Password changed. Your other sessions were signed out.');
    await refreshAll();
  },
  { invalid_credentials: ['currentPassword', 'The current password is not correct.'] },
);
