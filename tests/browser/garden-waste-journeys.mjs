#!/usr/bin/env node
// A resident subscribing to garden waste collection in Chromium, paying on GOV.UK Pay's
// hosted page (here the loopback stand-in of tests/api/govuk_standins.rs). Started by the
// Rust driver (tests/api/garden_waste_browser.rs) against a running server:
//
//   node tests/browser/garden-waste-journeys.mjs <base-url>
//
//   <base-url> (or BASE_URL)  the server's origin, e.g. http://127.0.0.1:8080
//   TENANT, COUNCIL           where garden-waste is installed
//   COUNCIL_NAME              the council's name, which ends every page's <title>
//   PRICE_PENCE               one bin's price for a year, as configured
//   ELIGIBLE_POSTCODE         a postcode where the council collects garden waste
//   INELIGIBLE_POSTCODE       a real postcode where it does not
//   DECLINED_CARD             the card number Pay declines (any other is accepted)
//   SCREENSHOT_DIR            where full-page screenshots go (1280 px and 320 px wide)
//
// The server must run with `[sessions] secure_cookies = false` (plain HTTP on loopback).
//
// The journey (start → address → bins → your details → check your answers → GOV.UK Pay →
// back to the service), three times:
//   js        a mouse, JavaScript on: no postcode given (the error summary, focused, its link
//             leading to the field), then a postcode outside the council's area (not
//             eligible), no number of bins chosen, then paid: the confirmation
//   nojs      JavaScript off: neither address line nor a real postcode, an email address
//             without an @, then a declined card: "Your payment was not taken", and its link
//             back to check your answers
//   keyboard  Tab, Shift+Tab, arrows, Space, Enter and typing alone (JavaScript on), on Pay's
//             page too: no postcode given (from the summary, Tab to its link, Enter to the
//             field), then paid: the confirmation
//
// On every page of the service reached: axe-core at WCAG 2.2 AA, one <h1>, the <title>, GOV.UK
// Frontend started (JavaScript on) or not (off), no script error or failed sub-resource, no
// horizontal scrolling at 320 px with <main> and its <h1> on screen, and full-page
// screenshots. Pay's page is not checked: it stands in for GOV.UK Pay's own, which is not
// the council's; it is only used (and screenshotted).
//
// Progress goes to stderr. stdout is one JSON document:
//   { chromium, base, seconds,
//     pages: [{ id, mode, path, status, title, axe_violations, axe_rules, axe_incomplete, reflow,
//               problems, screenshot }],
//     journeys: [{ mode, completed, seconds, outcome, reference, bins, amount_pence, address,
//                  postcode, name, email, pay_page, errors_shown, focus_invisible }],
//     failures: [text] }
// and the exit status is 1 when anything failed.

import assert from 'node:assert/strict';

import { javaScriptDisabledContext, launch, newContext, screenshot, watchPage } from './lib/browser.mjs';
import { press, pressAndWait, tabTo, typeText } from './lib/keyboard.mjs';
import { clickErrorLink, expectErrorSummary, recordAxe } from './lib/govuk.mjs';
import { checkReflow } from './lib/reflow.mjs';

function required(name, value = process.env[name]) {
  if (!value) {
    console.error(`garden-waste-journeys.mjs: ${name} must be set`);
    process.exit(2);
  }
  return value;
}

const BASE = required('the base URL (first argument, or BASE_URL)', process.argv[2] || process.env.BASE_URL).replace(/\/$/, '');
const TENANT = process.env.TENANT || 'north-downs';
const COUNCIL = process.env.COUNCIL || 'tandridge';
const COUNCIL_NAME = required('COUNCIL_NAME');
const PRICE_PENCE = Number(required('PRICE_PENCE'));
const ELIGIBLE_POSTCODE = required('ELIGIBLE_POSTCODE');
const INELIGIBLE_POSTCODE = required('INELIGIBLE_POSTCODE');
const DECLINED_CARD = required('DECLINED_CARD');
const ACCEPTED_CARD = '4444333322221111';

