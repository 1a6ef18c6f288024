#!/usr/bin/env node
// A real OpenID Connect provider on loopback for the console's browser tests.
//
// Environment:
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET  the one registered client (required)
//   OIDC_REDIRECT_URI                   its redirect URI; several may be given, separated by
//                                       spaces or commas (required)
//   OIDC_POST_LOGOUT_REDIRECT_URI       optional, same format, for RP-initiated logout
//   OIDC_PORT                           port on 127.0.0.1; 0 or unset picks a free one
//
// When it is listening it prints exactly one line to stdout:
//   OIDC_READY http://127.0.0.1:<port>
// Everything else goes to stderr. It exits on SIGINT/SIGTERM and when its parent process dies.
//
// Flow: authorization code with PKCE (S256, required); the client authenticates with
// client_secret_basic or client_secret_post; ID tokens are RS256 and carry sub (the account
// name), nonce, acr (when the account has one), amr and auth_time. Consent is implicit.
//
// Accounts (password = "<name>-password"):
//   alice  amr ["pwd","otp"]  acr "urn:guildhall:mfa"
//   bob    amr ["pwd"]
//   carol  amr ["pwd","hwk"]

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

// The library writes notices with console.info, i.e. to stdout; keep stdout for the ready line.
console.info = console.error;
console.log = console.error;

const { default: Provider } = await import('oidc-provider');

const ACCOUNTS = {
  alice: { password: 'alice-password', amr: ['pwd', 'otp'], acr: 'urn:guildhall:mfa' },
  bob: { password: 'bob-password', amr: ['pwd'] },
  carol: { password: 'carol-password', amr: ['pwd', 'hwk'] },
};

function fail(message) {
  process.stderr.write(`oidc-provider.mjs: ${message}\n`);
  process.exit(2);
}

function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} must be set`);
  return value;
}

function uriList(name, value) {
  const uris = value.split(/[\s,]+/).filter(Boolean);
  for (const uri of uris) {
    let parsed;
    try {
      parsed = new URL(uri);
    } catch {
      fail(`${name}: not a URL: ${uri}`);
    }
    if (!['http:', 'https:'].includes(parsed.protocol)) fail(`${name}: not http(s): ${uri}`);
  }
  return uris;
}

const clientId = required('OIDC_CLIENT_ID');
const clientSecret = required('OIDC_CLIENT_SECRET');
const redirectUris = uriList('OIDC_REDIRECT_URI', required('OIDC_REDIRECT_URI'));
const postLogoutRedirectUris = process.env.OIDC_POST_LOGOUT_REDIRECT_URI
  ? uriList('OIDC_POST_LOGOUT_REDIRECT_URI', process.env.OIDC_POST_LOGOUT_REDIRECT_URI)
  : [];
const port = Number(process.env.OIDC_PORT || 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`OIDC_PORT is not a port: ${process.env.OIDC_PORT}`);

// ---------------------------------------------------------------------------------------------
// HTML

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
  body { font-family: arial, sans-serif; font-size: 19px; line-height: 1.3; color: #0b0c0c;
         margin: 0; background: #fff; }
  header { background: #0b0c0c; color: #fff; padding: 10px 15px; font-weight: bold; }
  main { max-width: 40em; margin: 0 auto; padding: 20px 15px; }
  h1 { font-size: 36px; margin: 0 0 20px; }
  label { display: block; font-weight: bold; margin-bottom: 5px; }
  input[type=text], input[type=password] { font: inherit; width: 100%; max-width: 20em;
         box-sizing: border-box; padding: 5px; border: 2px solid #0b0c0c; margin-bottom: 20px; }
  input:focus, button:focus { outline: 3px solid #ffdd00; outline-offset: 0; }
  button { font: inherit; padding: 8px 10px; margin-right: 10px; border: 0; cursor: pointer;
           color: #fff; background: #00703c; box-shadow: 0 2px 0 #002d18; }
  button.secondary { color: #0b0c0c; background: #f3f2f1; box-shadow: 0 2px 0 #929191; }
  .error { border: 5px solid #d4351c; padding: 15px; margin-bottom: 20px; }
  .error h2 { font-size: 24px; margin: 0 0 10px; }
  .hint { color: #484949; }
`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - Test identity provider</title>
<style>${STYLE}</style>
</head>
<body>
<header>Test identity provider</header>
<main>
${body}
</main>
</body>
</html>
`;
}

function loginPage(uid, { login = '', error = '' } = {}) {
  const action = `/interaction/${encodeURIComponent(uid)}/login`;
  const summary = error
    ? `<div class="error" role="alert" tabindex="-1">
<h2>There is a problem</h2>
<p>${escapeHtml(error)}</p>
</div>`
    : '';
  return page(error ? 'Error: Sign in' : 'Sign in', `<h1>Sign in</h1>
