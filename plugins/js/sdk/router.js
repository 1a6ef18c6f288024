// Method + path routing, 404/405 problems, HEAD from GET, OPTIONS, and `serve`.
import { HttpError, PluginRequest, empty, problem } from './http.js';

function compile(pattern) {
  if (!pattern.startsWith('/')) throw new Error(`route ${pattern} must start with /`);
  const segments = pattern === '/' ? [] : pattern.slice(1).split('/');
  return segments.map((s, i) => {
    const m = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(s);
    if (!m) return { literal: s };
    if (m[1] && i !== segments.length - 1) throw new Error(`{*${m[2]}} must be the last segment of ${pattern}`);
    return { param: m[2], rest: !!m[1] };
  });
}

function decode(s) {
  try { return decodeURIComponent(s); } catch { return null; }
}

function match(compiled, path) {
  const parts = path === '/' || path === '' ? [] : path.replace(/^\//, '').split('/');
  const params = {};
  for (let i = 0; i < compiled.length; i++) {
    const seg = compiled[i];
    if (seg.rest) {
      const rest = parts.slice(i).map(decode);
      if (rest.some((p) => p === null)) return null;
      params[seg.param] = rest.join('/');
      return params;
    }
    if (i >= parts.length) return null;
    if (seg.literal !== undefined) {
      if (decode(parts[i]) !== seg.literal) return null;
    } else {
      const v = decode(parts[i]);
      if (v === null || v === '') return null;
      params[seg.param] = v;
    }
  }
  return parts.length === compiled.length ? params : null;
}

/**
 * Routes requests by method and path pattern (`/notices/{id}`, `/files/{*rest}`).
 * Unknown paths answer `404`, known paths with another method `405` with `Allow`;
 * `GET` routes also serve `HEAD`; `OPTIONS` answers `204` with `Allow`.
 */
export class Router {
  constructor() { this.routes = []; }
  route(method, pattern, handler) {
    this.routes.push({ method: method.toUpperCase(), pattern, compiled: compile(pattern), handler });
    return this;
  }
  get(p, h) { return this.route('GET', p, h); }
  post(p, h) { return this.route('POST', p, h); }
  put(p, h) { return this.route('PUT', p, h); }
  patch(p, h) { return this.route('PATCH', p, h); }
  delete(p, h) { return this.route('DELETE', p, h); }

  /** Answers a web `Request` (never throws). */
  async handle(raw) {
    const req = raw instanceof PluginRequest ? raw : new PluginRequest(raw);
    const method = req.method;
    const allowed = [];
    for (const r of this.routes) {
      const params = match(r.compiled, req.path);
      if (!params) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) {
        req.params = params;
        const response = await run(r.handler, req);
        return method === 'HEAD' ? new Response(null, { status: response.status, headers: response.headers }) : response;
      }
      if (!allowed.includes(r.method)) allowed.push(r.method);
    }
    if (allowed.length === 0) return problem(404, `nothing here: ${req.path}`);
    if (allowed.includes('GET') && !allowed.includes('HEAD')) allowed.push('HEAD');
    if (!allowed.includes('OPTIONS')) allowed.push('OPTIONS');
    const allow = allowed.join(', ');
    if (method === 'OPTIONS') return empty(204, { allow });
    return problem(405, `${method} is not allowed here; use ${allow}`, { headers: { allow } });
  }
}

async function run(handler, req) {
  try {
    const response = await handler(req);
    if (!(response instanceof Response)) {
      console.error('guildhall: a handler returned something that is not a Response');
      return problem(500, 'the service gave no answer');
    }
    return response;
  } catch (e) {
    return errorResponse(e);
  }
}

/** The problem response for an error thrown by a handler. */
export function errorResponse(e) {
  if (e && typeof e.toResponse === 'function') return e.toResponse();
  console.error('guildhall: unhandled error:', e && e.stack ? e.stack : String(e));
  return problem(500, 'the service failed to answer this request');
}

/**
 * Answers every request of the component with `handler` (a `Router` or a function
 * `(req: PluginRequest) => Response | Promise<Response>`). Call once, at the top level.
 */
export function serve(handler) {
  const handle = typeof handler === 'function' ? (raw) => run(handler, new PluginRequest(raw)) : (raw) => handler.handle(raw);
  addEventListener('fetch', (event) => {
    event.respondWith(
      Promise.resolve()
        .then(() => handle(event.request))
        .catch(errorResponse),
    );
  });
}

export { HttpError };
