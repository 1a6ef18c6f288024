export type HeadersInit = Headers | Record<string, string> | [string, string][];

/** The reason phrase of `status`, used as a problem's `title`. */
export function reason(status: number): string;
/** `text/plain; charset=utf-8`. */
export function text(status: number, body: string, headers?: HeadersInit): Response;
/** `text/html; charset=utf-8`. */
export function html(status: number, body: string, headers?: HeadersInit): Response;
/** `application/json`; bigints are written as numbers. */
export function json(status: number, value: unknown, headers?: HeadersInit): Response;
export interface ProblemOptions {
  title?: string;
  type?: string;
  headers?: HeadersInit;
  /** Extra members; `type`, `title`, `status` and `detail` always win. */
  extensions?: Record<string, unknown>;
}
/** An RFC 9457 `application/problem+json` response. */
export function problem(status: number, detail?: string, options?: ProblemOptions): Response;
/** A response without a body (default `204`). */
export function empty(status?: number, headers?: HeadersInit): Response;
/** A redirect, `302` unless `status` is given. */
export function redirect(location: string, status?: number, headers?: HeadersInit): Response;
/** `303 See Other`. */
export function seeOther(location: string, headers?: HeadersInit): Response;
/** `JSON.stringify` writing bigints as numbers. */
export function stringify(value: unknown): string;

/** Thrown from a handler, becomes a problem response. */
export class HttpError extends Error {
  constructor(status: number, detail?: string, options?: { headers?: HeadersInit; extensions?: Record<string, unknown>; title?: string });
  status: number;
  detail?: string;
  toResponse(): Response;
}

/** What a route handler receives. */
export class PluginRequest {
  constructor(raw: Request, params?: Record<string, string>);
  /** The web request. */
  readonly raw: Request;
  /** Upper-case method. */
  readonly method: string;
  readonly url: URL;
  /** The path under the plugin's root, e.g. `/notices/1`. */
  readonly path: string;
  /** Path parameters of the matched route, percent-decoded. */
  params: Record<string, string>;
  readonly headers: Headers;
  readonly searchParams: URLSearchParams;
  param(name: string): string | undefined;
  query(name: string): string | null;
  queryAll(name: string): string[];
  header(name: string): string | null;
  bytes(): Promise<Uint8Array>;
  text(): Promise<string>;
  /** Throws `HttpError(400)` when the body is not JSON. */
  json<T = unknown>(): Promise<T>;
  /** `application/x-www-form-urlencoded` fields (last value wins). */
  form(): Promise<Record<string, string>>;
  formParams(): Promise<URLSearchParams>;
}
