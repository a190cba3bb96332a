// A real OpenID Provider for authgate's tests: `oidc-provider` (panva, OpenID Certified),
// configured the way the gateway's end-to-end and refresh-storm tests need it.
//
//   node oidc-provider.mjs '<json config>'      (or OIDC_PEER_CONFIG='<json>' node oidc-provider.mjs)
//
// Prints ONE JSON line on stdout once listening:
//   {"issuer":"http://127.0.0.1:PORT","stats":"http://127.0.0.1:PORT/__stats"}
//
// Config (all optional):
//   port                  listen port on 127.0.0.1 (0 = any free port; default 0)
//   clients               [{client_id, client_secret, redirect_uris, token_endpoint_auth_method,
//                           post_logout_redirect_uris, grant_types, backchannel_logout_uri,
//                           backchannel_logout_session_required}]
//   accessTokenTtl        access token lifetime in seconds (default 60; runtime-settable)
//   refreshTokenTtl       refresh token lifetime in seconds (default 86400)
//   idTokenTtl            ID token lifetime in seconds (default 3600)
//   rotateRefreshToken    strict rotation with reuse detection (default true)
//   reuseDetection        false: a consumed refresh token is forgotten at once, so replaying it is
//                         invalid_grant WITHOUT revoking the grant, and revoking it is a no-op (the
//                         rotation of providers without reuse detection); default true
//   conformIdTokenClaims  true: ID tokens carry only `sub` & co when an access token is issued
//                         (email/name come from userinfo); false (default): ID tokens carry them too
//   rpInitiatedLogout     enable /session/end (default true)
//   backchannelLogout     enable OpenID Connect Back-Channel Logout: ending a session at
//                         /session/end posts a Logout Token to every signed-in client's
//                         backchannel_logout_uri (default false)
//   delayRefreshMs        delay every refresh_token grant by N ms before processing (default 0;
//                         runtime-settable)
//   watchStdin            exit when stdin closes (default true)
//
// Test-only endpoints (served before the provider):
//   GET  /__stats          counts from provider events, see `stats` below
//   POST /__stats/reset    zero the counts
//   GET  /__config         the runtime settings
//   POST /__config         {"delayRefreshMs": 5000, "accessTokenTtl": 2}
//
// Pitfalls handled here (see REFERENCE.md): `offline_access` needs `prompt=consent` in the
// authorization request; the default in-memory adapter is an LRU of ~1000 entries (we use a
// plain Map); the dev-interaction forms post to absolute URLs; PKCE is required and S256 only.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';
// Internal, but stable within the exactly pinned version: the provider's private state holds
// the grant type handlers, which we wrap to count in-flight refreshes and inject latency.
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

function fail(message) {
  process.stderr.write(`oidc-provider peer: ${message}\n`);
  process.exit(2);
}

let config = {};
try {
  const raw = process.argv[2] ?? process.env.OIDC_PEER_CONFIG;
  if (raw) config = JSON.parse(raw);
} catch (err) {
  fail(`invalid JSON config: ${err.message}`);
}

const runtime = {
  accessTokenTtl: Number(config.accessTokenTtl ?? 60),
  delayRefreshMs: Number(config.delayRefreshMs ?? 0),
};
const refreshTokenTtl = Number(config.refreshTokenTtl ?? 86400);
const reuseDetection = config.reuseDetection ?? true;
const idTokenTtl = Number(config.idTokenTtl ?? 3600);

const clients = (config.clients ?? []).map((c) => {
  const client = {
    client_id: c.client_id,
    redirect_uris: c.redirect_uris ?? [],
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    grant_types: c.grant_types ?? ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
  if (c.client_secret) client.client_secret = c.client_secret;
  if (c.post_logout_redirect_uris) client.post_logout_redirect_uris = c.post_logout_redirect_uris;
  if (c.backchannel_logout_uri) {
    client.backchannel_logout_uri = c.backchannel_logout_uri;
    client.backchannel_logout_session_required = c.backchannel_logout_session_required ?? true;
  }
  return client;
});

// ---------------------------------------------------------------------------------------------
// Map-backed adapter: no eviction besides expiry (the bundled one is an LRU of ~1000 entries).

const store = new Map(); // key -> { value, expiresAt }
const grantIndex = new Map(); // grantId -> Set<key>
const grantable = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
]);

