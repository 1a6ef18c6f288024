// Time from the WASI wall clock (no capability needed).

/** Now as RFC 3339 UTC with seconds, e.g. `2025-01-31T09:30:00Z`. */
export function nowRfc3339() {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
