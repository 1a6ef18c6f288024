export class SecretsError extends Error {
  kind: 'undeclared' | 'unavailable' | 'not-set';
  /** The secret's name (never its value). */
  secret: string;
  toResponse(): Response;
}
/** The secret for the calling council, or `null` when not set. */
export function get(name: string): string | null;
/** Like `get`; throws `SecretsError('not-set')` when not set. */
export function require(name: string): string;
