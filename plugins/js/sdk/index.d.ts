export { Router, serve, errorResponse, type Handler } from './router.js';
export { HttpError, PluginRequest, text, html, json, problem, empty, redirect, seeOther, reason, stringify } from './http.js';
export * as context from './context.js';
export { nowRfc3339 } from './time.js';
