import type { PluginRequest } from './http.js';
export { HttpError } from './http.js';

export type Handler = (req: PluginRequest) => Response | Promise<Response>;

/** Method + path routing: `{param}` segments, a final `{*rest}`; 404, 405 with `Allow`, HEAD, OPTIONS. */
export class Router {
  constructor();
  route(method: string, pattern: string, handler: Handler): this;
  get(pattern: string, handler: Handler): this;
  post(pattern: string, handler: Handler): this;
  put(pattern: string, handler: Handler): this;
  patch(pattern: string, handler: Handler): this;
  delete(pattern: string, handler: Handler): this;
  /** Answers a request; never throws. */
  handle(req: Request | PluginRequest): Promise<Response>;
}
/** The problem response for an error a handler threw (500 unless it has `toResponse()`). */
export function errorResponse(e: unknown): Response;
/** Answers every request of the component; call once at the top level of the entry module. */
export function serve(handler: Router | Handler): void;
