// The OpenID provider of moat's sign-in tests.
//
// This runs `oidc-provider` (the npm package: a certified OpenID Connect
// implementation that is not moat's) over HTTPS on 127.0.0.1, set up from a
// JSON file, plus a few test-only endpoints. moat is tested against it as a
// relying party.
//
//   MOAT_TEST_NODE_PATH=<tools>/node_modules node provider.mjs CONFIG.json
//
// MOAT_TEST_NODE_PATH is the node_modules folder scripts/test installs
// oidc-provider into. Once listening, the one line
// `ready https://127.0.0.1:PORT` goes to stdout; everything else (warnings,
// errors) goes to stderr. SIGTERM stops it.
//
// CONFIG.json:
//   port, cert, key   listen on 127.0.0.1:port with this PEM certificate/key
//   issuer            e.g. "https://127.0.0.1:PORT" (used as given)
//   keys_dir          signing keys live here as NAME.json (private JWKs);
//                     sessions, grants and tokens are kept in
//                     .provider-state.json, so a restart keeps them valid
//   keys              key names; the first signs, all are published in the
//                     JWKS. A missing name gets a new RSA-2048 key (RS256,
//                     kid = name). Restarting with other names rotates keys.
//   clients           [{client_id, client_secret, redirect_uris,
//                     post_logout_redirect_uris, ...}]; any other client
//                     metadata is passed through. Defaults: grant types
//                     authorization_code + refresh_token, response type code.
//   users             [{sub, password, email?, email_verified?, name?,
//                     groups?}]; a claim left out is not sent at all
//   ttl               optional, seconds per oidc-provider artifact, e.g.
//                     {"AccessToken": 60, "IdToken": 60, "RefreshToken": 600}
//
// Behaviour: authorization code flow, PKCE (S256) always required, scopes openid
// email profile groups offline_access, scope claims in the ID token as well
// as at userinfo, no consent screen, a refresh token for every client
// allowed the refresh_token grant (offline_access not needed).
//
// Pages (for browsers and the tests' HTTP clients):
//   GET  /interaction/UID        the login form: input#login,
//                                input#password, button#submit; it posts
//                                to /interaction/UID/login
//   POST /interaction/UID/login  login=…&password=…: 303 back into the
//                                authorization, or 401 and the form again
//                                (with the word "wrong")
//   GET  /session/end?…          (RP-initiated logout) a form confirming
//                                the logout: form#op.logoutForm with a hidden
//                                xsrf input and button#logout-confirm
//                                (name=logout, value=yes); posting it ends the
//                                session and answers 303 to the
//                                post_logout_redirect_uri (plus state). With
//                                no session at the provider, oidc-provider
//                                sends its own self-submitting form instead
//                                (same action and xsrf input, logout=yes).
// Test controls:
//   POST /__test/tamper {"mode": M}  the next token response that carries an
//        id_token gets a broken one instead; M: aud, expired, signature,
//        none, nonce, iss, hs256, or null to cancel. Answers 204.
//   GET  /__test/counts  requests so far, as JSON: discovery, jwks, token,
//        refresh (token requests with grant_type=refresh_token), userinfo,
//        end_session.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// oidc-provider prints notices with console.info; stdout is only for the
// ready line.
console.info = console.error;
console.log = console.error;

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node provider.mjs CONFIG.json');
  process.exit(2);
}
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));

const nodePath = process.env.MOAT_TEST_NODE_PATH;
if (!nodePath) {
  console.error('MOAT_TEST_NODE_PATH must name the node_modules folder holding oidc-provider');
  process.exit(2);
}
// ESM ignores NODE_PATH: resolve the package from that folder, then import
// it by absolute path.
const resolve = createRequire(path.join(path.resolve(nodePath), 'noop.js')).resolve;
const { default: Provider, errors } = await import(pathToFileURL(resolve('oidc-provider')).href);

