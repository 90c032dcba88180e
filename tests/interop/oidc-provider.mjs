// A real OpenID provider (panva/oidc-provider v9) on 127.0.0.1 for the tower-auth-oidc interop test.
//
// One confidential client may use the client_credentials grant; access tokens for the
// resource indicator RESOURCE are JWTs (RFC 9068, typ at+jwt) signed with ES256 or RS256.
// A second, public native client (RFC 8252) logs a person in: authorization code with PKCE to
// a loopback redirect URI (any port) or the device flow (RFC 8628), refresh tokens,
// revocation; the development login and consent forms (devInteractions) and the device
// flow's own pages stand in for the person.
// With INTEROP_OPAQUE=1 those access tokens are opaque instead, and the client may
// introspect them (RFC 7662), as a resource server would.
// Prints one JSON line {"issuer", "port", "client_id", "client_secret", "resource",
// "cli_client_id"} once listening, then serves until stdin closes or the process is killed.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const RESOURCE = 'urn:auth-interop:api';
const CLIENT_ID = 'interop-client';
const CLIENT_SECRET = 'interop-secret-d3b07384d113edec49eaa6238ad5ff00';
const CLI_CLIENT_ID = 'interop-cli';
const ALG = process.env.INTEROP_ALG || 'ES256';
// Opt-in (INTEROP_MTLS=1): RFC 8705 certificate-bound access tokens for a third client that
// authenticates with its TLS certificate (tls_client_auth, subject CN=interop-mtls). The
// provider speaks plain HTTP behind the test's TLS-terminating proxy, which forwards the
// client certificate as a url-encoded PEM in x-ssl-client-cert.
const MTLS = process.env.INTEROP_MTLS === '1';
const MTLS_CLIENT_ID = 'interop-mtls';
// Opt-in (the introspection test asks for it): access tokens for RESOURCE are opaque, and
// the introspection endpoint (RFC 7662) is on, for the confidential client.
const OPAQUE = process.env.INTEROP_OPAQUE === '1';

function jwk(kind, kid) {
  const { privateKey } = kind === 'RSA'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }, {
    client_id: CLI_CLIENT_ID,
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  }, ...(MTLS ? [{
    client_id: MTLS_CLIENT_ID,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: `CN=${MTLS_CLIENT_ID}`,
    tls_client_certificate_bound_access_tokens: true,
  }] : [])],
  ...(MTLS ? {
    clientAuthMethods: ['client_secret_basic', 'client_secret_jwt', 'client_secret_post',
      'private_key_jwt', 'none', 'tls_client_auth'],
  } : {}),
  // A refresh token whenever the client may use one (offline_access alone would need
  // prompt=consent, OpenID Connect Core section 11).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  jwks: { keys: [jwk('EC', 'interop-ec'), jwk('RSA', 'interop-rsa')] },
  scopes: ['openid', 'offline_access', 'orders:read', 'orders:write'],
  features: {
    // DPoP (RFC 9449) only for the suite that asks (tests/tests/interop_dpop.rs): tokens
    // requested with a proof are then bound to its key (cnf.jkt).
    ...(process.env.INTEROP_DPOP === '1' ? { dPoP: { enabled: true } } : {}),
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: OPAQUE },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    ...(MTLS ? {
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        getCertificate: (ctx) => {
          const header = ctx.get('x-ssl-client-cert');
          return header ? decodeURIComponent(header) : undefined;
        },
        // The proxy verified the chain against the test CA.
        certificateAuthorized: () => true,
        certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_subject_dn'
          && new X509Certificate(decodeURIComponent(ctx.get('x-ssl-client-cert'))).subject === expected,
      },
    } : {}),
    resourceIndicators: {
      enabled: true,
      // The person's login asks for no resource: its access token is the provider's own.
      defaultResource: (ctx, client) => (client.clientId === CLI_CLIENT_ID ? undefined : RESOURCE),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Error('unknown resource');
        }
        return {
          scope: 'orders:read orders:write',
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: OPAQUE ? 'opaque' : 'jwt',
          jwt: { sign: { alg: ALG } },
        };
      },
    },
  },
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({
  issuer, port, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, resource: RESOURCE,
  cli_client_id: CLI_CLIENT_ID, ...(MTLS ? { mtls_client_id: MTLS_CLIENT_ID } : {}),
})}\n`);

// Stdout carries only that line: its reader stops there, so later notes (the development
// interactions log to stdout) would fail with EPIPE and bring the provider down.
console.log = console.info = console.warn = (...args) => console.error(...args);

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
