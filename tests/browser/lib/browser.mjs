// Chromium through playwright-core, with helpers for contexts and screenshots.
//
// Environment:
//   CHROMIUM        browser binary (default /usr/bin/chromium, the Debian package)
//   SCREENSHOT_DIR  where screenshot() writes (default <repo>/target/console-screenshots)
//   HEADED=1        show the browser window (needs a display)

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launch(options = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    // Chromium refuses to start as root with its sandbox on; test machines and containers
    // often run as root. Small containers also have a tiny /dev/shm.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    ...options,
  });
}

// A British English context, the way the console's users see it.
export async function newContext(browser, options = {}) {
  return browser.newContext({
    locale: 'en-GB',
    timezoneId: 'Europe/London',
    viewport: { width: 1280, height: 900 },
    ...options,
  });
}

// Pages must work without JavaScript (GOV.UK progressive enhancement).
export async function javaScriptDisabledContext(browser, options = {}) {
  return newContext(browser, { ...options, javaScriptEnabled: false });
}

export function screenshotDir() {
  const dir = process.env.SCREENSHOT_DIR || path.join(REPO_ROOT, 'target', 'console-screenshots');
  return path.resolve(dir);
}

// Saves a full-page PNG named after `name` and returns its path.
export async function screenshot(page, name) {
  const dir = screenshotDir();
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${String(name).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'page'}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Records responses with status >= 400 and failed requests, e.g. a stylesheet or font that
// the server does not serve. Call before navigating; read .failures afterwards.
export function trackFailedRequests(page) {
  const failures = [];
  page.on('response', (res) => {
    if (res.status() >= 400) failures.push(`${res.status()} ${res.request().method()} ${res.url()}`);
  });
  page.on('requestfailed', (req) => {
    failures.push(`failed ${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  return { failures };
}

// Watches a page for what a user would not see but should not happen: script errors (a
// Content-Security-Policy violation is one), console errors, sub-resources answered >= 400
// and requests that fail. Adds `page.problems` (cleared by the caller once reported) and
// `page.lastStatus`, the status of the main frame's latest document (after redirects).
export function watchPage(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Failed loads are reported by status below; a page's own 4xx is expected.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
  });
  page.on('response', (res) => {
    const request = res.request();
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
      page.lastStatus = res.status();
    } else if (res.status() >= 400) {
      problems.push(`${res.status()} ${request.method()} ${res.url()}`);
    }
  });
  page.on('requestfailed', (req) => {
    const why = req.failure()?.errorText || '';
    // Navigations away (a form post, a link) abort what the last page still loaded.
    if (!why.includes('ERR_ABORTED')) problems.push(`failed ${req.method()} ${req.url()}: ${why}`);
  });
  page.problems = problems;
  return page;
}
