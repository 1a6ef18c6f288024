#!/usr/bin/env node
// Citizens' journeys through two example services in Chromium, as residents meet them.
// Started by the Rust driver (tests/api/citizen_browser.rs) against a running server:
//
//   node tests/browser/citizen-journeys.mjs <base-url>
//
//   <base-url> (or BASE_URL)  the server's origin, e.g. http://127.0.0.1:8080
//   TENANT, COUNCIL           where report-a-problem and bin-collections are installed
//   COUNCIL_NAME              the council's name, which ends every page's <title>
//   BRAND_COLOUR              optional: the council's brand colour, rrggbb (its stylesheet is linked)
//   CONTACT_URL, ACCESSIBILITY_URL  optional: the brand's footer links
//   POSTCODE                  a postcode with two or more addresses in the bin schedule
//   ADDRESS                   one of them, chosen by the mouse runs
//   SCREENSHOT_DIR            where full-page screenshots go (1280 px and 320 px wide)
//
// The server must run with `[sessions] secure_cookies = false` (plain HTTP on loopback), so
// the session cookie is `guildhall.{tenant}.{council}.report-a-problem`; the council must
// have a brand with a logo.
//
// Journeys, each completed three times: with a mouse and JavaScript on, with JavaScript off,
// and with the keyboard alone (JavaScript on):
//   report-a-problem  start → what and where → describe → your details → check your answers
//                     → confirmation with the reference; then the platform's feedback page
//   bin-collections   start (postcode) → choose the address → bin days
// with a wrong answer on each (the error summary shown, focused when JavaScript is on, its
// links leading to the fields), and the platform's refusals: a form posted after the session
// ended, and a form without the session's token.
//
// On every page reached: axe-core at WCAG 2.2 AA, one <h1>, the <title>, the brand (logo,
// colour, footer links), GOV.UK Frontend started (JavaScript on) or not (off), no script
// error or failed sub-resource, no horizontal scrolling at 320 px with <main> and its <h1>
// on screen, and full-page screenshots.
//
// Progress goes to stderr. stdout is one JSON document:
//   { chromium, base, seconds,
//     pages: [{ id, mode, path, status, title, axe_violations, axe_rules, axe_incomplete, reflow,
//               problems, screenshot }],
//     journeys: [{ service, mode, completed, seconds, reference?, service_code?, location?,
//                  description?, name?, feedback_comment?, address?, next?, errors_shown, focus_invisible }],
//     refusals: { session_cookie, ended_status, forged_status },
//     failures: [text] }
// and the exit status is 1 when anything failed.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { javaScriptDisabledContext, launch, newContext, screenshot, watchPage } from './lib/browser.mjs';
import { press, pressAndWait, tabTo, typeText } from './lib/keyboard.mjs';
import { clickErrorLink, expectErrorSummary, recordAxe } from './lib/govuk.mjs';
import { checkReflow } from './lib/reflow.mjs';

function required(name, value = process.env[name]) {
  if (!value) {
    console.error(`citizen-journeys.mjs: ${name} must be set`);
    process.exit(2);
  }
  return value;
}