function sget(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.value;
}

function sset(key, value, expiresIn) {
  const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
  store.set(key, { value, expiresAt });
}

setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) {
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) store.delete(key);
  }
  for (const [grantId, keys] of grantIndex) {
    for (const key of keys) if (!store.has(key)) keys.delete(key);
    if (keys.size === 0) grantIndex.delete(grantId);
  }
}, 30_000).unref();

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') sset(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) sset(`userCode:${payload.userCode}`, id, expiresIn);
    if (grantable.has(this.model) && payload.grantId) {
      let keys = grantIndex.get(payload.grantId);
      if (!keys) grantIndex.set(payload.grantId, (keys = new Set()));
      keys.add(key);
    }
    sset(key, { ...payload }, expiresIn);
  }

  async find(id) {
    const value = sget(this.key(id));
    return value ? { ...value } : undefined;
  }

  async findByUid(uid) {
    const id = sget(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = sget(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    if (!reuseDetection && this.model === 'RefreshToken') {
      store.delete(this.key(id));
      return;
    }
    const value = sget(this.key(id));
    if (value) value.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const keys = grantIndex.get(grantId);
    if (!keys) return;
    for (const key of keys) store.delete(key);
    grantIndex.delete(grantId);
  }
}

// ---------------------------------------------------------------------------------------------
// Accounts: any login is accepted by the dev interactions; the login becomes `sub`.

function displayName(login) {
  return login
    .split(/[._-]+/)
    .filter(Boolean)
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join(' ') || login;
}

async function findAccount(_ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        email: `${sub}@example.test`,
        email_verified: true,
        name: displayName(sub),
        preferred_username: sub,
        // A groups claim, as Keycloak/Okta/Entra send one (authgate's route rules and
        // X-Auth-Request-Groups).
        groups: ['everyone', `${sub}-team`],
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Stats, counted from provider events.

function emptyStats() {
  return {
    code_grants: 0,
    refresh_grants: 0,
    other_grants: 0,
    code_errors: {},
    refresh_errors: {},
    other_errors: {},
    refresh_grants_by_account: {},
    grants_revoked: 0,
    revocations: 0,
    introspections: 0,
    userinfo_requests: 0,
    backchannel_logouts: 0,
    backchannel_errors: 0,
    end_sessions: 0,
    refresh_in_flight: 0,
    max_refresh_in_flight: 0,
  };
}

let stats = emptyStats();

function bump(map, key) {
  map[key] = (map[key] ?? 0) + 1;
}

function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

// ---------------------------------------------------------------------------------------------

const jwks = {
  keys: [
    { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'rs256-1', alg: 'RS256', use: 'sig' },
    { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'es256-1', alg: 'ES256', use: 'sig' },
  ],
};

let providerCallback;

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

async function testRoutes(req, res) {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/__stats' && req.method === 'GET') {
    sendJson(res, 200, { ...stats, delay_refresh_ms: runtime.delayRefreshMs });
    return true;
  }
  if (path === '/__stats/reset' && req.method === 'POST') {
    const inFlight = stats.refresh_in_flight;
    stats = emptyStats();
    stats.refresh_in_flight = inFlight;
    stats.max_refresh_in_flight = inFlight;
    sendJson(res, 200, { ...stats, delay_refresh_ms: runtime.delayRefreshMs });
    return true;
  }
  if (path === '/__config' && req.method === 'GET') {
    sendJson(res, 200, runtime);
    return true;
  }
  if (path === '/__config' && req.method === 'POST') {
    let body;
    try {
      body = await readJson(req);
    } catch (err) {
      sendJson(res, 400, { error: `invalid JSON: ${err.message}` });
      return true;
    }
    for (const key of ['delayRefreshMs', 'accessTokenTtl']) {
      if (body[key] !== undefined) {
        const value = Number(body[key]);
        if (!Number.isFinite(value) || value < 0) {
          sendJson(res, 400, { error: `${key} must be a non-negative number` });
          return true;
        }
        runtime[key] = value;
      }
    }
    sendJson(res, 200, runtime);
    return true;
  }
  return false;
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__')) {
    testRoutes(req, res).then((handled) => {
      if (!handled) sendJson(res, 404, { error: 'not found' });
    }, (err) => sendJson(res, 500, { error: String(err) }));
    return;
  }
  if (!providerCallback) {
    sendJson(res, 503, { error: 'starting' });
    return;
  }
  providerCallback(req, res);
});
server.keepAliveTimeout = 5_000;

