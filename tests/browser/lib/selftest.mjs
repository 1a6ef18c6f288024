#!/usr/bin/env node
// Self-test of the browser kit: Chromium starts, the vendored GOV.UK Frontend loads (CSS
// compiled for a service not on GOV.UK, and JS) from a throwaway server with nothing
// missing, text is in Arial with no web font, checkPage passes an accessible page (generic
// header, no crown) and fails one with an unlabelled input, and a sign-in through
// oidc-provider.mjs works in a real browser with JavaScript off.
// Run: node tests/browser/lib/selftest.mjs

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { AccessibilityError, checkPage } from './axe.mjs';
import { javaScriptDisabledContext, launch, newContext, screenshot, trackFailedRequests } from './browser.mjs';
import { startOidcProvider } from './oidc.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GOVUK = path.resolve(HERE, '..', '..', '..', 'core', 'console', 'assets', 'govuk-frontend');
const NONCE = randomBytes(16).toString('base64');

const TYPES = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

function layout(title, content) {
  return `<!DOCTYPE html>
<html lang="en" class="govuk-template">
<head>
<meta charset="utf-8">
<title>${title} - Alliance console</title>
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/govuk-frontend.min.css">
</head>
<body class="govuk-template__body">
<script nonce="${NONCE}">document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');</script>
<a href="#main-content" class="govuk-skip-link" data-module="govuk-skip-link">Skip to main content</a>
<header class="govuk-template__header">
  <div class="govuk-generic-header">
    <div class="govuk-generic-header__container govuk-width-container">
      <div class="govuk-generic-header__logo">
        <a href="/" class="govuk-generic-header__homepage-link">North Downs Alliance</a>
      </div>
    </div>
  </div>
  <section aria-label="Service information" class="govuk-service-navigation" data-module="govuk-service-navigation">
    <div class="govuk-width-container">
      <div class="govuk-service-navigation__container">
        <span class="govuk-service-navigation__service-name">
          <a href="/" class="govuk-service-navigation__link">Alliance console</a>
        </span>
      </div>
    </div>
  </section>
</header>
<div class="govuk-width-container">
<main class="govuk-main-wrapper" id="main-content">
${content}
</main>
</div>
<footer class="govuk-template__footer">
  <div class="govuk-footer">
    <div class="govuk-width-container">
      <div class="govuk-footer__meta">
        <div class="govuk-footer__meta-item govuk-footer__meta-item--grow">
          <h2 class="govuk-visually-hidden">Support links</h2>
          <ul class="govuk-footer__inline-list">
            <li class="govuk-footer__inline-list-item"><a class="govuk-footer__link" href="/accessibility">Accessibility statement</a></li>
          </ul>
        </div>
      </div>
    </div>
  </div>
</footer>
<script type="module" nonce="${NONCE}">
import { initAll } from '/govuk-frontend.min.js';
initAll();
</script>
</body>
</html>
`;
}

const GOOD = layout('Add a council', `
<h1 class="govuk-heading-l">Add a council</h1>
<form method="post" action="/good" novalidate>
  <div class="govuk-form-group">
    <label class="govuk-label govuk-label--s" for="council-id">Council ID</label>
    <div id="council-id-hint" class="govuk-hint">Lower case letters, numbers and hyphens, for example east-ridge</div>
    <input class="govuk-input govuk-input--width-20" id="council-id" name="council-id" type="text" aria-describedby="council-id-hint" spellcheck="false">
  </div>
  <button type="submit" class="govuk-button" data-module="govuk-button">Add council</button>
</form>`);

// The same form with the label taken away.
const BAD = layout('Add a council', `
<h1 class="govuk-heading-l">Add a council</h1>
<form method="post" action="/bad" novalidate>
  <div class="govuk-form-group">
    <input class="govuk-input govuk-input--width-20" id="council-id" name="council-id" type="text">
  </div>
  <button type="submit" class="govuk-button" data-module="govuk-button">Add council</button>
</form>`);

