export interface Subject {
  id: string;
  roles: string[];
  /** The council the subject's roles are limited to, or `null`. */
  council: string | null;
}
export interface Site {
  tenantName: string;
  councilName: string;
  assets: string;
  brandStylesheet: string | null;
  logo: string | null;
  contactUrl: string | null;
  accessibilityUrl: string | null;
  basePath: string;
  feedbackPath: string;
}
export function tenant(): string;
export function council(): string;
export function plugin(): string;
export function version(): string;
export function requestId(): string;
/** The signed-in caller, or `null` for anonymous. */
export function caller(): Subject | null;
export function hasRole(...roles: (string | string[])[]): boolean;
/** The caller when it may act for this council; else throws `HttpError` 401/403. */
export function actingCaller(): Subject;
/** `actingCaller` holding one of `roles`; else throws `HttpError` 401/403. */
export function writer(roles: string[]): Subject;
/** The install's configuration object. */
export function config(): Record<string, unknown>;
/** One setting, parsed, or `fallback`. */
export function configValue<T = unknown>(key: string, fallback?: T): T | undefined;
export function site(): Site;