// --- signing keys --------------------------------------------------------

function loadOrCreateKey(name) {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`bad key name ${JSON.stringify(name)}`);
  const file = path.join(config.keys_dir, `${name}.json`);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: name, alg: 'RS256', use: 'sig' };
  fs.writeFileSync(file, JSON.stringify(jwk, null, 2), { mode: 0o600 });
  return jwk;
}

fs.mkdirSync(config.keys_dir, { recursive: true });
if (!Array.isArray(config.keys) || config.keys.length === 0) throw new Error('config.keys is empty');
const jwks = { keys: config.keys.map(loadOrCreateKey) };
const signingJwk = jwks.keys[0];
const signingKey = crypto.createPrivateKey({ key: signingJwk, format: 'jwk' });

// --- storage that survives restarts --------------------------------------

// oidc-provider's adapter interface over one JSON file: a few dozen small
// records, rewritten whole on every change.
const stateFile = path.join(config.keys_dir, '.provider-state.json');
const store = new Map();
try {
  const now = Date.now();
  for (const [k, v] of Object.entries(JSON.parse(fs.readFileSync(stateFile, 'utf8')))) {
    if (v.expiresAt === null || v.expiresAt > now) store.set(k, v);
  }
} catch (err) {
  if (err.code !== 'ENOENT') console.error(`ignoring ${stateFile}: ${err.message}`);
}
function persist() {
  const tmp = `${stateFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries(store)), { mode: 0o600 });
  fs.renameSync(tmp, stateFile);
}

class FileAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  get(key) {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null;
    store.set(this.key(id), { payload, expiresAt });
    persist();
  }

  async find(id) {
    return this.get(this.key(id));
  }

  async findByUid(uid) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid) return this.get(key);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.model}:`) && entry.payload.userCode === userCode) return this.get(key);
    }
    return undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) {
      entry.payload.consumed = Math.floor(Date.now() / 1000);
      persist();
    }
  }

  async destroy(id) {
    if (store.delete(this.key(id))) persist();
  }

  async revokeByGrantId(grantId) {
    let changed = false;
    for (const [key, entry] of store) {
      if (entry.payload.grantId === grantId && !key.startsWith('Grant:')) {
        store.delete(key);
        changed = true;
      }
    }
    if (changed) persist();
  }
}

// --- accounts ------------------------------------------------------------

const users = new Map((config.users || []).map((u) => [u.sub, u]));
const claimNames = ['email', 'email_verified', 'name', 'groups'];

async function findAccount(_ctx, sub) {
  const user = users.get(sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    async claims() {
      const claims = { sub };
      for (const name of claimNames) {
        if (user[name] !== undefined) claims[name] = user[name];
      }
      return claims;
    },
  };
}

// --- HTML ----------------------------------------------------------------

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
${body}
</body></html>
`;
}

function loginPage(uid, message) {
  return page('Sign in', `<h1>Test OpenID provider</h1>