const CSP = [
  "default-src 'self'",
  `script-src 'self' 'nonce-${NONCE}'`,
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function startSite() {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const html = { '/good': GOOD, '/bad': BAD }[url.pathname];
    if (html) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP });
      res.end(html);
      return;
    }
    if (url.pathname === '/callback') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html lang="en"><head><title>Callback</title></head><body><main><h1>Callback</h1></main></body></html>');
      return;
    }
    // Anything the stylesheet asks for is under /assets/ (nothing at present).
    const rel = url.pathname === '/govuk-frontend.min.css' || url.pathname === '/govuk-frontend.min.js'
      ? url.pathname.slice(1)
      : url.pathname.startsWith('/assets/') ? url.pathname.slice(1) : null;
    const file = rel && path.resolve(GOVUK, rel);
    if (!file || !file.startsWith(`${GOVUK}${path.sep}`) || file.includes('..')) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}` }));
  });
}

async function main() {
  const { server, origin } = await startSite();
  const browser = await launch();
  let op;
  try {
    console.log(`chromium ${browser.version()}`);

    // 1. Accessible page, JavaScript on: assets load, Arial applies, GOV.UK JS initialises.
    {
      const context = await newContext(browser);
      const page = await context.newPage();
      const tracked = trackFailedRequests(page);
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      await page.goto(`${origin}/good`);
      await page.evaluate(() => document.fonts.ready);
      const state = await page.evaluate(() => ({
        supported: document.body.classList.contains('govuk-frontend-supported'),
        fonts: ['h1', '.govuk-generic-header__homepage-link', '.govuk-service-navigation__link', '.govuk-label', '.govuk-button', '.govuk-footer']
          .map((s) => getComputedStyle(document.querySelector(s)).fontFamily),
        webFonts: document.fonts.size,
        headerText: document.querySelector('.govuk-template__header .govuk-generic-header__homepage-link').textContent.trim(),
        crown: document.querySelectorAll('svg, img, .govuk-header, .govuk-footer__crown, .govuk-footer__copyright-logo').length,
        buttonInit: document.querySelector('.govuk-button').hasAttribute('data-govuk-button-init'),
      }));
      assert.deepEqual(tracked.failures, [], 'every asset loads');
      assert.deepEqual(errors, [], 'no script or CSP errors');
      assert.ok(state.supported, 'govuk-frontend-supported class set');
      for (const font of state.fonts) assert.equal(font, 'arial, sans-serif');
      assert.equal(state.webFonts, 0, 'the stylesheet declares no web font');
      assert.equal(state.headerText, 'North Downs Alliance');
      assert.equal(state.crown, 0, 'no crown, logo or GOV.UK header');
      assert.ok(state.buttonInit, 'GOV.UK Frontend JS initialised the button');
      await checkPage(page, 'good page (JavaScript on)');
      console.log(`ok accessible page passes with JavaScript on: ${await screenshot(page, 'selftest-good-js')}`);
      await context.close();
    }

    // 2. The same page with JavaScript off.
    {
      const context = await javaScriptDisabledContext(browser);
      const page = await context.newPage();
      await page.goto(`${origin}/good`);
      assert.equal(await page.evaluate(() => document.body.classList.contains('js-enabled')), false);
      await checkPage(page, 'good page (JavaScript off)');
      console.log(`ok accessible page passes with JavaScript off: ${await screenshot(page, 'selftest-good-nojs')}`);
      await context.close();
    }

    // 3. An input without a label must fail, with JavaScript on and off.
    for (const [how, makeContext] of [['on', newContext], ['off', javaScriptDisabledContext]]) {
      const context = await makeContext(browser);
      const page = await context.newPage();
      await page.goto(`${origin}/bad`);
      let error;
      try {
        await checkPage(page, `broken page (JavaScript ${how})`);
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof AccessibilityError, `checkPage throws on the broken page: ${error}`);
      assert.ok(error.violations.some((v) => v.id === 'label'), 'the missing label is reported');
      console.log(`ok broken page fails as it should:\n${error.message}`);
      await context.close();
    }

    // 4. Sign in through the OIDC provider in a browser with JavaScript off.
    {
      const clientId = 'console-selftest';
      const clientSecret = randomBytes(16).toString('hex');
      const redirectUri = `${origin}/callback`;
      op = await startOidcProvider({ clientId, clientSecret, redirectUri });
      const verifier = randomBytes(32).toString('base64url');
      const auth = new URL(`${op.issuer}/auth`);
      auth.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid',
        state: 'st-1',
        nonce: 'n-1',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      }).toString();

      const context = await javaScriptDisabledContext(browser);
      const page = await context.newPage();
      await page.goto(auth.href);
      assert.equal(await page.title(), 'Sign in - Test identity provider');
      await checkPage(page, 'provider login page');
      await screenshot(page, 'selftest-oidc-login');

      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill('wrong');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      await checkPage(page, 'provider login page with an error');
      await screenshot(page, 'selftest-oidc-login-error');

      await page.getByLabel('Password').fill('alice-password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL((u) => u.href.startsWith(redirectUri));
      const back = new URL(page.url());
      assert.equal(back.searchParams.get('state'), 'st-1');
      const code = back.searchParams.get('code');
      assert.ok(code, 'authorization code returned');

      const res = await fetch(`${op.issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
      });
      const tokens = await res.json();
      assert.equal(res.status, 200, JSON.stringify(tokens));
      const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url'));
      assert.equal(claims.sub, 'alice');
      assert.equal(claims.nonce, 'n-1');
      assert.deepEqual(claims.amr, ['pwd', 'otp']);
      assert.equal(claims.acr, 'urn:guildhall:mfa');
      console.log('ok sign-in through the provider in Chromium with JavaScript off (login page passes axe)');
      await context.close();
    }
    console.log('browser self-test passed');
  } finally {
    await browser.close();
    await op?.stop();
    server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
