// A real OAuth 2.0 authorization server (oidc-provider) for the adp-e2e tests.
//
//   node authorization-server.mjs --config server.json [--port 0] [--exit-with-stdin]
//
// The config file path may also come from AS_CONFIG and the port from AS_PORT; a
// non-zero "port" in the config wins over both. Binds 127.0.0.1 only. Once listening it prints exactly one JSON line
// to stdout: {"ready":true,"issuer":"http://127.0.0.1:PORT","port":PORT}.
//
// Config (JSON, every key optional):
//   clients                      oidc-provider client metadata (snake_case), e.g.
//                                {client_id, client_secret, redirect_uris, grant_types,
//                                 token_endpoint_auth_method}; response_types defaults to
//                                ["code"] when authorization_code is allowed, else []
//   scopes                       custom scopes of the one resource server ("repo", ...)
//   resource                     that resource server's indicator (default https://api.adp.test)
//   access_token_ttl             seconds (default 30)
//   access_token_format          "opaque" (default) or "jwt"
//   refresh_token_ttl            seconds (default 14 days)
//   rotate_refresh_token         default true
//   refresh_token_requires_offline_access   default false: any client allowed the
//                                refresh_token grant gets one
//   device_code_ttl              seconds (default 600)
//   device_poll_interval         seconds; when set, device authorization responses carry
//                                "interval" and polls faster than it get slow_down
//   slow_down_increment          seconds added to the interval per slow_down (default 5)
//
// Test-only endpoints (loopback only, no auth):
//   GET  /__test/stats           token-endpoint request counters
//   POST /__test/reset           zero the counters
//   POST /__test/faults          {"token": {"status": 503, "body": {...}, "hang_ms": 10000,
//                                 "answer_after_ms": 3000, "drop_answer": true, "times": 2}}
//                                or {} to clear; applies to POST /token only. hang_ms and
//                                status act before the grant; answer_after_ms and
//                                drop_answer after it (the grant happened, refresh tokens
//                                rotated, and the answer is late or never arrives)
//   POST /__test/revoke-grants   {"accountId": "alice", "clientId"?: "..."} destroys the
//                                matching grants and every token issued from them
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import Provider, { errors } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

// the built-in memory adapter keeps 1,000 entries (sessions, grants, codes, tokens all
// count), so with a few hundred users it silently evicts live refresh tokens and
// answers invalid_grant; tests and benchmarks with 1,000 users need far more
const storage = new LRU({ maxSize: 1_000_000 });
const adapter = (model) => new MemoryAdapter(model, storage);

const TOKEN_PATH = '/token';
const DEVICE_AUTHORIZATION_PATH = '/device/auth';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const { values: args } = parseArgs({
  options: {
    config: { type: 'string' },
    port: { type: 'string' },
    'exit-with-stdin': { type: 'boolean' },
  },
});
const configPath = args.config ?? process.env.AS_CONFIG;
const config = configPath ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
// a port in the config file wins: a test that must know the issuer up front sets it
const port = Number(config.port || args.port || process.env.AS_PORT || 0);

const settings = {
  scopes: config.scopes ?? ['repo', 'read:org', 'read:user'],
  resource: config.resource ?? 'https://api.adp.test',
  accessTokenTtl: config.access_token_ttl ?? 30,
  accessTokenFormat: config.access_token_format ?? 'opaque',
  refreshTokenTtl: config.refresh_token_ttl ?? 14 * 24 * 60 * 60,
  rotateRefreshToken: config.rotate_refresh_token ?? true,
  refreshNeedsOfflineAccess: config.refresh_token_requires_offline_access ?? false,
  deviceCodeTtl: config.device_code_ttl ?? 600,
  devicePollInterval: config.device_poll_interval ?? null,
  slowDownIncrement: config.slow_down_increment ?? 5,
};

