#!/usr/bin/env node
// Self-test of oidc-provider.mjs without a browser: discovery, JWKS, and the authorization
// code flow with PKCE for every account, following the login form with fetch.
// Run: node tests/browser/lib/oidc-selftest.mjs

import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import assert from 'node:assert/strict';

import { startOidcProvider } from './oidc.mjs';

const CLIENT_ID = 'console-selftest';
const CLIENT_SECRET = 'selftest-secret-0123456789';
const REDIRECT_URI = 'http://127.0.0.1:9/console/sign-in/callback';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// The smallest cookie jar that works here: one host, names only.
class Jar {
  #cookies = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))
        || attrs.some((a) => /^\s*expires=.*1970/i.test(a));
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function get(url, jar) {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
  jar.store(res);
  return res;
}

async function postForm(url, jar, form, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  jar.store(res);
  return res;
}

function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    signingInput: Buffer.from(`${h}.${p}`),
    signature: Buffer.from(s, 'base64url'),
  };
}

// Starts an authorization request and follows redirects on the provider until it either
// shows a page or sends the browser back to the client.
async function authorize(discovery, jar, { pkce = true, extra = {} } = {}) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(12));
  const nonce = b64url(randomBytes(12));
  const url = new URL(discovery.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'openid',
    state,
    nonce,
    ...(pkce ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    ...extra,
  }).toString();
  const res = await follow(url.href, jar);
  return { res, verifier, state, nonce };
}

async function follow(start, jar, first) {
  let res = first || await get(start, jar);
  for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i += 1) {
    const next = new URL(res.headers.get('location'), res.url || start).href;
    if (next.startsWith(REDIRECT_URI)) return { redirectedTo: new URL(next) };
    res = await get(next, jar);
  }
  return { page: res, html: await res.text() };
}

function formAction(html, base) {
  const m = /<form method="post" action="([^"]+)"/.exec(html);
  assert.ok(m, 'login page has a POST form');
  return new URL(m[1].replaceAll('&amp;', '&'), base).href;
}

async function signIn(discovery, account, password, jar = new Jar(), extra = {}) {
  const started = await authorize(discovery, jar, { extra });
  assert.ok(started.res.page, 'authorization request shows the login page');
  const { html } = started.res;
  assert.equal(started.res.page.status, 200);
  assert.match(html, /<html lang="en">/);
  assert.match(html, /<label for="login">/);
  assert.match(html, /<input type="text" id="login" name="login"/);
  assert.match(html, /<label for="password">/);
  assert.match(html, /<input type="password" id="password" name="password"/);
  const action = formAction(html, discovery.issuer);
  const submitted = await postForm(action, jar, { login: account, password });
  const result = await follow(action, jar, submitted);
  return { ...started, result, jar };
}

async function exchange(discovery, code, verifier, method, secret = CLIENT_SECRET) {
  const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier };
  const headers = {};
  if (method === 'client_secret_basic') {
    const enc = (s) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(CLIENT_ID)}:${enc(secret)}`).toString('base64')}`;
  } else {
    Object.assign(form, { client_id: CLIENT_ID, client_secret: secret });
  }
  const res = await postForm(discovery.token_endpoint, new Jar(), form, headers);
  return { status: res.status, body: await res.json() };
}

const EXPECTED = {
  alice: { amr: ['pwd', 'otp'], acr: 'urn:guildhall:mfa' },
  bob: { amr: ['pwd'], acr: undefined },
  carol: { amr: ['pwd', 'hwk'], acr: undefined },
};