const SERVICE = `/s/${TENANT}/${COUNCIL}/garden-waste`;

const started = Date.now();
const summary = { chromium: '', base: BASE, seconds: 0, pages: [], journeys: [], failures: [] };

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

// £90.00, as the service shows a price in pence.
const pounds = (pence) => `£${Math.floor(pence / 100)}.${String(pence % 100).padStart(2, '0')}`;

async function openPage(context) {
  const page = watchPage(await context.newPage());
  page.setDefaultTimeout(10000);
  // The documents the tab loaded with their Referrer-Policy, and its latest form post: what
  // the service had to build Pay's return address from, for the report when it could not.
  page.documents = [];
  page.on('response', (res) => {
    const request = res.request();
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
      const headers = res.headers();
      page.documents.push({
        url: res.url(),
        status: res.status(),
        referrerPolicy: headers['referrer-policy'] ?? null,
        formAction: (headers['content-security-policy'] ?? '').match(/form-action[^;\n]*/g) ?? [],
      });
      page.documents.splice(0, page.documents.length - 4);
    }
  });
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.isNavigationRequest() && request.frame() === page.mainFrame()) page.lastPost = request;
  });
  return page;
}

// What the latest form post carried that names the service's origin, and the policy of the
// page it was sent from.
async function lastPostOrigin(page) {
  const post = page.lastPost;
  if (!post) return 'no form was posted';
  const headers = await post.allHeaders().catch(() => ({}));
  const from = page.documents.at(-2);
  return `POST ${new URL(post.url()).pathname} sent Origin ${JSON.stringify(headers.origin ?? null)}, Referer ${JSON.stringify(headers.referer ?? null)}, Host ${JSON.stringify(headers.host ?? null)}, from a page with Referrer-Policy ${JSON.stringify(from?.referrerPolicy ?? null)}`;
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
// What every page of the service is checked for.

// Runs in the page: its shape and its error summary.
function pageShape() {
  const summaryBox = document.querySelector('.govuk-error-summary');
  return {
    h1: [...document.querySelectorAll('h1')].map((h) => h.innerText.trim().replace(/\s+/g, ' ')),
    title: document.title,
    lang: document.documentElement.lang,
    mains: document.querySelectorAll('main#main-content').length,
    skipLink: Boolean(document.querySelector('a.govuk-skip-link[href="#main-content"]')),
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
async function checkServicePage(page, mode, id, { status } = {}) {
  await page.waitForLoadState('load');
  const record = {
    id, mode, path: pathOf(page), status: page.lastStatus ?? 0, title: '',
    axe_violations: 0, axe_rules: [], axe_incomplete: [], reflow: null, problems: [], screenshot: '',
  };
  const problems = record.problems;
  if (!record.path.startsWith(`${SERVICE}/`)) problems.push(`not a page of the service: ${page.url()}`);
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

// What check your answers shows: each row's key and value.
async function answersShown(page) {
  return page.locator('main .govuk-summary-list__row').evaluateAll((rows) => Object.fromEntries(rows.map((r) => [
    r.querySelector('.govuk-summary-list__key').innerText.trim(),
    r.querySelector('.govuk-summary-list__value').innerText.trim().replace(/\s*\n\s*/g, ', '),
  ])));
}

function expectAnswers(shown, journey) {
  const expected = {
    Address: `${journey.address}, ${journey.postcode}`,
    'Number of bins': String(journey.bins),
    'Full name': journey.name,
    'Email address': journey.email,
    Cost: `${pounds(journey.amount_pence)} a year`,
  };
  assert.deepEqual(shown, expected, 'check your answers shows what was typed, and the cost');
}

// Sends check your answers' form with `act` (a click or a key) and waits for where it leads:
// GOV.UK Pay's page, through the service's redirect. When the browser refuses to follow (a
// Content-Security-Policy's form-action applies to the redirect too), says why.
async function sendToPay(page, act) {
  const main = (f) => f === page.mainFrame();
  const refused = [];
  let stop;
  const stopped = new Promise((resolve) => { stop = resolve; });
  const onConsole = (m) => { if (/Content Security Policy|Refused/i.test(m.text())) refused.push(m.text().trim()); };
  const onFailed = (r) => {
    if (r.isNavigationRequest() && main(r.frame())) {
      refused.push(`${r.method()} ${r.url()} failed: ${r.failure()?.errorText}`);
      stop();
    }
  };
  page.on('console', onConsole);
  page.on('requestfailed', onFailed);
  try {
    const navigated = page.waitForEvent('framenavigated', { predicate: main }).then(() => true, () => false);
    const form = page.documents.at(-1);
    await act();
    if (!await Promise.race([navigated, stopped.then(() => false)])) {
      // Console messages arrive after the failure.
      await new Promise((resolve) => { setTimeout(resolve, 500); });
      // Chromium names the form's own address when it refuses the redirect that follows.
      throw new Error(`the form did not lead to Pay's page: ${refused.join('; ') || 'no navigation within 10 s'}\n`
        + `(${await lastPostOrigin(page)}; the form's page has ${JSON.stringify(form?.formAction)})`);
    }
    await page.waitForLoadState('load');
  } finally {
    page.off('console', onConsole);
    page.off('requestfailed', onFailed);
  }
}

// GOV.UK Pay's page (the stand-in): what it asks for, and that it is not the service's.
async function onPayPage(page, journey) {
  const url = new URL(page.url());
  if (url.origin === BASE) {
    const shown = (await page.locator('main').innerText().catch(() => '')).trim().replace(/\s*\n\s*/g, ' | ');
    throw new Error(`the service answered ${page.lastStatus} at ${pathOf(page)} instead of sending the resident to Pay: ${shown}\n(${await lastPostOrigin(page)})`);
  }
  assert.match(url.pathname, /^\/secure\//, 'the hosted payment page');
  assert.equal((await page.locator('h1').innerText()).trim(), 'Enter card details');
  const text = await page.locator('main').innerText();
  assert.ok(text.includes(pounds(journey.amount_pence)), `Pay asks for ${pounds(journey.amount_pence)}:\n${text}`);
  journey.pay_page = { origin: url.origin, amount_shown: pounds(journey.amount_pence) };
  await screenshot(page, `${journey.mode}-pay-standin`);
  // What Pay's page loads is Pay's affair, not the service's.
  const ours = page.problems.filter((p) => !p.includes(url.origin));
  page.problems.length = 0;
  page.problems.push(...ours);
}

// Back from Pay: the reference the service gave the payment, from the return address.
function referenceOf(page) {
  const url = new URL(page.url());
  assert.equal(url.origin, BASE, 'Pay sends the resident back to the service');
  assert.equal(url.pathname, `${SERVICE}/payment-return`);
  const reference = url.searchParams.get('ref') || '';
  assert.match(reference, /^GW-\d{6,}$/, 'a reference in the return address');
  return reference;
}

function newJourney(mode, fields) {
  const journey = {
    mode, completed: false, seconds: 0, outcome: '', reference: '', pay_page: null, errors_shown: [], focus_invisible: [], ...fields,
  };
  journey.amount_pence = journey.bins * PRICE_PENCE;
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
// With a mouse (and `fill`), JavaScript on: paid.

async function withMouse(browser) {
  const mode = 'js';
  const journey = newJourney(mode, {
    address: '12 High Street', postcode: ELIGIBLE_POSTCODE, bins: 2, name: 'Jo Bloggs', email: 'jo.bloggs@example.com',
  });
  await run('garden-waste, JavaScript on', journey, async () => {
    const context = await newContext(browser);
    const page = await openPage(context);
    try {
      await go(page, `${SERVICE}/`);
      await checkServicePage(page, mode, 'start', { status: 200 });
      assert.equal((await page.locator('h1').innerText()).trim(), 'Subscribe to garden waste collection');
      assert.ok((await page.locator('main').innerText()).includes(pounds(PRICE_PENCE)), 'the start page gives the price');
      await follow(page, page.getByRole('button', { name: 'Start now' }));
      assert.equal(pathOf(page), `${SERVICE}/address`);
      await checkServicePage(page, mode, 'address', { status: 200 });

      // The wrong answer: the first line without the postcode.
      await page.getByLabel('First line of address').fill(journey.address);
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#postcode'], /Enter your postcode/));
      assert.equal(await page.getByLabel('First line of address').inputValue(), journey.address, 'the answer given is kept');
      await checkServicePage(page, mode, 'address-error', { status: 422 });
      await clickErrorLink(page, '#postcode');

      // A postcode where the council does not collect.
      await page.getByLabel('Postcode').fill(INELIGIBLE_POSTCODE);
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${SERVICE}/not-eligible`);
      assert.equal((await page.locator('h1').innerText()).trim(), 'We do not collect garden waste at this address');
      await checkServicePage(page, mode, 'not-eligible', { status: 200 });
      await follow(page, page.getByRole('link', { name: 'Check another address' }));
      assert.equal(pathOf(page), `${SERVICE}/address`);

      // Typed as people type it.
      await page.getByLabel('First line of address').fill(journey.address);
      await page.getByLabel('Postcode').fill(ELIGIBLE_POSTCODE.toLowerCase().replace(/\s+/g, ''));
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${SERVICE}/bins`);
      await checkServicePage(page, mode, 'bins', { status: 200 });

      // A second wrong answer: no number of bins chosen.
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#bins'], /Select how many bins you want/));
      await checkServicePage(page, mode, 'bins-error', { status: 422 });
      await clickErrorLink(page, '#bins');
      await page.getByLabel('2 bins', { exact: true }).check();
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${SERVICE}/details`);
      await checkServicePage(page, mode, 'details', { status: 200 });

      await page.getByLabel('Full name').fill(journey.name);
      await page.getByLabel('Email address').fill(journey.email);
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${SERVICE}/check-answers`);
      assert.equal((await page.locator('h1').innerText()).trim(), 'Check your answers before paying');
      expectAnswers(await answersShown(page), journey);
      await checkServicePage(page, mode, 'check-answers', { status: 200 });

      await sendToPay(page, () => page.getByRole('button', { name: 'Continue to payment' }).click());
      await onPayPage(page, journey);
      await page.getByLabel('Card number').fill(ACCEPTED_CARD);
      await follow(page, page.getByRole('button', { name: 'Confirm payment' }));
      journey.reference = referenceOf(page);
      assert.equal((await page.locator('.govuk-panel__title').innerText()).trim(), 'Subscription complete');
      assert.equal((await page.locator('.govuk-panel__body strong').innerText()).trim(), journey.reference, 'the confirmation gives the reference');
      journey.outcome = 'paid';
      await checkServicePage(page, mode, 'confirmation', { status: 200 });
    } finally {
      await context.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// JavaScript off, a mouse: the card declined.

async function withoutJavaScript(browser) {
  const mode = 'nojs';
  const journey = newJourney(mode, {
    address: 'Flat 3, 14 Station Road East', postcode: ELIGIBLE_POSTCODE, bins: 1, name: 'Sam Plain', email: 'sam.plain@example.com',
  });
  await run('garden-waste, JavaScript off', journey, async () => {
    const context = await javaScriptDisabledContext(browser);
    const page = await openPage(context);
    try {
      await go(page, `${SERVICE}/`);
      await checkServicePage(page, mode, 'start', { status: 200 });
      await follow(page, page.getByRole('button', { name: 'Start now' }));
      assert.equal(pathOf(page), `${SERVICE}/address`);
      await checkServicePage(page, mode, 'address', { status: 200 });

      // The wrong answers: no first line, and not a postcode.
      await page.getByLabel('Postcode').fill('NOT A POSTCODE');
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#address_line_1', '#postcode'],
        /Enter the first line of your address[\s\S]*Enter a real postcode, like RH8 0BT/));
      await checkServicePage(page, mode, 'address-error', { status: 422 });

      await page.getByLabel('First line of address').fill(journey.address);
      await page.getByLabel('Postcode').fill(ELIGIBLE_POSTCODE);
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${SERVICE}/bins`);
      await checkServicePage(page, mode, 'bins', { status: 200 });
      await page.getByLabel('1 bin', { exact: true }).check();
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${SERVICE}/details`);
      await checkServicePage(page, mode, 'details', { status: 200 });

      // A second wrong answer: an email address without its @.
      await page.getByLabel('Full name').fill(journey.name);
      await page.getByLabel('Email address').fill(journey.email.replace('@', ' at '));
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#email'], /Enter an email address in the correct format, like name@example.com/));
      await checkServicePage(page, mode, 'details-error', { status: 422 });
      await page.getByLabel('Email address').fill(journey.email);
      await follow(page, page.getByRole('button', { name: 'Continue' }));
      assert.equal(pathOf(page), `${SERVICE}/check-answers`);
      expectAnswers(await answersShown(page), journey);
      await checkServicePage(page, mode, 'check-answers', { status: 200 });

      await sendToPay(page, () => page.getByRole('button', { name: 'Continue to payment' }).click());
      await onPayPage(page, journey);
      await page.getByLabel('Card number').fill(DECLINED_CARD);
      await follow(page, page.getByRole('button', { name: 'Confirm payment' }));
      journey.reference = referenceOf(page);
      assert.equal((await page.locator('h1').innerText()).trim(), 'Your payment was not taken');
      assert.match(await page.locator('main').innerText(), /No money has been taken/);
      journey.outcome = 'declined';
      await checkServicePage(page, mode, 'not-taken', { status: 200 });

      // Its way back: the answers, kept, to pay again.
      await follow(page, page.getByRole('link', { name: 'Check your answers and try again' }));
      assert.equal(pathOf(page), `${SERVICE}/check-answers`);
      expectAnswers(await answersShown(page), journey);
      await checkServicePage(page, mode, 'check-answers-again', { status: 200 });
    } finally {
      await context.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The keyboard alone (JavaScript on): Tab, Shift+Tab, Space, Enter, arrows and typing. No
// clicks and no `fill`, on Pay's page too.

async function withKeyboard(browser) {
  const mode = 'keyboard';
  const journey = newJourney(mode, {
    address: '7 Church Lane', postcode: ELIGIBLE_POSTCODE, bins: 3, name: 'Kim Keys', email: 'kim.keys@example.com',
  });
  const invisible = new Set();
  await run('garden-waste, the keyboard alone', journey, async () => {
    const context = await newContext(browser);
    const page = await openPage(context);
    const button = (text) => (f) => f.tag === 'BUTTON' && f.text === text;
    try {
      await go(page, `${SERVICE}/`);
      await checkServicePage(page, mode, 'start', { status: 200 });
      await tabTo(page, 'Start now', (f) => f.tag === 'A' && f.text === 'Start now', invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${SERVICE}/address`);
      await checkServicePage(page, mode, 'address', { status: 200 });

      // The wrong answer: the first line, then straight to the button.
      await tabTo(page, 'First line of address', (f) => f.id === 'address_line_1', invisible);
      await typeText(page, journey.address);
      await tabTo(page, 'Continue', button('Continue'), invisible);
      const before = await press(page, 'Shift+Tab', invisible);
      assert.equal(before.id, 'postcode', 'Shift+Tab goes back to the postcode');
      assert.equal((await press(page, 'Tab', invisible)).text, 'Continue', 'and Tab forward again');
      await pressAndWait(page, 'Enter');
      journey.errors_shown.push(...await expectErrorSummary(page, mode, ['#postcode'], /Enter your postcode/));
      await checkServicePage(page, mode, 'address-error', { status: 422 });
      // From the focused summary, Tab reaches its link; Enter on it puts focus on the field.
      const link = await press(page, 'Tab', invisible);
      assert.equal(link.href, '#postcode', 'Tab from the error summary reaches its link');
      await press(page, 'Enter', invisible);
      await page.waitForFunction(() => document.activeElement?.id === 'postcode', null, { timeout: 3000 });
      await typeText(page, ELIGIBLE_POSTCODE);
      await tabTo(page, 'Continue', button('Continue'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${SERVICE}/bins`);
      await checkServicePage(page, mode, 'bins', { status: 200 });

      // Tab into the radios (the first has focus), then the arrow keys choose.
      const first = await tabTo(page, 'the number of bins', (f) => f.type === 'radio' && f.name === 'bins', invisible);
      assert.equal(first.label, '1 bin');
      const chosen = await press(page, 'Space', invisible);
      assert.ok(chosen.checked && chosen.value === '1', 'Space chooses 1 bin');
      await press(page, 'ArrowDown', invisible);
      const third = await press(page, 'ArrowDown', invisible);
      assert.ok(third.checked && third.value === '3', `ArrowDown twice chooses 3 bins, not ${JSON.stringify(third)}`);
      await tabTo(page, 'Continue', button('Continue'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${SERVICE}/details`);
      await checkServicePage(page, mode, 'details', { status: 200 });

      await tabTo(page, 'Full name', (f) => f.id === 'name', invisible);
      await typeText(page, journey.name);
      const email = await press(page, 'Tab', invisible);
      assert.equal(email.id, 'email', 'Tab goes from the name to the email address');
      await typeText(page, journey.email);
      await tabTo(page, 'Continue', button('Continue'), invisible);
      await pressAndWait(page, 'Enter');
      assert.equal(pathOf(page), `${SERVICE}/check-answers`);
      expectAnswers(await answersShown(page), journey);
      await checkServicePage(page, mode, 'check-answers', { status: 200 });

      // A button is pressed with Space as well as Enter.
      await tabTo(page, 'Continue to payment', button('Continue to payment'), invisible);
      await sendToPay(page, () => page.keyboard.press('Space'));
      await onPayPage(page, journey);
      // Pay's page is not the service's: how it shows focus is not held against it.
      await tabTo(page, 'Card number', (f) => f.id === 'card-number', undefined);
      await typeText(page, ACCEPTED_CARD);
      await tabTo(page, 'Confirm payment', button('Confirm payment'), undefined);
      await pressAndWait(page, 'Enter');
      journey.reference = referenceOf(page);
      assert.equal((await page.locator('.govuk-panel__title').innerText()).trim(), 'Subscription complete');
      assert.equal((await page.locator('.govuk-panel__body strong').innerText()).trim(), journey.reference, 'the confirmation gives the reference');
      journey.outcome = 'paid';
      await checkServicePage(page, mode, 'confirmation', { status: 200 });
    } finally {
      journey.focus_invisible = [...invisible];
      await context.close();
    }
    if (invisible.size) throw new Error(`focus could not be seen on:\n${[...invisible].join('\n')}`);
  });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const browser = await launch();
  summary.chromium = browser.version();
  log(`chromium ${summary.chromium}, the service at ${BASE}${SERVICE}`);
  try {
    await withMouse(browser);
    await withoutJavaScript(browser);
    await withKeyboard(browser);
  } finally {
    await browser.close();
  }
  summary.seconds = Number(((Date.now() - started) / 1000).toFixed(1));
  const clean = summary.pages.filter((p) => p.axe_violations === 0).length;
  log(`\n${summary.pages.length} page states checked, ${clean} with no axe violation (WCAG 2.2 AA), in ${summary.seconds} s`);
  log(`journeys completed: ${summary.journeys.filter((j) => j.completed).map((j) => `${j.mode} (${j.outcome} ${j.reference})`).join(', ')}`);
  if (summary.failures.length) log(`\n${summary.failures.length} failure(s)`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exitCode = summary.failures.length ? 1 : 0;
}

main().catch((error) => {
  summary.failures.push(`garden-waste-journeys.mjs stopped: ${error?.stack || error}`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  log(error?.stack || String(error));
  process.exit(1);
});