function clientMetadata(client) {
  const grantTypes = client.grant_types ?? ['authorization_code', 'refresh_token'];
  return {
    redirect_uris: [],
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    ...client,
    grant_types: grantTypes,
  };
}

// ---- test state -------------------------------------------------------------------

const stats = newStats();
let tokenFault = null;
const grantsByAccount = new Map(); // accountId -> Map(grantId -> clientId)
const devicePolls = new Map(); // device_code -> { last, interval }

function newStats() {
  return {
    token: { total: 0, by_grant_type: {}, faults_injected: 0, slow_down: 0, invalid_grant: 0 },
  };
}

function resetStats() {
  Object.assign(stats, newStats());
}

// ---- provider ---------------------------------------------------------------------

async function buildProvider(issuer) {
  const resourceServer = {
    scope: settings.scopes.join(' '),
    audience: settings.resource,
    accessTokenTTL: settings.accessTokenTtl,
    accessTokenFormat: settings.accessTokenFormat,
    ...(settings.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
  };
  const provider = new Provider(issuer, {
    adapter,
    clients: (config.clients ?? []).map(clientMetadata),
    scopes: ['openid', 'offline_access'],
    // standard claims for the control plane's OpenID Connect sign-in; put in the ID
    // token itself (not only userinfo) so a relying party can greet people by name
    claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
    conformIdTokenClaims: false,
    cookies: { keys: ['adp-e2e-cookie-key-not-secret'] },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@example.test`, name: sub }),
    }),
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // every request without `resource` targets the one resource server, so custom
        // scopes are granted and listed in the token response `scope`
        defaultResource: async () => settings.resource,
        // without this, a request that includes `openid` would get a userinfo-only
        // access token at the token endpoint and lose the custom scopes
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== settings.resource) throw new errors.InvalidTarget();
          return resourceServer;
        },
      },
    },
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && (!settings.refreshNeedsOfflineAccess || code.scopes.has('offline_access')),
    // tokens outlive the browser session, as with GitHub-style providers
    expiresWithSession: async () => false,
    rotateRefreshToken: settings.rotateRefreshToken,
    ttl: {
      AccessToken: () => settings.accessTokenTtl,
      ClientCredentials: () => settings.accessTokenTtl,
      RefreshToken: () => settings.refreshTokenTtl,
      DeviceCode: () => settings.deviceCodeTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 3600,
      Grant: settings.refreshTokenTtl,
    },
  });

  provider.on('grant.saved', (grant) => {
    if (!grantsByAccount.has(grant.accountId)) grantsByAccount.set(grant.accountId, new Map());
    grantsByAccount.get(grant.accountId).set(grant.jti, grant.clientId);
  });
  provider.on('server_error', (_ctx, error) => console.error('server_error', error));

  provider.use(testRoutes(provider));
  provider.use(tokenEndpointHooks);
  provider.use(deviceAuthorizationInterval);
  return provider;
}

// ---- middleware -------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('cache-control', 'no-store');
  ctx.body = body;
}

function testRoutes(provider) {
  return async function testRoutesMiddleware(ctx, next) {
    if (!ctx.path.startsWith('/__test/')) return next();
    const route = `${ctx.method} ${ctx.path}`;
    const body = ctx.method === 'POST' ? await readBody(ctx.req) : Buffer.alloc(0);
    const input = body.length ? JSON.parse(body.toString('utf8')) : {};
    switch (route) {
      case 'GET /__test/stats':
        return json(ctx, 200, stats);
      case 'POST /__test/reset':
        resetStats();
        return json(ctx, 200, stats);
      case 'POST /__test/faults':
        tokenFault = input.token ? { ...input.token } : null;
        return json(ctx, 200, { token: tokenFault });
      case 'POST /__test/revoke-grants':
        return json(ctx, 200, { revoked: await revokeGrants(provider, input) });
      default:
        return json(ctx, 404, { error: 'not_found', error_description: route });
    }
  };
}

async function revokeGrants(provider, { accountId, clientId }) {
  const grants = grantsByAccount.get(accountId) ?? new Map();
  let revoked = 0;
  for (const [grantId, grantClientId] of [...grants]) {
    if (clientId && clientId !== grantClientId) continue;
    await Promise.all([
      provider.AccessToken.revokeByGrantId(grantId),
      provider.RefreshToken.revokeByGrantId(grantId),
      provider.AuthorizationCode.revokeByGrantId(grantId),
      provider.DeviceCode.revokeByGrantId(grantId),
      provider.Grant.adapter.destroy(grantId),
    ]);
    grants.delete(grantId);
    revoked += 1;
  }
  return revoked;
}

// Counts token requests, injects faults and enforces the device polling interval. The
// body is read here and handed to oidc-provider as `req.body`, which it accepts.
async function tokenEndpointHooks(ctx, next) {
  if (ctx.method !== 'POST' || ctx.path !== TOKEN_PATH) return next();
  const raw = await readBody(ctx.req);
  ctx.req.body = raw;
  const params = new URLSearchParams(raw.toString('utf8'));
  const grantType = params.get('grant_type') ?? '(none)';
  stats.token.total += 1;
  stats.token.by_grant_type[grantType] = (stats.token.by_grant_type[grantType] ?? 0) + 1;

  const fault = tokenFault;
  if (fault) {
    stats.token.faults_injected += 1;
    if (typeof fault.times === 'number') {
      fault.times -= 1;
      if (fault.times <= 0) tokenFault = null;
    }
    if (fault.hang_ms) await sleep(fault.hang_ms);
    if (fault.status) {
      const fallback = { error: 'temporarily_unavailable', error_description: 'injected fault' };
      return json(ctx, fault.status, fault.body ?? fallback);
    }
  }

  if (grantType === DEVICE_CODE_GRANT && settings.devicePollInterval) {
    const deviceCode = params.get('device_code') ?? '';
    const now = Date.now();
    const poll = devicePolls.get(deviceCode) ?? { last: 0, interval: settings.devicePollInterval };
    const tooSoon = now - poll.last < poll.interval * 1000;
    if (tooSoon) poll.interval += settings.slowDownIncrement;
    poll.last = now;
    devicePolls.set(deviceCode, poll);
    if (tooSoon) {
      stats.token.slow_down += 1;
      return json(ctx, 400, {
        error: 'slow_down',
        error_description: `polling faster than every ${poll.interval} s`,
      });
    }
  }
  await next();
  // oidc-provider answers a reused rotated refresh token with invalid_grant (and revokes
  // the grant), so this counts reuse the tests must never cause
  if (ctx.status === 400 && ctx.body?.error === 'invalid_grant') stats.token.invalid_grant += 1;
  if (fault?.answer_after_ms) await sleep(fault.answer_after_ms);
  if (fault?.drop_answer) {
    ctx.respond = false;
    ctx.req.socket.destroy();
  }
}

async function deviceAuthorizationInterval(ctx, next) {
  await next();
  if (ctx.method !== 'POST' || ctx.path !== DEVICE_AUTHORIZATION_PATH) return;
  if (ctx.status === 200 && settings.devicePollInterval && ctx.body?.device_code) {
    ctx.body = { ...ctx.body, interval: settings.devicePollInterval };
    devicePolls.set(ctx.body.device_code, { last: 0, interval: settings.devicePollInterval });
  }
}

// ---- server -----------------------------------------------------------------------

const server = createServer();
server.listen(port, '127.0.0.1', async () => {
  const { port: bound } = server.address();
  const issuer = `http://127.0.0.1:${bound}`;
  try {
    const provider = await buildProvider(issuer);
    server.on('request', provider.callback());
    process.stdout.write(`${JSON.stringify({ ready: true, issuer, port: bound })}\n`);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
if (args['exit-with-stdin']) {
  // the test harness holds our stdin open: exit when it goes away, even if it was killed
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
