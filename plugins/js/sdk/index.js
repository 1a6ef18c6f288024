// The Guildhall plugin SDK for JavaScript. This entry imports only `context`, which every
// plugin may use; import `./kv.js`, `./events.js`, `./authz.js`, `./session.js` and
// `./secrets.js` only when plugin.toml declares the capability.
export { Router, serve, errorResponse } from './router.js';
export { HttpError, PluginRequest, text, html, json, problem, empty, redirect, seeOther, reason, stringify } from './http.js';
export * as context from './context.js';
export { nowRfc3339 } from './time.js';
