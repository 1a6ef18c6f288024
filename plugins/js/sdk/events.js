// guildhall:platform/events: needs `[capabilities] events = true`.
import * as events from 'guildhall:platform/events@0.1.0';
import { stringify } from './http.js';

/** Why an event was not recorded: `kind` is `invalid-name`, `invalid-payload`, `too-large` or `unavailable`. */
export class EventsError extends Error {
  constructor(kind, value) {
    super(`event not recorded: ${kind}${value !== undefined ? ': ' + value : ''}`);
    this.name = 'EventsError';
    this.kind = kind;
    this.value = value;
  }
}

/** Records the event `name` with the JSON `payload` (any JSON value; default `{}`). Never put personal data in it. */
export function emit(name, payload = {}) {
  try {
    events.emit(name, stringify(payload));
  } catch (e) {
    const p = e && e.payload;
    if (p && typeof p.tag === 'string') throw new EventsError(p.tag, typeof p.val === 'bigint' ? Number(p.val) : p.val);
    throw e;
  }
}
