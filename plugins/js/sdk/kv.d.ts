export type KvErrorKind = 'invalid-key' | 'value-too-large' | 'quota-exceeded' | 'not-a-number' | 'unavailable';
export class KvError extends Error {
  kind: KvErrorKind;
  value: number | string | undefined;
  toResponse(): Response;
}
export interface Page { keys: string[]; next: string | null; }
export type Value = string | Uint8Array;

export function get(key: string): Uint8Array | null;
export function getText(key: string): string | null;
export function getJson<T = unknown>(key: string): T | null;
export function set(key: string, value: Value): void;
export function setJson(key: string, value: unknown): void;
declare function del(key: string): boolean;
export { del as delete, del as remove };
export function listKeys(prefix: string, cursor?: string | null, limit?: number): Page;
export function listAllKeys(prefix: string, pageSize?: number): string[];
export function increment(key: string, delta?: number | bigint): number;
export function compareAndSwap(key: string, old: Value | null, value: Value): boolean;
export function compareAndSwapJson(key: string, old: unknown, value: unknown): boolean;
export function setIfAbsent(key: string, value: Value): boolean;
export function setJsonIfAbsent(key: string, value: unknown): boolean;

/** The same operations under a key prefix. */
export class ScopedKv {
  constructor(prefix: string);
  readonly prefix: string;
  key(k: string): string;
  get(key: string): Uint8Array | null;
  getText(key: string): string | null;
  getJson<T = unknown>(key: string): T | null;
  set(key: string, value: Value): void;
  setJson(key: string, value: unknown): void;
  delete(key: string): boolean;
  listKeys(prefix?: string, cursor?: string | null, limit?: number): Page;
  listAllKeys(prefix?: string, pageSize?: number): string[];
  increment(key: string, delta?: number | bigint): number;
  compareAndSwap(key: string, old: Value | null, value: Value): boolean;
  compareAndSwapJson(key: string, old: unknown, value: unknown): boolean;
  setIfAbsent(key: string, value: Value): boolean;
  setJsonIfAbsent(key: string, value: unknown): boolean;
}
/** Keys under `council/{council}/`; pass `context.council()`. */
export function councilKv(council: string): ScopedKv;
