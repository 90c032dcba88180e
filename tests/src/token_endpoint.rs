//! A client_credentials token endpoint for the test IdP (issue 6).
//!
//! A real HTTP server on 127.0.0.1:0 implementing RFC 6749 section 4.4 at [`TOKEN_PATH`]:
//! client_secret_basic and client_secret_post, the `scope`, `audience` and RFC 8707
//! `resource` parameters recorded per request, counters, and switches for an endpoint that is
//! down, failing with 5xx, or rejecting every secret. It also serves a discovery document
//! (`issuer` = its own address, `token_endpoint`). Tokens are opaque (`opaque-<n>-<random>`)
//! or, with [`TokenEndpoint::start_jwt`], ES256/RS256 JWTs signed by a [`SigningKey`] that a
//! [`TestIdp`](crate::idp::TestIdp) publishes, so that the OIDC authenticator accepts them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::idp::{DISCOVERY_PATH, SigningKey};

pub const TOKEN_PATH: &str = "/token";
/// Where RFC 8414 puts an authorization server's metadata (for an issuer without a path).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// What one token request carried (never the secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// `client_secret_basic`, `client_secret_post`, or `none`.
    pub auth_method: String,
    pub client_id: Option<String>,
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub resources: Vec<String>,
    /// RFC 8693: the type of the subject token presented, and the type asked for.
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
}

/// JWT minting: the key, `iss` and `aud` of issued tokens.
struct JwtIssuer {
    key: SigningKey,
    issuer: String,
    audience: String,
}

struct Shared {
    issuer: String,
    clients: HashMap<String, String>,
    jwt: Option<JwtIssuer>,
    expires_in: Mutex<Option<u64>>,
    down: Mutex<bool>,
    status: Mutex<Option<(u16, Option<u64>)>>,
    reject_all: Mutex<bool>,
    discovery_issuer: Mutex<Option<String>>,
    /// Serve the metadata only where RFC 8414 puts it, as an OAuth-only server does.
    rfc8414_only: Mutex<bool>,
    recorded: Mutex<Vec<TokenRequest>>,
    /// Refresh tokens that may still be used, once each (rotation), and by which client.
    refresh_tokens: Mutex<HashMap<String, String>>,
    /// Access tokens issued, which a token exchange (RFC 8693) accepts as subject tokens.
    access_tokens: Mutex<std::collections::HashSet<String>>,
    issued: AtomicU64,
    discovery_requests: AtomicU64,
    token_requests: watch::Sender<u64>,
    connections: AtomicU64,
}

