// A real OpenID provider (panva/oidc-provider v9) on 127.0.0.1 for the tower-auth-oidc interop test.
//
// One confidential client may use the client_credentials grant; access tokens for the
// resource indicator RESOURCE are JWTs (RFC 9068, typ at+jwt) signed with ES256 or RS256.
// Prints one JSON line {"issuer", "port", "client_id", "client_secret", "resource"} once
// listening, then serves until stdin closes or the process is killed.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const RESOURCE = 'urn:auth-interop:api';
const CLIENT_ID = 'interop-client';
const CLIENT_SECRET = 'interop-secret-d3b07384d113edec49eaa6238ad5ff00';
const ALG = process.env.INTEROP_ALG || 'ES256';

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
  }],
  jwks: { keys: [jwk('EC', 'interop-ec'), jwk('RSA', 'interop-rsa')] },
  scopes: ['orders:read', 'orders:write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Error('unknown resource');
        }
        return {
          scope: 'orders:read orders:write',
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: ALG } },
        };
      },
    },
  },
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({
  issuer, port, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, resource: RESOURCE,
})}\n`);

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
