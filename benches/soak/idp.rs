//! The soak's identity provider: discovery and JWKS over plain HTTP on 127.0.0.1, with keys
//! and outages under the soak's control, and a record of every key set it served.
//!
//! Every response closes its connection, so that "down" is down for the next fetch (no
//! pooled connection outlives an outage), and every JWKS document served is recorded with the
//! instant it was handed to the connection: the demo cannot hold a key set before that
//! instant, which is what [`crate::model`] judges OIDC answers by.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::watch;

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Private {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key and its public JWK. Keys cycle through RS256, ES256 and EdDSA.
pub(crate) struct Key {
    pub(crate) kid: String,
    alg: &'static str,
    private: Private,
    jwk: Value,
}

impl Key {
    /// Key number `n`: RS256 (RSA 2048), ES256 or EdDSA by `n % 3`.
    pub(crate) fn generate(kid: String, n: usize) -> Self {
        match n % 3 {
            0 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                                 "n": b64(&public.n), "e": b64(&public.e)});
                Self {
                    kid,
                    alg: "RS256",
                    private: Private::Rsa(pair),
                    jwk,
                }
            }
            1 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
                let point = pair.public_key().as_ref();
                let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                                 "alg": "ES256", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
                Self {
                    kid,
                    alg: "ES256",
                    private: Private::Ec(pair),
                    jwk,
                }
            }
            _ => {
                let pair = Ed25519KeyPair::generate().unwrap();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                                 "alg": "EdDSA", "x": b64(pair.public_key().as_ref())});
                Self {
                    kid,
                    alg: "EdDSA",
                    private: Private::Ed(pair),
                    jwk,
                }
            }
        }
    }

    /// A token with these claims, signed by this key, with `alg` and `kid` in the header.
    pub(crate) fn mint(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg, "typ": "JWT", "kid": self.kid});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let rng = SystemRandom::new();
        let sig = match &self.private {
            Private::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
            Private::Ec(pair) => pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Private::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(sig))
    }
}

/// How the IdP answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Up,
    /// Accepts connections and closes them unanswered.
    Close,
    /// Not listening at all: connections are refused.
    Refuse,
    /// 503 with `Retry-After: 1`.
    Unavailable,
    /// 200 with an HTML page instead of JSON.
    Garbage,
    /// Reads the request and answers nothing for 20 s (past the demo's 5 s read timeout).
    Hang,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Close => "close",
            Self::Refuse => "refuse",
            Self::Unavailable => "503",
            Self::Garbage => "garbage",
            Self::Hang => "hang",
        }
    }
}

/// A JWKS document as served: when, and which kids it held.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub(crate) at: Instant,
    pub(crate) kids: Arc<[String]>,
}

struct Shared {
    issuer: String,
    published: Mutex<Vec<Arc<Key>>>,
    mode: watch::Sender<Mode>,
    served: Mutex<Vec<Served>>,
    /// JWKS requests answered otherwise than with the key set (any outage mode).
    refused: Mutex<u64>,
}

/// The running IdP; the server task ends with the process.
#[derive(Clone)]
pub(crate) struct Idp {
    shared: Arc<Shared>,
}

impl Idp {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            published: Mutex::new(Vec::new()),
            mode: watch::Sender::new(Mode::Up),
            served: Mutex::new(Vec::new()),
            refused: Mutex::new(0),
        });
        tokio::spawn(serve(Arc::clone(&shared), listener, addr));
        Self { shared }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub(crate) fn set_published(&self, keys: Vec<Arc<Key>>) {
        *self.shared.published.lock().unwrap() = keys;
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// Every key set served so far, oldest first.
    pub(crate) fn served(&self) -> Vec<Served> {
        self.shared.served.lock().unwrap().clone()
    }

    /// Calls `f` with the served history without copying it.
    pub(crate) fn with_served<R>(&self, f: impl FnOnce(&[Served]) -> R) -> R {
        f(&self.shared.served.lock().unwrap())
    }

    pub(crate) fn refused(&self) -> u64 {
        *self.shared.refused.lock().unwrap()
    }
}

async fn serve(shared: Arc<Shared>, first: tokio::net::TcpListener, addr: SocketAddr) {
    let mut listener = Some(first);
    let mut mode = shared.mode.subscribe();
    loop {
        let refusing = *mode.borrow_and_update() == Mode::Refuse;
        if refusing {
            listener = None;
            let _ = mode.changed().await;
            continue;
        }
        let current = match listener.take() {
            Some(l) => l,
            // The port again, once it can be bound (SO_REUSEADDR is set by tokio).
            None => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::select! {
            accepted = current.accept() => {
                if let Ok((stream, _)) = accepted {
                    if *shared.mode.borrow() == Mode::Close {
                        *shared.refused.lock().unwrap() += 1;
                        drop(stream);
                    } else {
                        let shared = Arc::clone(&shared);
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |request| {
                                respond(Arc::clone(&shared), request)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(false)
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                }
                listener = Some(current);
            }
            _ = mode.changed() => {
                // Re-read the mode at the top; a Refuse drops `current` there.
                listener = Some(current);
            }
        }
    }
}

async fn respond(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: u16, kind: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", kind)
            .header("connection", "close")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let mode = *shared.mode.borrow();
    let path = request.uri().path().to_owned();
    let response = match mode {
        Mode::Up | Mode::Close | Mode::Refuse => match path.as_str() {
            "/.well-known/openid-configuration" => reply(
                200,
                "application/json",
                json!({"issuer": shared.issuer, "jwks_uri": format!("{}/jwks", shared.issuer),
                       "response_types_supported": ["code"],
                       "subject_types_supported": ["public"],
                       "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]})
                .to_string(),
            ),
            "/jwks" => {
                // Under the history's lock: the instant recorded is before the demo can
                // read a byte of this body, and a judge reading the history after an
                // instant sees every document served before it.
                let mut served = shared.served.lock().unwrap();
                let keys = shared.published.lock().unwrap().clone();
                let body = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
                served.push(Served {
                    at: Instant::now(),
                    kids: keys.iter().map(|k| k.kid.clone()).collect(),
                });
                reply(200, "application/json", body.to_string())
            }
            _ => reply(404, "application/json", r#"{"error":"not_found"}"#.into()),
        },
        Mode::Unavailable => {
            *shared.refused.lock().unwrap() += 1;
            let mut r = reply(503, "application/json", r#"{"error":"unavailable"}"#.into());
            r.headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("1"));
            r
        }
        Mode::Garbage => {
            *shared.refused.lock().unwrap() += 1;
            reply(
                200,
                "text/html",
                "<html><body>maintenance</body></html>".into(),
            )
        }
        Mode::Hang => {
            *shared.refused.lock().unwrap() += 1;
            tokio::time::sleep(Duration::from_secs(20)).await;
            reply(503, "application/json", r#"{"error":"unavailable"}"#.into())
        }
    };
    Ok(response)
}
