// guildhall:platform/authz: needs `[capabilities] authz = true`.
import * as authz from 'guildhall:platform/authz@0.1.0';

/** Whether the caller may do `action` on `object` under the tenant's policy. */
export function allowed(action, object) {
  return authz.allowed(action, object);
}
