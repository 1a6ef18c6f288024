/** Now as RFC 3339 UTC, e.g. `2025-01-31T09:30:00Z`. */
export function nowRfc3339(): string;