const BASE = required('the base URL (first argument, or BASE_URL)', process.argv[2] || process.env.BASE_URL).replace(/\/$/, '');
const TENANT = process.env.TENANT || 'north-downs';
const COUNCIL = process.env.COUNCIL || 'tandridge';
const COUNCIL_NAME = required('COUNCIL_NAME');
const BRAND_COLOUR = (process.env.BRAND_COLOUR || '').replace(/^#/, '').toLowerCase();
const CONTACT_URL = process.env.CONTACT_URL || '';
const ACCESSIBILITY_URL = process.env.ACCESSIBILITY_URL || '';
const POSTCODE = required('POSTCODE');
const ADDRESS = required('ADDRESS');

const REPORT = `/s/${TENANT}/${COUNCIL}/report-a-problem`;
const BINS = `/s/${TENANT}/${COUNCIL}/bin-collections`;
const SESSION_COOKIE = `guildhall.${TENANT}.${COUNCIL}.report-a-problem`;
// Told apart in the report's descriptions, so the driver can find each run's request.
const RUN = randomBytes(3).toString('hex');

const started = Date.now();
const summary = { chromium: '', base: BASE, seconds: 0, pages: [], journeys: [], refusals: {}, failures: [] };

function log(line) {
  process.stderr.write(`${line}\n`);
}

function fail(label, detail) {
  const text = `${label}${detail ? `\n${detail}` : ''}`;
  summary.failures.push(text);
  log(`FAIL ${text.split('\n').join('\n    ')}`);
}

// How long one journey may take before it counts as stuck (each takes seconds).
const STEP_TIMEOUT_MS = 90_000;

// A step that may fail without stopping the others.
async function step(label, fn) {
  const t = Date.now();
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`stuck for ${STEP_TIMEOUT_MS / 1000} s`)), STEP_TIMEOUT_MS); }),
    ]);
    log(`ok ${label} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  } catch (error) {
    fail(label, error?.stack || String(error));
  } finally {
    clearTimeout(timer);
  }
}

const pathOf = (page) => {
  const url = new URL(page.url());
  return `${url.pathname}${url.search}`;
};

async function openPage(context) {
  const page = watchPage(await context.newPage());
  page.setDefaultTimeout(10000);
  return page;
}

async function go(page, path) {
  await page.goto(`${BASE}${path}`, { waitUntil: 'load' });
}

// Clicks what leads to another page (a link, a form's button) and waits for it to load.
async function follow(page, locator) {
  const navigated = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
  await locator.click();
  await navigated;
  await page.waitForLoadState('load');
}

// ---------------------------------------------------------------------------------------------
// What every page is checked for.

// Runs in the page: its shape, its brand and its error summary.
function pageShape() {
  const logo = document.querySelector('header img.gh-brand__logo');
  const summaryBox = document.querySelector('.govuk-error-summary');
  return {
    h1: [...document.querySelectorAll('h1')].map((h) => h.innerText.trim().replace(/\s+/g, ' ')),
    title: document.title,
    lang: document.documentElement.lang,
    mains: document.querySelectorAll('main#main-content').length,
    skipLink: Boolean(document.querySelector('a.govuk-skip-link[href="#main-content"]')),
    logo: logo && { src: logo.getAttribute('src'), alt: logo.getAttribute('alt'), loaded: logo.complete && logo.naturalWidth > 0 },
    stylesheets: [...document.querySelectorAll('link[rel="stylesheet"]')].map((l) => l.getAttribute('href')),
    footerLinks: [...document.querySelectorAll('footer a')].map((a) => ({ text: a.innerText.trim(), href: a.getAttribute('href') })),
    errorSummary: summaryBox && {
      links: [...summaryBox.querySelectorAll('a')].map((a) => {
        const href = a.getAttribute('href') || '';
        const target = href.startsWith('#') ? document.getElementById(href.slice(1)) : null;
        return { href, text: a.innerText.trim(), target: target ? target.tagName.toLowerCase() : null };
      }),
    },
  };
}

function screenshotName(mode, id) {
  return `${mode}-${id}`.replace(/\//g, '-');
}

// Checks the page as it is now; records it in the summary and any problem as a failure.
async function checkCitizenPage(page, mode, id, { status } = {}) {
  await page.waitForLoadState('load');
  const record = {
    id, mode, path: pathOf(page), status: page.lastStatus ?? 0, title: '',
    axe_violations: 0, axe_rules: [], axe_incomplete: [], reflow: null, problems: [], screenshot: '',
  };
  const problems = record.problems;
  if (status !== undefined && record.status !== status) problems.push(`answered ${record.status}, not ${status}`);
  if (mode === 'nojs') {
    if (await page.evaluate(() => document.body.classList.contains('js-enabled'))) problems.push('marked js-enabled with JavaScript off');
  } else {
    // init.js is a module: give it a moment after load.
    await page.waitForFunction(() => document.body.classList.contains('govuk-frontend-supported'), null, { timeout: 5000 })
      .catch(() => problems.push('GOV.UK Frontend did not start (init.js under the Content-Security-Policy)'));
  }

  const shape = await page.evaluate(pageShape);
  record.title = shape.title;
  if (shape.h1.length !== 1) problems.push(`${shape.h1.length} <h1> elements: ${JSON.stringify(shape.h1)}`);
  if (!shape.title.endsWith(` – ${COUNCIL_NAME}`)) problems.push(`<title> ${JSON.stringify(shape.title)} does not end with the council's name`);
  if (Boolean(shape.errorSummary) !== shape.title.startsWith('Error: ')) problems.push(`<title> ${JSON.stringify(shape.title)} and the error summary disagree`);
  if (shape.lang !== 'en' || shape.mains !== 1 || !shape.skipLink) problems.push(`page shape: lang ${shape.lang}, ${shape.mains} main#main-content, skip link ${shape.skipLink}`);
  if (!shape.logo) problems.push('no brand logo in the header');
  else {
    if (!shape.logo.src?.startsWith('/assets/brand/logos/')) problems.push(`the logo is at ${shape.logo.src}`);
    if (!shape.logo.loaded) problems.push(`the logo ${shape.logo.src} did not load`);
    if (shape.logo.alt !== COUNCIL_NAME) problems.push(`the logo's alt text is ${JSON.stringify(shape.logo.alt)}`);
  }
  if (BRAND_COLOUR && !shape.stylesheets.includes(`/assets/brand/colours/${BRAND_COLOUR}.css`)) {
    problems.push(`the brand colour's stylesheet is not linked: ${JSON.stringify(shape.stylesheets)}`);
  }
  for (const [url, what] of [[CONTACT_URL, 'contact'], [ACCESSIBILITY_URL, 'accessibility statement']]) {
    if (url && !shape.footerLinks.some((l) => l.href === url)) problems.push(`no footer link to the ${what} (${url}): ${JSON.stringify(shape.footerLinks)}`);
  }
  for (const link of shape.errorSummary?.links ?? []) {
    if (!link.target) problems.push(`the error summary's link ${link.href} (${link.text}) leads nowhere`);
  }

  const label = `${mode} ${id} [${record.path}]`;
  await recordAxe(page, label, record, fail);

  const name = screenshotName(mode, id);
  record.reflow = await checkReflow(page, { shoot: (p) => screenshot(p, `${name}-320px`) });
  problems.push(...record.reflow.problems);
  record.screenshot = await screenshot(page, name);

  if (page.problems.length) {
    problems.push(...page.problems);
    page.problems.length = 0;
  }
  if (problems.length) fail(`${label}: page checks`, problems.join('\n'));
  summary.pages.push(record);
  return record;
}