${message ? `<p id="message">${escapeHtml(message)}</p>\n` : ''}<form method="post" action="/interaction/${escapeHtml(uid)}/login"><input id="login" name="login"><input id="password" name="password" type="password"><button id="submit" type="submit">Sign in</button></form>`);
}

// --- provider ------------------------------------------------------------

const ttlSeconds = (name, fallback) => {
  const v = config.ttl?.[name];
  return typeof v === 'number' ? v : fallback;
};
const refreshTtl = ttlSeconds('RefreshToken', 86400);
const ttl = {
  AccessToken: 3600,
  AuthorizationCode: 60,
  IdToken: 3600,
  Interaction: 3600,
  RefreshToken: refreshTtl,
  // Sessions and grants must outlive the refresh tokens hanging off them.
  Session: Math.max(refreshTtl, 86400),
  Grant: Math.max(refreshTtl, 86400),
  ...config.ttl,
};

const clients = (config.clients || []).map((c) => ({
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'RS256',
  ...c,
}));

const provider = new Provider(config.issuer, {
  adapter: FileAdapter,
  clients,
  jwks,
  findAccount,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  // Scope claims go into the ID token too, not only to userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // No consent screen: whatever the client asks for is granted.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new oidc.provider.Grant({
        accountId: oidc.account.accountId,
        clientId: oidc.client.clientId,
      });
    }
    grant.addOIDCScope(oidc.requestParamOIDCScopes);
    if (oidc.requestParamClaims.size) grant.addOIDCClaims(oidc.requestParamClaims);
    await grant.save();
    return grant;
  },
  cookies: {
    // Cookies ignore ports, so the provider's share a jar with moat's on
    // 127.0.0.1: give them names of their own.
    names: { session: 'op_session', interaction: 'op_interaction', resume: 'op_interaction_resume' },
    keys: ['moat-test-provider-cookie-key'],
  },
  ttl,
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        const button = '<button id="logout-confirm" type="submit" name="logout" value="yes">Sign out</button>';
        ctx.type = 'html';
        ctx.body = page('Sign out', `<h1>Sign out of the test provider?</h1>
${form.replace('</form>', `${button}</form>`)}`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out', '<h1 id="signed-out">Signed out</h1>');
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const lines = Object.entries(out).map(([k, v]) => `${k}: ${v}`).join('\n');
    ctx.body = page('Error', `<h1>Error</h1>\n<pre id="error">${escapeHtml(lines)}</pre>`);
  },
});

for (const event of [
  'server_error', 'authorization.error', 'grant.error', 'userinfo.error',
  'end_session.error', 'jwks.error', 'discovery.error', 'revocation.error',
  'introspection.error', 'pushed_authorization_request.error',
]) {
  provider.on(event, (ctx, err) => {
    const detail = err?.error_description ? ` (${err.error_description})` : '';
    console.error(`${event}: ${ctx?.method} ${ctx?.path}: ${err?.message ?? err}${detail}`);
    if (event === 'server_error') console.error(err?.stack);
  });
}

// --- test controls, counters and the token rewriting ---------------------

const counts = { jwks: 0, token: 0, userinfo: 0, refresh: 0, end_session: 0, discovery: 0 };
const countedPaths = new Map([
  ['/.well-known/openid-configuration', 'discovery'],
  [provider.pathFor('jwks'), 'jwks'],
  [provider.pathFor('token'), 'token'],
  [provider.pathFor('userinfo'), 'userinfo'],
  [provider.pathFor('end_session'), 'end_session'],
]);
const tamperModes = new Set(['aud', 'expired', 'signature', 'none', 'nonce', 'iss', 'hs256']);
let tamper = null;

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const fromB64url = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

function signJwt(header, payload, alg = 'RS256') {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  let sig;
  if (alg === 'RS256') {
    sig = crypto.sign('sha256', Buffer.from(input), signingKey);
  } else if (alg === 'HS256') {
    // The classic algorithm-confusion forgery: the RSA public key's PEM
    // text used as an HMAC secret.
    const pem = crypto.createPublicKey(signingKey).export({ type: 'spki', format: 'pem' });
    sig = crypto.createHmac('sha256', pem).update(input).digest();
  } else {
    sig = Buffer.alloc(0);
  }
  return `${input}.${b64url(sig)}`;
}

function tamperIdToken(idToken, mode) {
  const [h, p, s] = idToken.split('.');
  const header = fromB64url(h);
  const payload = fromB64url(p);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'aud':
      payload.aud = 'someone-else';
      delete payload.azp;
      return signJwt(header, payload);
    case 'expired':
      payload.iat = now - 7200;
      payload.exp = now - 3600;
      return signJwt(header, payload);
    case 'signature': {
      const sig = Buffer.from(s, 'base64url');
      sig[sig.length - 1] ^= 0xff;
      sig[sig.length - 2] ^= 0xff;
      return `${h}.${p}.${b64url(sig)}`;
    }
    case 'none':
      return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.`;
    case 'nonce':
      payload.nonce = 'not-the-nonce';
      return signJwt(header, payload);
    case 'iss':
      payload.iss = 'https://evil.example';
      return signJwt(header, payload);
    case 'hs256':
      return signJwt({ alg: 'HS256', typ: 'JWT', kid: signingJwk.kid }, payload, 'HS256');
    default:
      throw new Error(`unknown tamper mode ${mode}`);
  }
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function testControls(ctx) {
  if (ctx.path === '/__test/tamper' && ctx.method === 'POST') {
    const { mode } = JSON.parse((await readBody(ctx.req)) || '{}');
    if (mode !== null && !tamperModes.has(mode)) {
      ctx.status = 400;
      ctx.body = `unknown mode ${JSON.stringify(mode)}\n`;
      return;
    }
    tamper = mode;
    ctx.status = 204;
  } else if (ctx.path === '/__test/counts' && ctx.method === 'GET') {
    ctx.body = counts;
  } else {
    ctx.status = 404;
  }
}

