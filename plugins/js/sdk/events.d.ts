export class EventsError extends Error {
  kind: 'invalid-name' | 'invalid-payload' | 'too-large' | 'unavailable';
  value: string | number | undefined;
}
/** Records event `name` (`[a-z0-9._-]{1,64}`) with a JSON payload (default `{}`). */
export function emit(name: string, payload?: unknown): void;
