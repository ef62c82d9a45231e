// A real OpenID provider for tests: panva's `oidc-provider` (OpenID
// Certified), on 127.0.0.1 only, with one confidential client (and any
// others a test asks for) and a fixed set of users. Started by `crates/test-support/src/oidc.rs`, which passes
// everything in the environment:
//
//   OIDC_PROVIDER_DIR     the npm prefix `oidc-provider` is installed in
//                         (`target/tools/oidc-provider`, by `cargo xtask install`)
//   OIDC_PROVIDER_CONFIG  JSON: { port, issuer (optional; default
//                         http://127.0.0.1:<port>), client: { client_id, client_secret,
//                         redirect_uris, post_logout_redirect_uris },
//                         other_clients: [ the same shape ] (optional),
//                         users: [{ username, password, name, email }],
//                         token_ttl_seconds, log_file }
//
// Prints `ready <issuer>` once it listens; exits when its stdin closes (the
// test process is gone, however it died) or on SIGTERM/SIGINT.
//
// Sign-in is this file's own small form, not oidc-provider's
// `devInteractions`: those accept any login with any password, and the
// tests need a wrong password to fail. Consent is given at once, as for a
// first-party client.

import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(required('OIDC_PROVIDER_CONFIG'));
// The issuer may name another host than the address it listens on, for a
// relying party in a container (oidc.rs, `OidcProvider::start_named`).
const issuer = config.issuer ?? `http://127.0.0.1:${config.port}`;
const users = new Map(config.users.map((user) => [user.username, user]));

// An ES module is resolved relative to the importing file; the package sits
// in the npm prefix under target/, not beside this file.
const entry = createRequire(join(required('OIDC_PROVIDER_DIR'), 'package.json'))
  .resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

function log(event, fields = {}) {
  const line = JSON.stringify({ time: new Date().toISOString(), event, ...fields });
  if (config.log_file) {
    appendFileSync(config.log_file, `${line}\n`);
  } else {
    console.error(line);
  }
}

// A fresh signing key per run: nothing outlives the test that started it.
// Its key id is fresh too, as a real provider's is when it rotates keys, so
// a test can restart the provider to rotate them (`OidcProvider::rotate_keys`)
// and a relying party sees a key id it has not read.
function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-rs256-${randomBytes(6).toString('hex')}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

const ttl = config.token_ttl_seconds;
const provider = new Provider(issuer, {
  clients: [config.client, ...(config.other_clients ?? [])].map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  async findAccount(_ctx, id) {
    const user = users.get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: user.name,
          preferred_username: id,
          email: user.email,
          email_verified: true,
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // The scopes' claims go into the ID token too, as most providers do, so a
  // client can name the user without calling the userinfo endpoint.
  conformIdTokenClaims: false,
  // PKCE for every client, confidential ones included (OAuth 2.1, BCP 240).
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email'],
  jwks: { keys: [signingKey()] },
  cookies: {
    keys: [randomBytes(32).toString('hex')],
    // Browsers share cookies between ports of one host: on 127.0.0.1 the
    // app under test sees these too, so they carry names it will not use.
    names: {
      session: 'test_oidc_session',
      interaction: 'test_oidc_interaction',
      resume: 'test_oidc_interaction_resume',
    },
  },
  ttl: {
    AccessToken: ttl,
    IdToken: ttl,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
});

provider.on('server_error', (_ctx, error) => log('server_error', { error: String(error) }));
provider.on('authorization.error', (_ctx, error) => log('authorization.error', { error: error.message }));
provider.on('grant.error', (_ctx, error) => log('grant.error', { error: error.message }));
provider.on('grant.success', (ctx) => log('grant.success', { client_id: ctx.oidc.client?.clientId }));

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, { username = '', error } = {}) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in to the test provider</h1>
${error ? `<p role="alert" data-test="login-error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" data-test="login-form">
  <label>Username <input name="username" autocomplete="username" value="${escape(username)}" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
<p><a href="/interaction/${escape(uid)}/abort" data-test="login-abort">Cancel</a></p>
</body></html>`;
}

function send(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

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

// Compares digests so neither the length nor the content leaks through timing.
function passwordMatches(user, password) {
  const digest = (text) => createHash('sha256').update(text).digest();
  return Boolean(user) && timingSafeEqual(digest(user.password), digest(password));
}

async function consent(req, res, details) {
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const result = { consent: { grantId: await grant.save() } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    return send(res, 400, 'This sign-in is not the one in progress.');
  }
  if (action === 'abort' && req.method === 'GET') {
    log('login.aborted');
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === 'consent' && !action && req.method === 'GET') {
    return consent(req, res, details);
  }
  if (details.prompt.name !== 'login') {
    return send(res, 501, `Prompt ${escape(details.prompt.name)} is not supported here.`);
  }
  if (!action && req.method === 'GET') {
    return send(res, 200, loginPage(uid, { username: details.params.login_hint }));
  }
  if (action === 'login' && req.method === 'POST') {
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    if (!passwordMatches(users.get(username), form.get('password') ?? '')) {
      log('login.failed', { username });
      return send(res, 401, loginPage(uid, { username, error: 'Wrong username or password.' }));
    }
    log('login.succeeded', { username });
    return provider.interactionFinished(req, res, {
      login: { accountId: username },
    }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'Method not allowed.');
}

const callback = provider.callback();
const server = createServer((req, res) => {
  const { pathname } = new URL(req.url, issuer);
  // Logged so a test can count how often a relying party reads the keys.
  if (pathname === '/jwks') log('jwks.read');
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/.exec(pathname);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((error) => {
    log('interaction.error', { error: String(error) });
    if (!res.headersSent) send(res, 400, escape(error.message));
    else res.end();
  });
});

function stop(why) {
  log('stopping', { why });
  server.close();
  server.closeAllConnections();
  process.exit(0);
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.stdin.on('end', () => stop('stdin closed'));
process.stdin.on('error', () => stop('stdin closed'));
process.stdin.resume();

server.listen(config.port, '127.0.0.1', () => {
  log('ready', { issuer });
  console.log(`ready ${issuer}`);
});
