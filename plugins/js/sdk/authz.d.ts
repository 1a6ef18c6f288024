/** Whether the caller may do `action` on `object` under the tenant's policy. */
export function allowed(action: string, object: string): boolean;