server.on('error', (err) => fail(`listen failed: ${err.message}`));
server.listen(Number(config.port ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    adapter: MapAdapter,
    clients,
    findAccount,
    jwks,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    conformIdTokenClaims: config.conformIdTokenClaims ?? false,
    pkce: { required: () => true },
    rotateRefreshToken: config.rotateRefreshToken ?? true,
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
    },
    ttl: {
      AccessToken: () => runtime.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: idTokenTtl,
      RefreshToken: refreshTokenTtl,
      Grant: Math.max(refreshTokenTtl, 3600),
      Interaction: 600,
      Session: 86400,
    },
    features: {
      devInteractions: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        // Any authenticated confidential client may introspect any token (including refresh
        // tokens): tests use it to check what the provider still considers active.
        allowedPolicy: async (_ctx, client) => client.clientAuthMethod !== 'none',
      },
      rpInitiatedLogout: { enabled: config.rpInitiatedLogout ?? true },
      backchannelLogout: { enabled: config.backchannelLogout ?? false },
      userinfo: { enabled: true },
    },
    // Outgoing requests (Logout Tokens to backchannel_logout_uri) go to the test's clients on
    // 127.0.0.1, which the provider's SSRF guard (a dispatcher refusing special-use addresses)
    // would refuse: the peer listens on loopback and talks to loopback only.
    fetch(url, options) {
      const { dispatcher: _ssrfGuard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  // Wrap the refresh_token grant handler: in-flight gauge and the injectable delay.
  const handlers = instance(provider).grantTypeHandlers;
  const refreshHandler = handlers.get('refresh_token');
  handlers.set('refresh_token', async (ctx) => {
    stats.refresh_in_flight += 1;
    stats.max_refresh_in_flight = Math.max(stats.max_refresh_in_flight, stats.refresh_in_flight);
    try {
      if (runtime.delayRefreshMs > 0) await sleep(runtime.delayRefreshMs);
      return await refreshHandler(ctx);
    } finally {
      stats.refresh_in_flight -= 1;
    }
  });

  provider.on('grant.success', (ctx) => {
    const gty = ctx.oidc.params?.grant_type;
    if (gty === 'refresh_token') {
      stats.refresh_grants += 1;
      const accountId = ctx.oidc.entities?.Account?.accountId
        ?? ctx.oidc.entities?.RefreshToken?.accountId ?? 'unknown';
      bump(stats.refresh_grants_by_account, accountId);
    } else if (gty === 'authorization_code') {
      stats.code_grants += 1;
    } else {
      stats.other_grants += 1;
    }
  });
  provider.on('grant.error', (ctx, err) => {
    const gty = ctx.oidc?.params?.grant_type;
    const code = err?.error ?? 'unknown';
    if (gty === 'refresh_token') bump(stats.refresh_errors, code);
    else if (gty === 'authorization_code') bump(stats.code_errors, code);
    else bump(stats.other_errors, code);
  });
  provider.on('grant.revoked', () => { stats.grants_revoked += 1; });
  provider.on('backchannel.success', () => { stats.backchannel_logouts += 1; });
  provider.on('backchannel.error', (_ctx, err) => {
    stats.backchannel_errors += 1;
    process.stderr.write(`oidc-provider peer: back-channel logout failed: ${err?.message ?? err}\n`);
  });
  provider.on('end_session.success', () => { stats.end_sessions += 1; });
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`oidc-provider peer: server_error on ${ctx.path}: ${err?.stack ?? err}\n`);
  });

  // Plain counters for endpoints that have no success event.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.status !== 200) return;
    const route = ctx.oidc?.route;
    if (route === 'revocation') stats.revocations += 1;
    else if (route === 'introspection') stats.introspections += 1;
    else if (route === 'userinfo') stats.userinfo_requests += 1;
  });

  providerCallback = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer, stats: `${issuer}/__stats` })}\n`);
});

// ---------------------------------------------------------------------------------------------
// Lifecycle: exit on SIGTERM/SIGINT, and when stdin closes (the parent died or dropped us).

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (config.watchStdin ?? true) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
