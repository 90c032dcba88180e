// The client side of MCP authorization discovery, done by the MCP TypeScript SDK
// (@modelcontextprotocol/sdk) against a server URL given as the first argument: a bare
// request, the resource_metadata URL from its 401 (RFC 9728 section 5.1), the protected
// resource metadata and the authorization server's metadata; then the same discovery
// without the hint (the SDK's path-aware probing of the well-known URL). Prints one JSON
// line with what it found, or {"error": "..."}.
import {
  discoverOAuthServerInfo,
  extractWWWAuthenticateParams,
  selectResourceURL,
} from '@modelcontextprotocol/sdk/client/auth.js';

const serverUrl = process.argv[2];

try {
  const bare = await fetch(serverUrl);
  await bare.body?.cancel();
  const { resourceMetadataUrl } = extractWWWAuthenticateParams(bare);
  const hinted = await discoverOAuthServerInfo(serverUrl, { resourceMetadataUrl });
  const probed = await discoverOAuthServerInfo(serverUrl);
  const resource = await selectResourceURL(serverUrl, {}, hinted.resourceMetadata);
  console.log(JSON.stringify({
    status: bare.status,
    resource_metadata_url: resourceMetadataUrl?.href ?? null,
    resource_metadata: hinted.resourceMetadata ?? null,
    authorization_server: hinted.authorizationServerUrl,
    authorization_server_issuer: hinted.authorizationServerMetadata?.issuer ?? null,
    token_endpoint: hinted.authorizationServerMetadata?.token_endpoint ?? null,
    probed_resource: probed.resourceMetadata?.resource ?? null,
    probed_authorization_server: probed.authorizationServerUrl,
    selected_resource: resource?.href ?? null,
  }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error) }));
}
