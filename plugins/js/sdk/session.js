// guildhall:platform/session: needs `[capabilities] session = true`.
import * as session from 'guildhall:platform/session@0.1.0';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Why a session operation failed: `kind` is `no-session`, `invalid-key`, `too-large` or `unavailable`. */
export class SessionError extends Error {
  constructor(kind, value) {
    super(`session ${kind}${value !== undefined ? ': ' + value : ''}`);
    this.name = 'SessionError';
    this.kind = kind;
    this.value = value;
  }
}

function call(f) {
  try {
    return f();
  } catch (e) {
    const p = e && e.payload;
    if (p && typeof p.tag === 'string') throw new SessionError(p.tag, typeof p.val === 'bigint' ? Number(p.val) : p.val);
    throw e;
  }
}

/** The bytes under `key` in this citizen's session, or `null`. */
export function get(key) {
  const v = call(() => session.get(key));
  return v === undefined || v === null ? null : v;
}
export function getText(key) {
  const v = get(key);
  return v === null ? null : dec.decode(v);
}
export function getJson(key) {
  const v = getText(key);
  return v === null ? null : JSON.parse(v);
}
/** Stores `value` (string or bytes); a `GET` without a session starts one. */
export function set(key, value) {
  call(() => session.set(key, typeof value === 'string' ? enc.encode(value) : value));
}
export function setJson(key, value) {
  set(key, JSON.stringify(value));
}
/** Removes `key`; whether it existed. */
export function remove(key) {
  return call(() => session.remove(key));
}
/** Removes every value; the session and its token stay. */
export function clear() {
  call(() => session.clear());
}
/** The token every form must carry as the hidden field `csrf`. */
export function csrfToken() {
  return call(() => session.csrfToken());
}
