// What every GOV.UK page journey checks the same way: axe on a page state (recorded in the
// journey's summary), the error summary after a wrong answer, and its links.

import assert from 'node:assert/strict';

import { AccessibilityError, checkPage, formatViolations } from './axe.mjs';

// Runs axe-core (WCAG 2.2 AA) on the page and records the outcome in `record`: what axe
// could not decide (e.g. contrast over an image), listed for a person to look at, and any
// violation, which `fail(title, detail)` reports.
export async function recordAxe(page, label, record, fail) {
  try {
    const outcome = await checkPage(page, label);
    record.axe_incomplete = outcome.incomplete.map((v) => v.id);
  } catch (error) {
    if (!(error instanceof AccessibilityError)) throw error;
    record.axe_violations = error.violations.length;
    record.axe_rules = error.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target.join(' '), html: n.html, summary: n.failureSummary })),
    }));
    fail(`axe: ${label}`, formatViolations(error.violations));
  }
}

// The error summary after a wrong answer: shown, saying `messages` with links to `hrefs`
// (each an existing field), and focused when JavaScript is on.
export async function expectErrorSummary(page, mode, hrefs, message) {
  const box = page.locator('.govuk-error-summary');
  await box.waitFor();
  const text = await box.innerText();
  assert.match(text, /There is a problem/);
  assert.match(text, message);
  const links = await box.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(links, hrefs, 'the error summary links to the fields in error');
  for (const href of hrefs) {
    const field = await page.locator(`[id="${href.slice(1)}"]`).evaluate((el) => el.tagName.toLowerCase()).catch(() => null);
    assert.ok(['input', 'textarea', 'select'].includes(field), `${href} is a field, not ${field}`);
    const group = page.locator(`[id="${href.slice(1)}"]`).locator('xpath=ancestor::div[contains(@class, "govuk-form-group")][1]');
    assert.match(await group.getAttribute('class'), /govuk-form-group--error/, `${href}'s form group shows the error`);
  }
  if (mode !== 'nojs') {
    // GOV.UK Frontend moves focus to the summary, so screen readers announce it.
    await page.waitForFunction(() => document.activeElement?.classList.contains('govuk-error-summary'), null, { timeout: 3000 })
      .catch(async () => { throw new Error(`focus is not on the error summary but on ${await page.evaluate(() => document.activeElement?.outerHTML?.slice(0, 120))}`); });
  }
  return hrefs;
}

// Clicks the error summary's link to `href`: with JavaScript, GOV.UK Frontend puts focus
// on the field.
export async function clickErrorLink(page, href) {
  await page.locator(`.govuk-error-summary a[href="${href}"]`).click();
  await page.waitForFunction((id) => document.activeElement?.id === id, href.slice(1), { timeout: 3000 })
    .catch(async () => { throw new Error(`the link ${href} left focus on ${await page.evaluate(() => document.activeElement?.outerHTML?.slice(0, 120))}`); });
}
