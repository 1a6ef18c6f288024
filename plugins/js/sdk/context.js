// guildhall:platform/context: always available, needs no capability.
import * as ctx from 'guildhall:platform/context@0.1.0';
import { HttpError } from './http.js';

/** The tenant (alliance) id, e.g. `north-downs`. */
export const tenant = () => ctx.tenant();
/** The council id of this request, e.g. `tandridge`. */
export const council = () => ctx.council();
/** This plugin's name. */
export const plugin = () => ctx.plugin();
/** This plugin's version. */
export const version = () => ctx.version();
/** The platform's id for this request. */
export const requestId = () => ctx.requestId();

/** The authenticated caller `{id, roles, council}` (council: `null` when not limited), or `null` for anonymous. */
export function caller() {
  const p = ctx.caller();
  if (p.tag !== 'subject') return null;
  return { id: p.val.id, roles: [...p.val.roles], council: p.val.council ?? null };
}

/** Whether the caller is signed in and holds at least one of `roles`. */
export function hasRole(...roles) {
  const s = caller();
  return !!s && s.roles.some((r) => roles.flat().includes(r));
}

/**
 * The caller when it may act for this council: signed in, holding some role, not limited to
 * another council. Otherwise throws an `HttpError` (401 with `WWW-Authenticate`, or 403).
 */
export function actingCaller() {
  const s = caller();
  if (!s) throw new HttpError(401, 'sign in as a council officer to do this', { headers: { 'www-authenticate': 'Bearer' } });
  if (s.council && s.council !== council()) {
    throw new HttpError(403, `your roles are for the council ${s.council}, so you may not change another council's data`);
  }
  if (s.roles.length === 0) throw new HttpError(403, 'you hold no role in this alliance');
  return s;
}

/** Like `actingCaller`, and the caller must hold one of `roles` (e.g. `["officer", "tenant-admin"]`). */
export function writer(roles) {
  const s = actingCaller();
  if (!s.roles.some((r) => roles.includes(r))) throw new HttpError(403, `this needs one of the roles ${roles.join(', ')}`);
  return s;
}

/** The install's whole configuration (a JSON object). */
export function config() {
  return JSON.parse(ctx.config());
}

/** One configuration value (parsed JSON), or `fallback` (default `undefined`) when it is not set. */
export function configValue(key, fallback = undefined) {
  const v = ctx.configValue(key);
  return v === undefined || v === null ? fallback : JSON.parse(v);
}

/** How this council's pages look and where they live. */
export function site() {
  const s = ctx.currentSite();
  return {
    tenantName: s.tenantName,
    councilName: s.councilName,
    assets: s.assets,
    brandStylesheet: s.brandStylesheet ?? null,
    logo: s.logo ?? null,
    contactUrl: s.contactUrl ?? null,
    accessibilityUrl: s.accessibilityUrl ?? null,
    basePath: s.basePath,
    feedbackPath: s.feedbackPath,
  };
}
