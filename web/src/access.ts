// What the signed-in account may do, from `whoami`: its permissions per scope and the platform
// admin flag. The console only hides or disables what would be refused; the server checks
// every request anyway. No runtime imports, so the unit tests load it as is.

import type { Permission, WhoAmI } from './api/types';

/**
 * Whether `me` holds `perm` in scope `scopeId`, or in any scope when it is not given (a platform
 * admin holds everything).
 */
export function allows(me: WhoAmI | null, perm: Permission, scopeId?: number): boolean {
  if (!me) return false;
  if (me.is_admin) return true;
  return me.scopes.some((s) => (scopeId === undefined || s.scope_id === scopeId) && s.permissions.includes(perm));
}

/** Whether `me` may use the admin pages: a platform admin, or who administers some scope. */
export function mayAdminister(me: WhoAmI | null): boolean {
  return allows(me, 'administer');
}
