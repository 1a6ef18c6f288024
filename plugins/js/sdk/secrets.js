// guildhall:platform/secrets: needs a `[secrets]` table in plugin.toml.
import * as secrets from 'guildhall:platform/secrets@0.1.0';
import { HttpError } from './http.js';

/** Why a secret could not be read: `kind` is `undeclared`, `unavailable` or `not-set`. Names the secret, never its value. */
export class SecretsError extends Error {
  constructor(kind, name) {
    super(`secret ${name}: ${kind}`);
    this.name = 'SecretsError';
    this.kind = kind;
    this.secret = name;
  }
  toResponse() {
    console.error(`guildhall: ${this.message}`);
    return new HttpError(this.kind === 'unavailable' ? 503 : 500, 'the service is not set up to do this yet').toResponse();
  }
}

/** The secret's value for the calling council, or `null` when nobody has set it. */
export function get(name) {
  try {
    const v = secrets.get(name);
    return v === undefined || v === null ? null : v;
  } catch (e) {
    const p = e && e.payload;
    if (p && typeof p.tag === 'string') throw new SecretsError(p.tag, name);
    throw e;
  }
}

/** Like `get`, but throws `SecretsError` (`not-set`) when nobody has set it. */
export function require(name) {
  const v = get(name);
  if (v === null) throw new SecretsError('not-set', name);
  return v;
}