/// A running token endpoint; stops serving when dropped.
pub struct TokenEndpoint {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::AbortHandle,
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenEndpoint {
    /// An endpoint for these `(client_id, client_secret)` pairs issuing opaque tokens that
    /// live an hour.
    pub async fn start(clients: &[(&str, &str)]) -> Self {
        Self::launch(clients, None).await
    }

    /// An endpoint issuing JWTs signed by `key`, with `iss` = `issuer`, `aud` = `audience`,
    /// `sub` = the client id, and `scope` as requested.
    pub async fn start_jwt(
        clients: &[(&str, &str)],
        key: SigningKey,
        issuer: &str,
        audience: &str,
    ) -> Self {
        let jwt = JwtIssuer {
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        };
        Self::launch(clients, Some(jwt)).await
    }

    async fn launch(clients: &[(&str, &str)], jwt: Option<JwtIssuer>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            clients: clients
                .iter()
                .map(|(id, secret)| ((*id).to_owned(), (*secret).to_owned()))
                .collect(),
            jwt,
            expires_in: Mutex::new(Some(3600)),
            down: Mutex::new(false),
            status: Mutex::new(None),
            reject_all: Mutex::new(false),
            discovery_issuer: Mutex::new(None),
            rfc8414_only: Mutex::new(false),
            recorded: Mutex::default(),
            refresh_tokens: Mutex::default(),
            access_tokens: Mutex::default(),
            issued: AtomicU64::new(0),
            discovery_requests: AtomicU64::new(0),
            token_requests: watch::Sender::new(0),
            connections: AtomicU64::new(0),
        });
        let admit_shared = Arc::clone(&shared);
        let respond_shared = Arc::clone(&shared);
        let task = crate::serve_each_connection(
            listener,
            None,
            move || {
                admit_shared.connections.fetch_add(1, Ordering::SeqCst);
                !*admit_shared.down.lock().unwrap()
            },
            move |request| respond(Arc::clone(&respond_shared), request),
        );
        Self { shared, addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, as its discovery document names it.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.shared.issuer)
    }

    /// The `expires_in` of issued tokens (`None`: omitted). Default 3600.
    pub fn set_expires_in(&self, secs: Option<u64>) {
        *self.shared.expires_in.lock().unwrap() = secs;
    }

    /// Down: connections are accepted and closed at once.
    pub fn set_down(&self, down: bool) {
        *self.shared.down.lock().unwrap() = down;
    }

    /// Every request answered with this status (and `Retry-After` seconds), or normally again.
    pub fn set_status(&self, status: Option<(u16, Option<u64>)>) {
        *self.shared.status.lock().unwrap() = status;
    }

    /// Every secret is wrong: 401 `invalid_client`.
    pub fn set_reject_all(&self, reject: bool) {
        *self.shared.reject_all.lock().unwrap() = reject;
    }

    /// The discovery document names another issuer (or, with `None`, this one again).
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        *self.shared.discovery_issuer.lock().unwrap() = issuer;
    }

    /// Serves the document only at RFC 8414's [`METADATA_PATH`], answering 404 at the OpenID
    /// Connect discovery path, as an OAuth 2.0 server without OpenID Connect does.
    pub fn serve_rfc8414_only(&self) {
        *self.shared.rfc8414_only.lock().unwrap() = true;
    }

    /// A refresh token for `client_id`, as a login would have given it: usable once (each
    /// refresh_token grant answers with a new one and spends the old).
    pub fn issue_refresh_token(&self, client_id: &str) -> String {
        let token = format!("refresh-{}", crate::idp::b64(rand_bytes()));
        self.shared
            .refresh_tokens
            .lock()
            .unwrap()
            .insert(token.clone(), client_id.to_owned());
        token
    }

    /// Requests to [`TOKEN_PATH`] (refused ones included; not those closed while down).
    pub fn token_requests(&self) -> u64 {
        *self.shared.token_requests.borrow()
    }

    /// Waits until at least `n` token requests have arrived.
    pub async fn wait_for_token_requests(&self, n: u64) {
        let mut rx = self.shared.token_requests.subscribe();
        let _ = rx.wait_for(|&seen| seen >= n).await;
    }

    /// Tokens issued.
    pub fn issued(&self) -> u64 {
        self.shared.issued.load(Ordering::SeqCst)
    }

    pub fn discovery_requests(&self) -> u64 {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// Connections accepted, including those closed at once while down.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every token request so far, in order.
    pub fn recorded(&self) -> Vec<TokenRequest> {
        self.shared.recorded.lock().unwrap().clone()
    }

    pub fn last_request(&self) -> TokenRequest {
        self.recorded().pop().expect("a token request was made")
    }
}

