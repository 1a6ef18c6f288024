// Accessibility checks with axe-core against WCAG 2.2 AA (and the 2.0/2.1 A and AA rules).

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

const RUN_TIMEOUT_MS = 60_000;

let axeSource;

export class AccessibilityError extends Error {
  constructor(label, violations) {
    super(`${label}: ${violations.length} accessibility violation(s)\n${formatViolations(violations)}`);
    this.name = 'AccessibilityError';
    this.label = label;
    this.violations = violations;
  }
}

export function formatViolations(violations) {
  return violations.map((v) => {
    const nodes = v.nodes.map((n) => {
      const summary = (n.failureSummary || '').split('\n').map((l) => l.trim())
        .filter((l) => l && !/^Fix (any|all) of the following:$/.test(l)).slice(0, 2).join('; ');
      return `      ${n.target.join(' ')}${summary ? `  (${summary})` : ''}`;
    });
    return `  - ${v.id} [${v.impact}] ${v.help}\n    ${v.helpUrl}\n${nodes.join('\n')}`;
  }).join('\n');
}

// Installed in the page next to axe: starts a run and leaves the outcome on window.
function installRunner() {
  window.__guildhallAxe = {
    start(tags, off, ex) {
      this.outcome = undefined;
      const rules = Object.fromEntries(off.map((id) => [id, { enabled: false }]));
      const context = ex.length ? { exclude: ex.map((s) => [s]) } : document;
      const pick = (v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({ target: n.target.map(String), html: n.html, failureSummary: n.failureSummary })),
      });
      window.axe.run(context, {
        runOnly: { type: 'tag', values: tags },
        rules,
        resultTypes: ['violations', 'incomplete'],
      }).then(
        (r) => { this.outcome = { violations: r.violations.map(pick), incomplete: r.incomplete.map(pick) }; },
        (e) => { this.outcome = { error: String(e?.stack || e) }; },
      );
    },
  };
}

// With JavaScript disabled, Chromium runs our evaluations and their microtasks but never
// fires timers, and axe waits on setTimeout. Swap in timers that a loop on our side fires.
function installTimerPump() {
  if (window.__guildhallTimers) return;
  const queue = [];
  let seq = 0;
  const real = { set: window.setTimeout, clear: window.clearTimeout };
  window.setTimeout = (fn, ms = 0, ...args) => {
    seq += 1;
    queue.push({ id: seq, due: performance.now() + (Number(ms) || 0), fn, args });
    return seq;
  };
  window.clearTimeout = (id) => {
    const i = queue.findIndex((t) => t.id === id);
    if (i >= 0) queue.splice(i, 1);
  };
  window.__guildhallTimers = {
    flush() {
      const now = performance.now();
      const due = queue.filter((t) => t.due <= now).sort((a, b) => a.due - b.due || a.id - b.id);
      for (const t of due) {
        queue.splice(queue.indexOf(t), 1);
        if (typeof t.fn === 'function') t.fn(...t.args);
      }
    },
    restore() {
      window.setTimeout = real.set;
      window.clearTimeout = real.clear;
      delete window.__guildhallTimers;
    },
  };
}

async function timersFire(page) {
  const probe = page.evaluate(() => new Promise((resolve) => { setTimeout(() => resolve(true), 0); }));
  probe.catch(() => {});
  return Promise.race([probe, sleep(300).then(() => false)]);
}

// Runs axe on the page as it is now and throws AccessibilityError when anything is found.
// Returns { violations: [], incomplete } otherwise; `incomplete` lists what axe could not
// decide (for example contrast over images) for the caller to look at if it wants.
//
// axe is evaluated through the DevTools protocol, so it also runs on pages with a strict
// Content-Security-Policy and in contexts with JavaScript disabled.
//
// options.disableRules: rule ids to skip (say why at the call site).
// options.exclude: selectors to leave out, e.g. third-party widgets.
export async function checkPage(page, label, options = {}) {
  const { disableRules = [], exclude = [] } = options;
  axeSource ??= await readFile(AXE_PATH, 'utf8');
  if (!await page.evaluate(() => typeof window.axe === 'object')) await page.evaluate(axeSource);
  await page.evaluate(installRunner);

  const pump = !await timersFire(page);
  if (pump) await page.evaluate(installTimerPump);
  try {
    await page.evaluate(([tags, off, ex]) => window.__guildhallAxe.start(tags, off, ex), [WCAG_TAGS, disableRules, exclude]);
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    let outcome;
    for (;;) {
      outcome = await page.evaluate((flush) => {
        if (flush) window.__guildhallTimers.flush();
        return window.__guildhallAxe.outcome;
      }, pump);
      if (outcome) break;
      if (Date.now() > deadline) throw new Error(`${label}: axe did not finish within ${RUN_TIMEOUT_MS} ms`);
      await sleep(pump ? 2 : 20);
    }
    if (outcome.error) throw new Error(`${label}: axe failed: ${outcome.error}`);
    if (outcome.violations.length > 0) throw new AccessibilityError(label, outcome.violations);
    return outcome;
  } finally {
    if (pump) await page.evaluate(() => window.__guildhallTimers?.restore()).catch(() => {});
  }
}
