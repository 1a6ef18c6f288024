// guildhall:platform/kv: needs `[capabilities] kv = true`.
import * as kv from 'guildhall:platform/kv@0.1.0';
import { HttpError, stringify } from './http.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Why a key-value operation failed. `kind` is `invalid-key`, `value-too-large`,
 * `quota-exceeded`, `not-a-number` or `unavailable`. Thrown from a handler it becomes a
 * `507` (quota) or `503`/`500` problem that does not repeat the platform's message.
 */
export class KvError extends Error {
  constructor(kind, value) {
    super(`kv ${kind}${value !== undefined ? ': ' + value : ''}`);
    this.name = 'KvError';
    this.kind = kind;
    this.value = value;
  }
  toResponse() {
    const status = this.kind === 'quota-exceeded' ? 507 : this.kind === 'unavailable' ? 503 : 500;
    console.error(`guildhall: ${this.message}`);
    return new HttpError(status, status === 507 ? 'the service has no room to store this' : status === 503 ? 'storage is unavailable; try again later' : 'the service failed to store this').toResponse();
  }
}

function call(f) {
  try {
    return f();
  } catch (e) {
    const p = e && e.payload;
    if (p && typeof p.tag === 'string') {
      if (p.tag === 'unavailable' && typeof p.val === 'string' && p.val.startsWith('not a number')) throw new KvError('not-a-number', p.val);
      throw new KvError(p.tag, typeof p.val === 'bigint' ? Number(p.val) : p.val);
    }
    throw e;
  }
}

const bytes = (v) => (typeof v === 'string' ? enc.encode(v) : v);

/** The bytes stored under `key`, or `null`. */
export function get(key) {
  const v = call(() => kv.get(key));
  return v === undefined || v === null ? null : v;
}
/** The value under `key` as UTF-8 text, or `null`. */
export function getText(key) {
  const v = get(key);
  return v === null ? null : dec.decode(v);
}
/** The value under `key` parsed as JSON, or `null`. */
export function getJson(key) {
  const v = getText(key);
  return v === null ? null : JSON.parse(v);
}
/** Stores `value` (a string or bytes) under `key`. */
export function set(key, value) {
  call(() => kv.set(key, bytes(value)));
}
/** Stores `value` as JSON under `key`. */
export function setJson(key, value) {
  set(key, stringify(value));
}
/** Removes `key`; whether it existed. */
function del(key) {
  return call(() => kv.delete(key));
}
export { del as delete, del as remove };
/** One page of keys starting with `prefix`, after `cursor`: `{keys, next}` (`next` is `null` on the last page). */
export function listKeys(prefix, cursor = null, limit = 100) {
  const page = call(() => kv.listKeys(prefix, cursor ?? undefined, limit));
  return { keys: page.keys, next: page.next ?? null };
}
/** Every key starting with `prefix`, in ascending order (pages through `listKeys`). */
export function listAllKeys(prefix, pageSize = 1000) {
  const keys = [];
  let cursor = null;
  do {
    const page = listKeys(prefix, cursor, pageSize);
    keys.push(...page.keys);
    cursor = page.next;
  } while (cursor !== null);
  return keys;
}
/** Atomically adds `delta` to the number under `key` (missing counts as 0) and returns the sum as a number. */
export function increment(key, delta = 1) {
  return Number(call(() => kv.increment(key, BigInt(delta))));
}
/** Stores `value` only if `key` holds exactly `old` (`null`: only if absent); whether it stored. */
export function compareAndSwap(key, old, value) {
  return call(() => kv.compareAndSwap(key, old === null || old === undefined ? undefined : bytes(old), bytes(value)));
}
/** `compareAndSwap` with JSON values (`old` compared as the exact stored text of `JSON.stringify(old)`). */
export function compareAndSwapJson(key, old, value) {
  return compareAndSwap(key, old === null || old === undefined ? null : stringify(old), stringify(value));
}
/** Stores `value` only if `key` is absent; whether it stored. */
export function setIfAbsent(key, value) {
  return call(() => kv.setIfAbsent(key, bytes(value)));
}
/** `setIfAbsent` with a JSON value. */
export function setJsonIfAbsent(key, value) {
  return setIfAbsent(key, stringify(value));
}

/** The same operations with every key under `prefix` (e.g. `council/tandridge/`). */
export class ScopedKv {
  constructor(prefix) { this.prefix = prefix; }
  key(k) { return this.prefix + k; }
  get(k) { return get(this.key(k)); }
  getText(k) { return getText(this.key(k)); }
  getJson(k) { return getJson(this.key(k)); }
  set(k, v) { return set(this.key(k), v); }
  setJson(k, v) { return setJson(this.key(k), v); }
  delete(k) { return del(this.key(k)); }
  /** Keys are returned without the scope's prefix; cursors too. */
  listKeys(prefix = '', cursor = null, limit = 100) {
    const page = listKeys(this.key(prefix), cursor === null ? null : this.key(cursor), limit);
    const n = this.prefix.length;
    return { keys: page.keys.map((k) => k.slice(n)), next: page.next === null ? null : page.next.slice(n) };
  }
  listAllKeys(prefix = '', pageSize = 1000) { return listAllKeys(this.key(prefix), pageSize).map((k) => k.slice(this.prefix.length)); }
  increment(k, d = 1) { return increment(this.key(k), d); }
  compareAndSwap(k, o, v) { return compareAndSwap(this.key(k), o, v); }
  compareAndSwapJson(k, o, v) { return compareAndSwapJson(this.key(k), o, v); }
  setIfAbsent(k, v) { return setIfAbsent(this.key(k), v); }
  setJsonIfAbsent(k, v) { return setJsonIfAbsent(this.key(k), v); }
}

/** This council's part of the store: keys under `council/{council}/`. */
export function councilKv(councilId) {
  return new ScopedKv(`council/${councilId}/`);
}