// The login page and its form; a consent prompt, should one come, is
// granted without asking.
async function interaction(ctx) {
  const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(ctx.path);
  if (!m || (m[2] ? ctx.method !== 'POST' : ctx.method !== 'GET')) {
    ctx.status = 404;
    return;
  }
  const uid = m[1];
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');

  if (details.prompt.name === 'consent') {
    const { prompt, params, session } = details;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    grant ||= new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope);
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.redirect(returnTo);
    ctx.status = 303;
    return;
  }

  if (!m[2]) {
    ctx.type = 'html';
    ctx.body = loginPage(uid);
    return;
  }
  const form = new URLSearchParams(await readBody(ctx.req));
  const user = users.get(form.get('login') ?? '');
  if (!user || user.password !== form.get('password')) {
    ctx.status = 401;
    ctx.type = 'html';
    ctx.body = loginPage(uid, 'wrong user name or password');
    return;
  }
  const returnTo = await provider.interactionResult(
    ctx.req,
    ctx.res,
    { login: { accountId: user.sub } },
    { mergeWithLastSubmission: false },
  );
  ctx.redirect(returnTo);
  ctx.status = 303;
}

provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/__test/')) return testControls(ctx);
  if (ctx.path.startsWith('/interaction/')) {
    try {
      return await interaction(ctx);
    } catch (err) {
      const message = err.error_description ? `${err.message}: ${err.error_description}` : err.message;
      console.error(`interaction: ${ctx.method} ${ctx.path}: ${message}`);
      ctx.status = err.statusCode || err.status || 500;
      ctx.type = 'text';
      ctx.body = `${message}\n`;
      return undefined;
    }
  }

  const counted = countedPaths.get(ctx.path);
  if (counted && ctx.method !== 'OPTIONS') counts[counted] += 1;
  await next();

  if (counted === 'token') {
    if (ctx.oidc?.params?.grant_type === 'refresh_token') counts.refresh += 1;
    if (tamper && ctx.status === 200 && typeof ctx.body?.id_token === 'string') {
      const mode = tamper;
      tamper = null;
      ctx.body = { ...ctx.body, id_token: tamperIdToken(ctx.body.id_token, mode) };
      console.error(`tamper: sent a ${mode} id_token`);
    }
  }
  return undefined;
});

// --- server --------------------------------------------------------------

const server = https.createServer({
  cert: fs.readFileSync(config.cert),
  key: fs.readFileSync(config.key),
}, provider.callback());
server.on('tlsClientError', (err) => console.error(`tls: ${err.message}`));
server.on('error', (err) => {
  console.error(`cannot listen on 127.0.0.1:${config.port}: ${err.message}`);
  process.exit(1);
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`ready https://127.0.0.1:${server.address().port}\n`);
});

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
