//! RFC 9728 protected resource metadata: the document the layer serves at
//! `/.well-known/oauth-protected-resource` when it knows its resource identifier
//! (`AUTH_RESOURCE`, [`AuthLayerBuilder::resource`](crate::AuthLayerBuilder::resource)), and
//! the `resource_metadata` parameter every challenge then carries (section 5.1), so that a
//! client (an MCP client, say) finds the authorization server from a bare 401.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use tower_auth_core::ConfigError;

use crate::response::ResponseBody;
use crate::rules::Rules;

/// The well-known path of RFC 9728 section 3.
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The protected resource: its identifier, where its metadata is served, and the document.
#[derive(Clone, Debug)]
pub(crate) struct Resource {
    identifier: Arc<str>,
    /// The metadata's URL, as sent in `resource_metadata`: the path-suffixed form when the
    /// identifier has a path (RFC 9728 section 3.1).
    metadata_url: Arc<str>,
    /// The paths served: the well-known path, and the path-suffixed one.
    paths: Vec<Box<str>>,
    authorization_servers: Vec<String>,
    /// Scopes given in code; otherwise the roles the rules name.
    scopes: Option<Vec<String>>,
    document: Bytes,
}

impl Resource {
    /// Checks a resource identifier: an absolute `https` URL (or `http` to a loopback host)
    /// with a host, and no user information, query or fragment.
    pub(crate) fn parse(setting: &str, identifier: &str) -> Result<Self, ConfigError> {
        let refuse = |why: &str| Err(ConfigError::new(setting, why));
        // Checked on the text: `Uri` drops a fragment's meaning into an invalid character.
        if identifier.contains('#') {
            return refuse("must not have a fragment (RFC 9728 section 1.2)");
        }
        // The URL goes inside a quoted-string of the challenge.
        if !identifier
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return refuse("must be printable ASCII without quotes or backslashes");
        }
        let Ok(uri) = identifier.parse::<Uri>() else {
            return refuse("is not a URL");
        };
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return refuse("must be an absolute https URL");
        };
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return refuse("must name a host, without user information");
        }
        if uri.query().is_some() {
            return refuse("must not have a query");
        }
        match scheme {
            "https" => {}
            "http" if is_loopback(authority.host()) => {}
            "http" => return refuse("must be https (plain http only to a loopback host)"),
            _ => return refuse("must be an https URL"),
        }
        let path = uri.path().trim_start_matches('/');
        let mut paths: Vec<Box<str>> = vec![RESOURCE_METADATA_PATH.into()];
        let metadata_path = if path.is_empty() {
            RESOURCE_METADATA_PATH.to_owned()
        } else {
            let suffixed = format!("{RESOURCE_METADATA_PATH}/{path}");
            paths.push(suffixed.as_str().into());
            suffixed
        };
        Ok(Self {
            identifier: identifier.into(),
            metadata_url: format!("{scheme}://{authority}{metadata_path}").into(),
            paths,
            authorization_servers: Vec::new(),
            scopes: None,
            document: Bytes::new(),
        })
    }

    /// Adds an authorization server (an issuer identifier), once.
    pub(crate) fn authorization_server(&mut self, issuer: &str) {
        if !self.authorization_servers.iter().any(|s| s == issuer) {
            self.authorization_servers.push(issuer.to_owned());
        }
    }

    /// Replaces the scopes the rules would give.
    pub(crate) fn scopes(&mut self, scopes: Vec<String>) {
        self.scopes = Some(scopes);
    }

    pub(crate) fn metadata_url(&self) -> &Arc<str> {
        &self.metadata_url
    }

    /// Writes the document, with the roles `rules` name as `scopes_supported` unless scopes
    /// were given.
    pub(crate) fn render(&mut self, rules: &Rules) {
        let scopes: Vec<&str> = match &self.scopes {
            Some(scopes) => scopes.iter().map(String::as_str).collect(),
            None => rules.roles().into_iter().collect(),
        };
        let mut document = serde_json::Map::new();
        document.insert("resource".into(), (*self.identifier).into());
        if !self.authorization_servers.is_empty() {
            document.insert(
                "authorization_servers".into(),
                self.authorization_servers.clone().into(),
            );
        }
        if !scopes.is_empty() {
            document.insert("scopes_supported".into(), scopes.into());
        }
        // RFC 9728 names `header`, `body` and `query`; a token in a cookie is none of them,
        // and the other two are never read.
        document.insert("bearer_methods_supported".into(), vec!["header"].into());
        self.document = serde_json::Value::Object(document).to_string().into();
    }

    /// The metadata, for a request to one of its paths; `None` for any other path.
    pub(crate) fn answer<B>(&self, request: &Request<B>) -> Option<Response<ResponseBody<()>>> {
        let path = request.uri().path();
        if !self.paths.iter().any(|p| **p == *path) {
            return None;
        }
        let mut response = Response::new(ResponseBody::fixed(None));
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(response);
        }
        *response.body_mut() = ResponseBody::fixed(Some(self.document.clone()));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Public metadata: a browser client on another origin may read it (RFC 9728 section 3).
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        Some(response)
    }
}

