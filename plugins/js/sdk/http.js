// Responses, requests and errors: plain web `Request`/`Response` underneath.
// This module imports no platform interface.

const REASONS = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content',
  301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified',
  307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 409: 'Conflict', 410: 'Gone',
  412: 'Precondition Failed', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Content', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** The reason phrase of `status`, used as a problem's `title`. */
export function reason(status) {
  return REASONS[status] ?? (status >= 500 ? 'Server Error' : status >= 400 ? 'Client Error' : 'Status ' + status);
}

function withType(headers, type) {
  const h = new Headers(headers ?? {});
  if (!h.has('content-type')) h.set('content-type', type);
  return h;
}

/** `text/plain; charset=utf-8`. */
export function text(status, body, headers) {
  return new Response(String(body), { status, headers: withType(headers, 'text/plain; charset=utf-8') });
}

/** `text/html; charset=utf-8`. */
export function html(status, body, headers) {
  return new Response(String(body), { status, headers: withType(headers, 'text/html; charset=utf-8') });
}

/** `application/json` with `value` serialised (bigints become numbers). */
export function json(status, value, headers) {
  return new Response(stringify(value), { status, headers: withType(headers, 'application/json') });
}

/** An RFC 9457 problem: `{"type":"about:blank","title":<reason>,"status","detail", ...extensions}`. */
export function problem(status, detail, options = {}) {
  const { title = reason(status), type = 'about:blank', headers, extensions } = options;
  const body = { ...(extensions ?? {}), type, title, status };
  if (detail !== undefined && detail !== null) body.detail = String(detail);
  return new Response(stringify(body), { status, headers: withType(headers, 'application/problem+json') });
}

/** A response with no body, e.g. `empty(204)`. */
export function empty(status = 204, headers) {
  return new Response(null, { status, headers: new Headers(headers ?? {}) });
}

/** A redirect (`302` unless `status` says otherwise) to `location`. */
export function redirect(location, status = 302, headers) {
  const h = new Headers(headers ?? {});
  h.set('location', location);
  return new Response(null, { status, headers: h });
}

/** `303 See Other` to `location`: the answer to a form post. */
export function seeOther(location, headers) {
  return redirect(location, 303, headers);
}

/** JSON.stringify that writes bigints as numbers. */
export function stringify(value) {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v));
}

/**
 * An error that becomes a problem response when a route handler throws it.
 * `throw new HttpError(422, "title must be 1 to 100 characters")`.
 */
export class HttpError extends Error {
  constructor(status, detail, options = {}) {
    super(detail ?? reason(status));
    this.name = 'HttpError';
    this.status = status;
    this.detail = detail;
    this.headers = options.headers;
    this.extensions = options.extensions;
    this.title = options.title;
  }
  toResponse() {
    return problem(this.status, this.detail, {
      headers: this.headers, extensions: this.extensions, title: this.title,
    });
  }
}

/** The request as a route handler sees it: the web `Request` plus helpers. */
export class PluginRequest {
  constructor(raw, params = {}) {
    this.raw = raw;
    this.method = raw.method.toUpperCase();
    this.url = new URL(raw.url);
    this.path = this.url.pathname || '/';
    this.params = params;
    this.headers = raw.headers;
    this._body = undefined;
  }
  /** One path parameter (already percent-decoded), e.g. `req.param("id")`. */
  param(name) { return this.params[name]; }
  /** The first value of query parameter `name`, or `null`. */
  query(name) { return this.url.searchParams.get(name); }
  /** Every value of query parameter `name`. */
  queryAll(name) { return this.url.searchParams.getAll(name); }
  /** All query parameters. */
  get searchParams() { return this.url.searchParams; }
  /** A request header, or `null`. */
  header(name) { return this.raw.headers.get(name); }
  /** The body as bytes (read once, then cached). */
  async bytes() {
    if (this._body === undefined) this._body = new Uint8Array(await this.raw.arrayBuffer());
    return this._body;
  }
  /** The body as UTF-8 text. */
  async text() { return new TextDecoder().decode(await this.bytes()); }
  /** The body parsed as JSON; throws `HttpError(400)` when it is not JSON. */
  async json() {
    const body = await this.text();
    try {
      return JSON.parse(body);
    } catch (e) {
      throw new HttpError(400, 'the request body is not valid JSON');
    }
  }
  /** The body as `application/x-www-form-urlencoded` fields: `{name: value}` (last value wins). */
  async form() {
    const fields = {};
    for (const [k, v] of new URLSearchParams(await this.text())) fields[k] = v;
    return fields;
  }
  /** The body as `URLSearchParams`, for repeated fields. */
  async formParams() { return new URLSearchParams(await this.text()); }
}
