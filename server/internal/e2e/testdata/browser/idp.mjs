// An OpenID Connect provider for the browser tests: oidc-provider with its
// built-in login form ("devInteractions": any password), one confidential
// client for the Temporal UI server, and JWT access tokens carrying the
// "permissions" claim that temporal-opa's claim mapper reads.
//
//   node idp.mjs            (environment below)
//
// REDIRECT_URI  the UI server's callback URL (http://localhost:PORT/auth/sso/callback)
// CLIENT_ID, CLIENT_SECRET  the UI server's client (defaults temporal-ui / temporal-ui-secret)
// AUDIENCE      aud of the access tokens (default temporal)
// USERS         JSON object: login name -> permissions, e.g. {"reader": ["default:read"]}
// TOKEN_TTL     seconds, access and ID tokens alike (default 3600)
//
// It listens on a free loopback port and prints "ISSUER http://localhost:PORT"
// once ready; SIGTERM stops it.
import http from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const users = JSON.parse(env.USERS ?? '{}');
const audience = env.AUDIENCE ?? 'temporal';
const ttl = Number(env.TOKEN_TTL ?? 3600);
if (!env.REDIRECT_URI) {
  console.error('idp.mjs: REDIRECT_URI is required');
  process.exit(2);
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://localhost:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: env.CLIENT_ID ?? 'temporal-ui',
    client_secret: env.CLIENT_SECRET ?? 'temporal-ui-secret',
    redirect_uris: [env.REDIRECT_URI],
    post_logout_redirect_uris: [new URL('/', env.REDIRECT_URI).toString()],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  // Accounts: the login name is the subject; unknown names are refused.
  async findAccount(ctx, id) {
    if (!Object.hasOwn(users, id)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: id, email: `${id}@example.test` };
      },
    };
  },
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  features: {
    devInteractions: { enabled: true },
    // A resource indicator (an absolute URI) makes access tokens JWTs, with
    // aud = audience (they are opaque otherwise).
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:temporal-opa:frontend',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid profile email offline_access',
        audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: ttl,
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
    rpInitiatedLogout: { enabled: true },
  },
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken') return undefined;
    return { permissions: users[token.accountId] ?? [] };
  },
  issueRefreshToken: async () => true,
  ttl: {
    AccessToken: ttl,
    IdToken: ttl,
    Grant: 3600,
    Session: 3600,
    Interaction: 600,
    RefreshToken: 86400,
  },
  jwks: { keys: [JSON.parse(await generateKey())] },
  cookies: { keys: ['temporal-opa-browser-test'] },
  pkce: { required: () => false },
});
// oidc-provider warns about its development-only interactions; expected here.
provider.on('server_error', (ctx, err) => console.error('idp.mjs: server_error', err));

server.on('request', provider.callback());
console.log(`ISSUER ${issuer}`);

process.on('SIGTERM', () => server.close(() => process.exit(0)));

async function generateKey() {
  const { generateKeyPairSync } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return JSON.stringify({ ...jwk, kid: 'idp-es256', use: 'sig', alg: 'ES256' });
}