/// `AUTH_RESOURCE`, with `issuers` (the `OIDC_CONFIG` issuers) as its authorization servers.
pub(crate) fn from_env<'a>(
    vars: &crate::env::Vars<'_>,
    issuers: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Resource>, ConfigError> {
    let (name, Some(value)) = vars.read("AUTH_RESOURCE") else {
        return Ok(None);
    };
    let mut resource = Resource::parse(&name, value.trim())?;
    for issuer in issuers {
        resource.authorization_server(issuer);
    }
    Ok(Some(resource))
}

/// Whether `host` names this machine: the rule of `tower_auth_http::is_loopback` (`localhost`
/// in any case, `127.0.0.0/8`, `[::1]`; not `localhost.` nor `127.1`), which a test compares
/// with it. Kept here so that a layer without OIDC needs no HTTP client.
fn is_loopback(host: &str) -> bool {
    let ip = match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .strip_suffix(']')
            .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
            .map(std::net::IpAddr::V6),
        None => host.parse::<std::net::IpAddr>().ok(),
    };
    match ip {
        Some(ip) => ip.is_loopback(),
        None => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Resource, String> {
        Resource::parse("AUTH_RESOURCE", url).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        for (resource, url, paths) in [
            (
                "https://api.example.com",
                "https://api.example.com/.well-known/oauth-protected-resource",
                1,
            ),
            (
                "https://api.example.com/",
                "https://api.example.com/.well-known/oauth-protected-resource",
                1,
            ),
            (
                "https://api.example.com:8443/v1/mcp",
                "https://api.example.com:8443/.well-known/oauth-protected-resource/v1/mcp",
                2,
            ),
            (
                "http://127.0.0.1:3000/mcp",
                "http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp",
                2,
            ),
        ] {
            let r = parse(resource).unwrap();
            assert_eq!(&*r.metadata_url, url, "{resource}");
            assert_eq!(r.paths.len(), paths, "{resource}");
        }
    }

    #[test]
    fn only_https_or_loopback_http_urls_without_query_fragment_or_user() {
        for bad in [
            "http://api.example.com",
            "http://localhost.:80",
            "http://127.1",
            "ftp://api.example.com",
            "https://api.example.com/#x",
            "https://api.example.com/?tenant=a",
            "https://api.example.com/a\"b",
            "https://api.example.com/a\\b",
            "https://api.example.com/a b",
            "https://api.example.com/é",
            "https://user@api.example.com",
            "/mcp",
            "api.example.com",
            "",
            "https://",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for good in [
            "http://localhost:1",
            "http://[::1]:2/x",
            "https://a.example",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_loopback_rule_is_the_idp_clients() {
        for host in [
            "localhost",
            "LocalHost",
            "localhost.",
            "api.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "127.1",
            "[::1]",
            "::1",
            "[::ffff:127.0.0.1]",
            "10.0.0.1",
            "example.com",
            "",
        ] {
            assert_eq!(
                is_loopback(host),
                tower_auth_http::is_loopback(host),
                "{host}"
            );
        }
    }

    #[test]
    fn the_document_names_the_resource_servers_and_the_roles_of_the_rules() {
        let mut rules = Rules::default();
        let requirement = |roles: &[&str]| {
            Arc::new(
                crate::rules::RoleRequirement::new(
                    false,
                    roles.iter().map(|r| (*r).to_owned()).collect(),
                )
                .unwrap(),
            )
        };
        rules
            .require("/orders", requirement(&["orders:read", "orders:write"]))
            .unwrap();
        rules
            .require("/pkg.Admin/*", requirement(&["orders:read", "admin"]))
            .unwrap();
        let mut r = parse("https://api.example.com/mcp").unwrap();
        r.authorization_server("https://idp.example");
        r.authorization_server("https://idp.example");
        r.render(&rules);
        let document: serde_json::Value = serde_json::from_slice(&r.document).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "resource": "https://api.example.com/mcp",
                "authorization_servers": ["https://idp.example"],
                "scopes_supported": ["admin", "orders:read", "orders:write"],
                "bearer_methods_supported": ["header"],
            })
        );
        r.scopes(vec!["mcp".into()]);
        r.render(&Rules::default());
        let document: serde_json::Value = serde_json::from_slice(&r.document).unwrap();
        assert_eq!(document["scopes_supported"], serde_json::json!(["mcp"]));
        let mut bare = parse("https://api.example.com").unwrap();
        bare.render(&Rules::default());
        let document: serde_json::Value = serde_json::from_slice(&bare.document).unwrap();
        assert!(document.get("authorization_servers").is_none());
        assert!(document.get("scopes_supported").is_none());
    }
}