fn reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn respond(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    if path == DISCOVERY_PATH || path == METADATA_PATH {
        shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
        let served = if *shared.rfc8414_only.lock().unwrap() {
            METADATA_PATH
        } else {
            DISCOVERY_PATH
        };
        if path != served {
            return Ok(reply(404, &json!({"error": "not_found"})));
        }
        let issuer = shared
            .discovery_issuer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| shared.issuer.clone());
        let status = *shared.status.lock().unwrap();
        if let Some((status, _)) = status {
            return Ok(reply(status, &json!({"error": "server_error"})));
        }
        return Ok(reply(
            200,
            &json!({"issuer": issuer, "token_endpoint": format!("{}{TOKEN_PATH}", shared.issuer),
                    "grant_types_supported": ["client_credentials"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]}),
        ));
    }
    if path != TOKEN_PATH {
        return Ok(reply(404, &json!({"error": "not_found"})));
    }
    shared.token_requests.send_modify(|n| *n += 1);
    let status = *shared.status.lock().unwrap();
    if let Some((status, retry_after)) = status {
        let mut response = reply(status, &json!({"error": "server_error"}));
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
        }
        return Ok(response);
    }
    let basic = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(str::to_owned);
    let form_type = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/x-www-form-urlencoded");
    let post = request.method() == http::Method::POST;
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let params = parse_form(&body);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut recorded = TokenRequest {
        auth_method: "none".into(),
        grant_type: param("grant_type"),
        subject_token_type: param("subject_token_type"),
        requested_token_type: param("requested_token_type"),
        scope: param("scope"),
        audience: param("audience"),
        resources: params
            .iter()
            .filter(|(k, _)| k == "resource")
            .map(|(_, v)| v.clone())
            .collect(),
        ..TokenRequest::default()
    };
    let credentials = match (&basic, param("client_secret")) {
        (Some(_), Some(_)) => None, // RFC 6749 section 2.3: one method only
        (Some(encoded), None) => {
            recorded.auth_method = "client_secret_basic".into();
            decode_basic(encoded)
        }
        (None, Some(secret)) => {
            recorded.auth_method = "client_secret_post".into();
            param("client_id").map(|id| (id, secret))
        }
        (None, None) => None,
    };
    recorded.client_id = credentials
        .as_ref()
        .map(|(id, _)| id.clone())
        .or_else(|| param("client_id"));
    shared.recorded.lock().unwrap().push(recorded.clone());

    if !post || !form_type {
        return Ok(reply(400, &json!({"error": "invalid_request"})));
    }
    let Some((client_id, secret)) = credentials else {
        let mut response = reply(401, &json!({"error": "invalid_client"}));
        response
            .headers_mut()
            .insert("www-authenticate", "Basic realm=\"token\"".parse().unwrap());
        return Ok(response);
    };
    let known = shared.clients.get(&client_id) == Some(&secret);
    if !known || *shared.reject_all.lock().unwrap() {
        return Ok(reply(
            401,
            &json!({"error": "invalid_client", "error_description": "client authentication failed"}),
        ));
    }
    // The refresh token grant (RFC 6749 section 6), rotating: the token presented is spent,
    // and the answer carries the next one.
    let mut next_refresh = None;
    match recorded.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some("refresh_token") => {
            let presented = param("refresh_token").unwrap_or_default();
            let mut live = shared.refresh_tokens.lock().unwrap();
            if live.get(&presented) != Some(&client_id) {
                return Ok(reply(
                    400,
                    &json!({"error": "invalid_grant", "error_description": "refresh token unknown, spent or of another client"}),
                ));
            }
            live.remove(&presented);
            let next = format!("refresh-{}", crate::idp::b64(rand_bytes()));
            live.insert(next.clone(), client_id.clone());
            next_refresh = Some(next);
        }
        // Token exchange (RFC 8693): the subject token must be one this endpoint issued.
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
            let subject = param("subject_token").unwrap_or_default();
            if recorded.subject_token_type.is_none()
                || !shared.access_tokens.lock().unwrap().contains(&subject)
            {
                return Ok(reply(
                    400,
                    &json!({"error": "invalid_grant", "error_description": "subject token not accepted"}),
                ));
            }
        }
        _ => return Ok(reply(400, &json!({"error": "unsupported_grant_type"}))),
    }
    let n = shared.issued.fetch_add(1, Ordering::SeqCst);
    let expires_in = *shared.expires_in.lock().unwrap();
    let access_token = match &shared.jwt {
        None => format!("opaque-{n}-{}", crate::idp::b64(rand_bytes())),
        Some(jwt) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let mut claims = json!({"iss": jwt.issuer, "sub": client_id, "aud": jwt.audience,
                                    "iat": now, "exp": now + expires_in.unwrap_or(3600),
                                    "jti": format!("jti-{n}"), "client_id": client_id});
            if let Some(scope) = &recorded.scope {
                claims["scope"] = json!(scope);
            }
            let mut header = jwt.key.header();
            header["typ"] = json!("at+jwt");
            jwt.key.mint(&header, &claims)
        }
    };
    shared
        .access_tokens
        .lock()
        .unwrap()
        .insert(access_token.clone());
    let mut body = json!({"access_token": access_token, "token_type": "Bearer"});
    if recorded.subject_token_type.is_some() {
        body["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
    }
    if let Some(next) = next_refresh {
        body["refresh_token"] = json!(next);
    }
    if let Some(secs) = expires_in {
        body["expires_in"] = json!(secs);
    }
    if let Some(scope) = &recorded.scope {
        body["scope"] = json!(scope);
    }
    Ok(reply(StatusCode::OK.as_u16(), &body))
}

fn rand_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes
}

/// `application/x-www-form-urlencoded` pairs: `+` is a space, `%XX` a byte.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            let name = form_decode(parts.next().unwrap_or_default());
            let value = form_decode(parts.next().unwrap_or_default());
            (name, value)
        })
        .collect()
}

/// Decodes one form-urlencoded component.
pub fn form_decode(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < text.len() => {
                let hex = std::str::from_utf8(&text[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1) -> (id, secret).
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((
        form_decode(&decoded[..colon]),
        form_decode(&decoded[colon + 1..]),
    ))
}