${summary}
<form method="post" action="${action}" novalidate>
<label for="login">Username</label>
<input type="text" id="login" name="login" value="${escapeHtml(login)}" autocomplete="username" spellcheck="false" autocapitalize="none"${error ? ' aria-invalid="true"' : ''}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password"${error ? ' aria-invalid="true"' : ''}>
<div>
<button type="submit">Sign in</button>
<button type="submit" name="cancel" value="yes" class="secondary" formnovalidate>Cancel</button>
</div>
</form>
<p class="hint">Test accounts: alice, bob and carol. The password is the name followed by "-password".</p>`);
}

function send(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

// ---------------------------------------------------------------------------------------------
// Provider

function constantTimeEqual(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

// Grants whatever OIDC scopes and claims the request asks for, so there is no consent screen.
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (!grant) {
    grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
  }
  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  grant.addOIDCClaims([...oidc.requestParamClaims]);
  await grant.save();
  return grant;
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: `test-${randomBytes(6).toString('hex')}` };

function configuration() {
  return {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogoutRedirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      // client_secret_post is accepted too: the library treats the two as interchangeable.
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    jwks: { keys: [signingKey] },
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'profile', 'email'],
    // acr and amr ride on the openid scope so every ID token carries them.
    claims: {
      openid: ['sub', 'acr', 'amr', 'auth_time', 'sid'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    acrValues: ['urn:guildhall:mfa'],
    async findAccount(ctx, sub) {
      if (!Object.hasOwn(ACCOUNTS, sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, name: sub, email: `${sub}@example.test`, email_verified: true };
        },
      };
    },
    loadExistingGrant,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page('Sign out', `<h1>Sign out of the test identity provider?</h1>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<h1>You have signed out</h1>');
        },
      },
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Sign-in error</h1>
<dl>${Object.entries(out).map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`);
    },
    // The console may run on the same host; its cookies must not collide with these
    // (browsers share cookies between ports of one host). Over plain http the library
    // leaves the Secure attribute off by itself.
    cookies: {
      names: { session: 'test_op_session', interaction: 'test_op_interaction', resume: 'test_op_resume' },
      keys: [randomBytes(32).toString('base64url')],
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 3600,
      Session: 3600,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Interactions: a login form; consent never needs a screen.

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function finishConsent(provider, req, res, details) {
  const { session, params, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, {
    mergeWithLastSubmission: true,
  });
}

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<h1>This sign-in request has expired</h1><p>Go back and start again.</p>'));
    return;
  }
  const prompt = details.prompt.name;

  if (req.method === 'GET' && action === '') {
    if (prompt === 'consent') {
      await finishConsent(provider, req, res, details);
      return;
    }
    if (prompt !== 'login') throw new Error(`unsupported prompt ${prompt}`);
    send(res, 200, loginPage(uid, { login: details.params.login_hint || '' }));
    return;
  }

  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    if (form.get('cancel')) {
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'The user cancelled sign-in',
      }, { mergeWithLastSubmission: false });
      return;
    }
    if (prompt !== 'login') throw new Error(`login submitted for prompt ${prompt}`);
    const login = (form.get('login') || '').trim();
    const account = Object.hasOwn(ACCOUNTS, login) ? ACCOUNTS[login] : undefined;
    if (!account || !constantTimeEqual(form.get('password') || '', account.password)) {
      send(res, 200, loginPage(uid, { login, error: 'Enter a correct username and password' }));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: {
        accountId: login,
        amr: account.amr,
        ...(account.acr ? { acr: account.acr } : {}),
        remember: false,
      },
    }, { mergeWithLastSubmission: false });
    return;
  }

  res.writeHead(405, { allow: 'GET, POST' });
  res.end();
}

// ---------------------------------------------------------------------------------------------
// Server

let provider;
let providerCallback;

const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?(?:\?.*)?$/.exec(req.url);
  if (!match) {
    providerCallback(req, res);
    return;
  }
  try {
    await interaction(provider, req, res, match[1], match[2] || '');
  } catch (err) {
    process.stderr.write(`oidc-provider.mjs: interaction failed: ${err?.stack || err}\n`);
    if (!res.headersSent) {
      const expired = err?.name === 'SessionNotFound';
      send(res, expired ? 400 : 500, page('Error', expired
        ? '<h1>This sign-in request has expired</h1><p>Go back and start again.</p>'
        : '<h1>Sorry, there is a problem with the test identity provider</h1>'));
    } else {
      res.end();
    }
  }
});

server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${port}: ${err.message}`));
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, configuration());
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error', 'userinfo.error']) {
    provider.on(event, (ctx, err) => {
      process.stderr.write(`oidc-provider.mjs: ${event}: ${err?.error || ''} ${err?.error_description || err?.message || err}\n`);
    });
  }
  providerCallback = provider.callback();
  process.stdout.write(`OIDC_READY ${issuer}\n`);
});

function shutdown() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

// A test driver that dies without cleaning up must not leave the provider behind.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) shutdown();
}, 1000).unref();