function newJourney(service, mode) {
  const journey = { service, mode, completed: false, seconds: 0, errors_shown: [], focus_invisible: [] };
  summary.journeys.push(journey);
  return journey;
}

async function run(label, journey, fn) {
  const t = Date.now();
  await step(label, async () => {
    await fn();
    journey.completed = true;
  });
  journey.seconds = Number(((Date.now() - t) / 1000).toFixed(1));
}

// ---------------------------------------------------------------------------------------------
// Report a problem, with a mouse (and `fill`), JavaScript on or off.

async function reportWithMouse(browser, mode) {
  const journey = newJourney('report-a-problem', mode);
  await run(`report-a-problem, ${mode === 'js' ? 'JavaScript on' : 'JavaScript off'}`, journey, async () => {
    const context = mode === 'js' ? await newContext(browser) : await javaScriptDisabledContext(browser);
    const page = await openPage(context);
    try {
      await go(page, `${REPORT}/`);
      await checkCitizenPage(page, mode, 'report/start', { status: 200 });
      assert.equal((await page.locator('h1').innerText()).trim(), 'Report a problem');
      await follow(page, page.getByRole('button', { name: 'Start now' }));
      assert.equal(pathOf(page), `${REPORT}/where`);
      await checkCitizenPage(page, mode, 'report/where', { status: 200 });

      // The wrong answer: nothing chosen and nothing typed.
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#service', '#location'], /Select what the problem is[\s\S]*Enter where the problem is/));
      await checkCitizenPage(page, mode, 'report/where-error', { status: 422 });
      if (mode === 'js') await clickErrorLink(page, '#service');

      // JavaScript on takes the first type of problem, off the second.
      const radio = page.locator('input[name="service"]').nth(mode === 'js' ? 0 : 1);
      await radio.check();
      journey.service_code = await radio.getAttribute('value');
      journey.location = `Outside ${mode === 'js' ? 12 : 14} High Street, Oxted`;
      await page.getByLabel('Where is it?').fill(journey.location);
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${REPORT}/describe`);
      await checkCitizenPage(page, mode, 'report/describe', { status: 200 });
      journey.description = `A hole the size of a dinner plate, reported with JavaScript ${mode === 'js' ? 'on' : 'off'} (run ${RUN})`;
      await page.getByLabel('Describe the problem').fill(journey.description);
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${REPORT}/details`);
      await checkCitizenPage(page, mode, 'report/details', { status: 200 });
      if (mode === 'js') {
        journey.name = 'Jo Bloggs';
        await page.getByLabel('Full name (optional)').fill(journey.name);
        await page.getByLabel('Email address (optional)').fill('jo.bloggs@example.com');
      }
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${REPORT}/check-answers`);
      const answers = await page.locator('main').innerText();
      for (const shown of [journey.location, journey.description, journey.name ?? 'Not provided']) {
        assert.ok(answers.includes(shown), `check your answers shows ${JSON.stringify(shown)}:\n${answers}`);
      }
      await checkCitizenPage(page, mode, 'report/check-answers', { status: 200 });
      await follow(page, page.getByRole('button', { name: 'Send report' }));
      assert.equal(pathOf(page), `${REPORT}/confirmation`);
      journey.reference = (await page.locator('.govuk-panel__body strong').innerText()).trim();
      assert.ok(journey.reference, 'a reference on the confirmation');
      assert.match(await page.locator('.govuk-panel__title').innerText(), /Report sent/);
      await checkCitizenPage(page, mode, 'report/confirmation', { status: 200 });

      // The platform's feedback page, from the phase banner.
      await follow(page, page.getByRole('link', { name: 'give your feedback' }));
      assert.equal(pathOf(page), `${REPORT}/_feedback`);
      await checkCitizenPage(page, mode, 'feedback', { status: 200 });
      await follow(page, page.getByRole('button', { name: 'Send feedback' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#rating'], /Select how you felt about the service/));
      await checkCitizenPage(page, mode, 'feedback-error', { status: 422 });
      if (mode === 'js') await clickErrorLink(page, '#rating');
      await page.getByLabel('Satisfied', { exact: true }).check();
      journey.feedback_comment = `Easy to use with JavaScript ${mode === 'js' ? 'on' : 'off'} (run ${RUN})`;
      await page.getByLabel('How could we improve this service? (optional)').fill(journey.feedback_comment);
      await follow(page, page.getByRole('button', { name: 'Send feedback' }));
      assert.equal(pathOf(page), `${REPORT}/_feedback?sent=1`);
      assert.match(await page.locator('.govuk-panel__title').innerText(), /Thank you for your feedback/);
      await checkCitizenPage(page, mode, 'feedback-thanks', { status: 200 });
    } finally {
      await context.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Bin collection days, with a mouse (and `fill`), JavaScript on or off.

async function collectionsShown(page, journey) {
  journey.address = (await page.locator('main .govuk-caption-l').innerText()).trim();
  journey.next = await page.locator('main .govuk-summary-list__row').evaluateAll((rows) => rows.map((r) => [
    r.querySelector('.govuk-summary-list__key').innerText.trim(),
    r.querySelector('.govuk-summary-list__value').innerText.trim(),
  ]));
  assert.ok(journey.next.length > 0, 'the next collections are shown');
}

async function binsWithMouse(browser, mode) {
  const journey = newJourney('bin-collections', mode);
  await run(`bin-collections, ${mode === 'js' ? 'JavaScript on' : 'JavaScript off'}`, journey, async () => {
    const context = mode === 'js' ? await newContext(browser) : await javaScriptDisabledContext(browser);
    const page = await openPage(context);
    try {
      await go(page, `${BINS}/`);
      await checkCitizenPage(page, mode, 'bins/start', { status: 200 });
      assert.equal((await page.locator('h1').innerText()).trim(), 'Find your bin collection days');

      // The wrong answer: not a postcode.
      await page.getByLabel('Postcode').fill('NOT A POSTCODE');
      await follow(page, page.getByRole('button', { name: 'Find address' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#postcode'], /Enter a real postcode/));
      await checkCitizenPage(page, mode, 'bins/postcode-error', { status: 422 });
      if (mode === 'js') await clickErrorLink(page, '#postcode');

      // Typed as people type it.
      await page.getByLabel('Postcode').fill(POSTCODE.toLowerCase().replace(/\s+/g, ''));
      await follow(page, page.getByRole('button', { name: 'Find address' }));
      assert.equal(new URL(page.url()).pathname, `${BINS}/address`);
      await checkCitizenPage(page, mode, 'bins/address', { status: 200 });

      // A second wrong answer: no address chosen.
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#uprn'], /Select your address/));
      await checkCitizenPage(page, mode, 'bins/address-error', { status: 422 });
      if (mode === 'js') await clickErrorLink(page, '#uprn');

      await page.getByLabel(ADDRESS, { exact: true }).check();
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(new URL(page.url()).pathname, `${BINS}/collections`);
      await collectionsShown(page, journey);
      await checkCitizenPage(page, mode, 'bins/collections', { status: 200 });
    } finally {
      await context.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The keyboard alone (JavaScript on): Tab, Shift+Tab, Space, Enter, arrows and typing. No
// clicks and no `fill`.

async function reportWithKeyboard(browser) {
  const journey = newJourney('report-a-problem', 'keyboard');
  const invisible = new Set();
  await run('report-a-problem, the keyboard alone', journey, async () => {
    const context = await newContext(browser);
    const page = await openPage(context);
    const button = (text) => (f) => f.tag === 'BUTTON' && f.text === text;
    try {
      await go(page, `${REPORT}/`);
      await checkCitizenPage(page, 'keyboard', 'report/start', { status: 200 });
      await tabTo(page, 'Start now', (f) => f.tag === 'A' && f.text === 'Start now', invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${REPORT}/where`);
      await checkCitizenPage(page, 'keyboard', 'report/where', { status: 200 });

      // Tab into the radios (the first has focus), move to the second with the arrow key,
      // which chooses it, and back with the other.
      const first = await tabTo(page, 'the type of problem', (f) => f.type === 'radio', invisible);
      const second = await press(page, 'ArrowDown', invisible);
      assert.ok(second.checked && second.value !== first.value, 'ArrowDown chooses the next type of problem');
      const back = await press(page, 'ArrowUp', invisible);
      assert.ok(back.checked && back.value === first.value, 'ArrowUp chooses the first again');
      journey.service_code = back.value;
      await tabTo(page, 'Where is it?', (f) => f.id === 'location', invisible);
      journey.location = 'By the bus stop on Station Road East';
      await typeText(page, journey.location);
      await tabTo(page, 'Continue', button('Continue'), invisible);
      const before = await press(page, 'Shift+Tab', invisible);
      assert.equal(before.id, 'location', 'Shift+Tab goes back to the location');
      assert.equal((await press(page, 'Tab', invisible)).text, 'Continue', 'and Tab forward again');
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${REPORT}/describe`);
      await checkCitizenPage(page, 'keyboard', 'report/describe', { status: 200 });

      await tabTo(page, 'the description', (f) => f.id === 'description', invisible);
      journey.description = `A blocked drain, reported with the keyboard alone (run ${RUN})`;
      await typeText(page, journey.description);
      await tabTo(page, 'Continue', button('Continue'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${REPORT}/details`);
      await checkCitizenPage(page, 'keyboard', 'report/details', { status: 200 });

      await tabTo(page, 'Full name', (f) => f.id === 'name', invisible);
      journey.name = 'Sam Keys';
      await typeText(page, journey.name);
      await tabTo(page, 'Continue', button('Continue'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${REPORT}/check-answers`);
      await checkCitizenPage(page, 'keyboard', 'report/check-answers', { status: 200 });
      const answers = await page.locator('main').innerText();
      for (const shown of [journey.location, journey.description, journey.name]) {
        assert.ok(answers.includes(shown), `check your answers shows ${JSON.stringify(shown)}`);
      }

      // A button is pressed with Space as well as Enter.
      await tabTo(page, 'Send report', button('Send report'), invisible);
      await pressAndWait(page, 'Space');
      assert.equal(pathOf(page), `${REPORT}/confirmation`);
      journey.reference = (await page.locator('.govuk-panel__body strong').innerText()).trim();
      assert.ok(journey.reference, 'a reference on the confirmation');
      await checkCitizenPage(page, 'keyboard', 'report/confirmation', { status: 200 });

      // Feedback, by keyboard too.
      await tabTo(page, 'give your feedback', (f) => f.tag === 'A' && f.text === 'give your feedback', invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${REPORT}/_feedback`);
      await checkCitizenPage(page, 'keyboard', 'feedback', { status: 200 });
      const rating = await tabTo(page, 'the first rating', (f) => f.type === 'radio' && f.name === 'rating', invisible);
      const chosen = await press(page, 'Space', invisible);
      assert.ok(chosen.checked && chosen.value === rating.value, 'Space chooses a rating');
      await tabTo(page, 'the comment', (f) => f.id === 'comment', invisible);
      journey.feedback_comment = `Quick with a keyboard (run ${RUN})`;
      await typeText(page, journey.feedback_comment);
      await tabTo(page, 'Send feedback', button('Send feedback'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${REPORT}/_feedback?sent=1`);
      await checkCitizenPage(page, 'keyboard', 'feedback-thanks', { status: 200 });
    } finally {
      journey.focus_invisible = [...invisible];
      await context.close();
    }
    if (invisible.size) throw new Error(`focus could not be seen on:\n${[...invisible].join('\n')}`);
  });
}

async function binsWithKeyboard(browser) {
  const journey = newJourney('bin-collections', 'keyboard');
  const invisible = new Set();
  await run('bin-collections, the keyboard alone', journey, async () => {
    const context = await newContext(browser);
    const page = await openPage(context);
    const button = (text) => (f) => f.tag === 'BUTTON' && f.text === text;
    try {
      await go(page, `${BINS}/`);
      await checkCitizenPage(page, 'keyboard', 'bins/start', { status: 200 });

      // The wrong answer: straight to the button with no postcode.
      await tabTo(page, 'Find address', button('Find address'), invisible);
      await pressAndWait(page, 'Enter');
      journey.errors_shown.push(...await expectErrorSummary(page, 'keyboard', ['#postcode'], /Enter a postcode/));
      await checkCitizenPage(page, 'keyboard', 'bins/postcode-error', { status: 422 });
      // From the focused summary, Tab reaches its link; Enter on it puts focus on the field.
      const link = await press(page, 'Tab', invisible);
      assert.equal(link.href, '#postcode', 'Tab from the error summary reaches its link');
      await press(page, 'Enter', invisible);
      await page.waitForFunction(() => document.activeElement?.id === 'postcode', null, { timeout: 3000 });
      await typeText(page, POSTCODE);
      await tabTo(page, 'Find address', button('Find address'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(new URL(page.url()).pathname, `${BINS}/address`);
      await checkCitizenPage(page, 'keyboard', 'bins/address', { status: 200 });

      await tabTo(page, 'the first address', (f) => f.type === 'radio' && f.name === 'uprn', invisible);
      const chosen = await press(page, 'Space', invisible);
      assert.ok(chosen.checked, 'Space chooses the address');
      journey.chosen = chosen.label;
      await tabTo(page, 'Continue', button('Continue'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(new URL(page.url()).pathname, `${BINS}/collections`);
      await collectionsShown(page, journey);
      assert.equal(journey.address, journey.chosen, 'the bin days are for the address chosen');
      await checkCitizenPage(page, 'keyboard', 'bins/collections', { status: 200 });
    } finally {
      journey.focus_invisible = [...invisible];
      await context.close();
    }
    if (invisible.size) throw new Error(`focus could not be seen on:\n${[...invisible].join('\n')}`);
  });
}

// ---------------------------------------------------------------------------------------------
// The platform's refusals, before the plugin runs.

async function refusals(browser) {
  await step('the platform refuses a form after the session ended, and one without its token', async () => {
    const context = await newContext(browser);
    const page = await openPage(context);
    try {
      await go(page, `${REPORT}/where`);
      const cookie = (await context.cookies(BASE)).find((c) => c.name === SESSION_COOKIE);
      assert.ok(cookie, `the session cookie ${SESSION_COOKIE}: ${JSON.stringify((await context.cookies(BASE)).map((c) => c.name))}`);
      assert.ok(cookie.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/' && cookie.expires === -1,
        `HttpOnly, SameSite=Lax, Path=/, gone when the browser closes: ${JSON.stringify({ ...cookie, value: '…' })}`);
      summary.refusals.session_cookie = cookie.name;

      // The server no longer knows the session the browser names.
      await context.addCookies([{ ...cookie, value: randomBytes(32).toString('base64url') }]);
      await page.locator('input[name="service"]').first().check();
      await page.getByLabel('Where is it?').fill('Church Lane');
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      summary.refusals.ended_status = page.lastStatus;
      assert.equal((await page.locator('h1').innerText()).trim(), 'Your session has ended');
      await checkCitizenPage(page, 'js', 'session-ended', { status: 403 });
      await follow(page, page.getByRole('link', { name: 'Start again' }));
      assert.equal(pathOf(page), `${REPORT}/`);
      assert.ok(!(await context.cookies(BASE)).some((c) => c.name === SESSION_COOKIE), 'the stale cookie is removed');
      await checkCitizenPage(page, 'js', 'report/start-again', { status: 200 });

      // A form that does not carry the session's token.
      await go(page, `${REPORT}/where`);
      await page.locator('input[name="csrf"]').evaluate((el) => el.remove());
      await page.locator('input[name="service"]').first().check();
      await page.getByLabel('Where is it?').fill('Church Lane');
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      summary.refusals.forged_status = page.lastStatus;
      assert.equal((await page.locator('h1').innerText()).trim(), 'Sorry, there is a problem with this form');
      await checkCitizenPage(page, 'js', 'form-refused', { status: 403 });
    } finally {
      await context.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const browser = await launch();
  summary.chromium = browser.version();
  log(`chromium ${summary.chromium}, services at ${BASE}${REPORT} and ${BASE}${BINS}`);
  try {
    await reportWithMouse(browser, 'js');
    await binsWithMouse(browser, 'js');
    await reportWithMouse(browser, 'nojs');
    await binsWithMouse(browser, 'nojs');
    await reportWithKeyboard(browser);
    await binsWithKeyboard(browser);
    await refusals(browser);
  } finally {
    await browser.close();
  }
  summary.seconds = Number(((Date.now() - started) / 1000).toFixed(1));
  const clean = summary.pages.filter((p) => p.axe_violations === 0).length;
  log(`\n${summary.pages.length} page states checked, ${clean} with no axe violation (WCAG 2.2 AA), in ${summary.seconds} s`);
  log(`journeys completed: ${summary.journeys.filter((j) => j.completed).map((j) => `${j.service} (${j.mode})`).join(', ')}`);
  if (summary.failures.length) log(`\n${summary.failures.length} failure(s)`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exitCode = summary.failures.length ? 1 : 0;
}

main().catch((error) => {
  summary.failures.push(`citizen-journeys.mjs stopped: ${error?.stack || error}`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  log(error?.stack || String(error));
  process.exit(1);
});