async function main() {
  const op = await startOidcProvider({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI });
  try {
    const discovery = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(discovery.issuer, op.issuer);
    assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);
    assert.ok(discovery.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
    assert.ok(discovery.token_endpoint_auth_methods_supported.includes('client_secret_post'));
    assert.deepEqual(discovery.id_token_signing_alg_values_supported, ['RS256']);
    console.log(`ok discovery (${op.issuer})`);

    const jwks = await (await fetch(discovery.jwks_uri)).json();
    assert.ok(jwks.keys.length >= 1 && jwks.keys.every((k) => k.kty === 'RSA' && !k.d));
    console.log(`ok jwks (${jwks.keys.length} public RSA key)`);

    let i = 0;
    for (const [account, want] of Object.entries(EXPECTED)) {
      const method = i % 2 === 0 ? 'client_secret_basic' : 'client_secret_post';
      i += 1;
      const { result, verifier, state, nonce } = await signIn(discovery, account, `${account}-password`);
      assert.ok(result.redirectedTo, `${account}: redirected back to the client`);
      const q = result.redirectedTo.searchParams;
      assert.equal(q.get('error'), null, `${account}: ${q.get('error')} ${q.get('error_description')}`);
      assert.equal(q.get('state'), state);
      assert.equal(q.get('iss'), op.issuer);
      const token = await exchange(discovery, q.get('code'), verifier, method);
      assert.equal(token.status, 200, JSON.stringify(token.body));
      const idt = decodeJwt(token.body.id_token);
      assert.equal(idt.header.alg, 'RS256');
      const jwk = jwks.keys.find((k) => k.kid === idt.header.kid);
      assert.ok(jwk, 'ID token kid is in the JWKS');
      assert.ok(verify('sha256', idt.signingInput, createPublicKey({ key: jwk, format: 'jwk' }), idt.signature), 'ID token signature verifies');
      const c = idt.payload;
      assert.equal(c.iss, op.issuer);
      assert.equal(c.aud, CLIENT_ID);
      assert.equal(c.sub, account);
      assert.equal(c.nonce, nonce);
      assert.deepEqual(c.amr, want.amr);
      assert.equal(c.acr, want.acr);
      assert.ok(c.exp > Date.now() / 1000 && typeof c.auth_time === 'number');
      const userinfo = await (await fetch(discovery.userinfo_endpoint, {
        headers: { authorization: `Bearer ${token.body.access_token}` },
      })).json();
      assert.equal(userinfo.sub, account);
      // A code is good for one exchange only.
      const again = await exchange(discovery, q.get('code'), verifier, method);
      assert.equal(again.body.error, 'invalid_grant');
      console.log(`ok ${account} signs in (${method}): sub=${c.sub} amr=${JSON.stringify(c.amr)} acr=${c.acr ?? '-'}`);
    }

    // acr_values is voluntary: every account signs in, and the ID token says what happened.
    for (const [account, want] of Object.entries(EXPECTED)) {
      const { result, verifier } = await signIn(discovery, account, `${account}-password`, new Jar(), { acr_values: 'urn:guildhall:mfa' });
      const token = await exchange(discovery, result.redirectedTo.searchParams.get('code'), verifier, 'client_secret_basic');
      const c = decodeJwt(token.body.id_token).payload;
      assert.equal(c.acr, want.acr);
      assert.deepEqual(c.amr, want.amr);
    }
    console.log('ok acr_values=urn:guildhall:mfa: only alice gets that acr; amr unchanged');

    // A second authorization in the same browser session goes straight back to the client.
    {
      const first = await signIn(discovery, 'bob', 'bob-password');
      const second = await authorize(discovery, first.jar);
      assert.ok(second.res.redirectedTo?.searchParams.get('code'), 'existing session skips the login page');
      const forced = await authorize(discovery, first.jar, { extra: { prompt: 'login' } });
      assert.ok(forced.res.page, 'prompt=login shows the login page again');
      console.log('ok existing session reused; prompt=login asks again');
    }

    // Refusals.
    {
      const { res } = await authorize(discovery, new Jar(), { pkce: false });
      const q = res.redirectedTo.searchParams;
      assert.equal(q.get('error'), 'invalid_request');
      console.log(`ok no PKCE refused: ${q.get('error')} (${q.get('error_description')})`);
    }
    {
      const { result, verifier } = await signIn(discovery, 'alice', 'alice-password');
      const code = result.redirectedTo.searchParams.get('code');
      const wrong = await exchange(discovery, code, `${verifier}x`, 'client_secret_basic');
      assert.equal(wrong.body.error, 'invalid_grant');
      console.log('ok wrong code_verifier refused: invalid_grant');
    }
    {
      const { result, verifier } = await signIn(discovery, 'alice', 'alice-password');
      const code = result.redirectedTo.searchParams.get('code');
      const wrong = await exchange(discovery, code, verifier, 'client_secret_post', 'not-the-secret');
      assert.equal(wrong.body.error, 'invalid_client');
      console.log('ok wrong client secret refused: invalid_client');
    }
    {
      const { result } = await signIn(discovery, 'alice', 'wrong');
      assert.ok(result.page, 'wrong password shows the form again');
      assert.match(result.html, /There is a problem/);
      assert.match(result.html, /<title>Error: Sign in/);
      console.log('ok wrong password shows an error on the form');
    }
    {
      const jar = new Jar();
      const started = await authorize(discovery, jar);
      const action = formAction(started.res.html, discovery.issuer);
      const out = await follow(action, jar, await postForm(action, jar, { cancel: 'yes' }));
      assert.equal(out.redirectedTo.searchParams.get('error'), 'access_denied');
      console.log('ok cancel returns error=access_denied');
    }
    console.log('oidc self-test passed');
  } finally {
    await op.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
