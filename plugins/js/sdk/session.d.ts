export class SessionError extends Error {
  kind: 'no-session' | 'invalid-key' | 'too-large' | 'unavailable';
  value: number | string | undefined;
}
export function get(key: string): Uint8Array | null;
export function getText(key: string): string | null;
export function getJson<T = unknown>(key: string): T | null;
export function set(key: string, value: string | Uint8Array): void;
export function setJson(key: string, value: unknown): void;
export function remove(key: string): boolean;
export function clear(): void;
/** The token forms carry as the hidden field `csrf`. */
export function csrfToken(): string;
