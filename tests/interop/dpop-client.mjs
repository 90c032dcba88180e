// An independent DPoP client (the npm `dpop` package, panva) for tests/tests/interop_dpop.rs:
// makes an ES256 key, gets a DPoP-bound access token from oidc-provider's token endpoint
// (client_credentials, answering a use_dpop_nonce challenge once), then makes one proof per
// target for that token. Input: one JSON object on stdin {token_url, client_id,
// client_secret, resource, targets: [[htm, htu], ...]}. Output: one JSON line
// {access_token, token_type, jkt, proofs: [...]}.
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);

const keypair = await generateKeyPair('ES256');
const basic = Buffer.from(`${request.client_id}:${request.client_secret}`).toString('base64');
const form = new URLSearchParams({ grant_type: 'client_credentials', resource: request.resource });

async function tokenRequest(nonce) {
  return fetch(request.token_url, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
      dpop: await generateProof(keypair, request.token_url, 'POST', nonce),
    },
    body: form,
  });
}

let response = await tokenRequest();
if (response.status === 400 && response.headers.get('dpop-nonce')) {
  response = await tokenRequest(response.headers.get('dpop-nonce'));
}
const body = await response.json();
if (!response.ok) {
  throw new Error(`token request refused: ${JSON.stringify(body)}`);
}
const proofs = [];
for (const [htm, htu] of request.targets) {
  proofs.push(await generateProof(keypair, htu, htm, undefined, body.access_token));
}
process.stdout.write(`${JSON.stringify({
  access_token: body.access_token,
  token_type: body.token_type,
  jkt: await calculateThumbprint(keypair.publicKey),
  proofs,
})}\n`);
