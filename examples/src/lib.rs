//! The demo application, shared by the `demo` binary and the end-to-end tests.
#![allow(missing_docs)]

pub mod grpc;

use std::sync::OnceLock;

use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rand::RngCore;
use serde_json::{Value, json};
use tower_auth::{AuthLayer, RequireRolesLayer};
use tower_auth_core::Identity;

/// Roles `/metrics` needs, both of them.
pub const METRICS_ROLES: [&str; 2] = ["runtime.health:read", "runtime.metrics:read"];

/// The readiness probe's path: 503 until every OIDC issuer can validate; exempt.
pub const READY_PATH: &str = "/ready";

/// The Prometheus recorder the demo installed, which `GET /metrics` renders.
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder, once: its recorder
/// and handle only (no listener of its own, no push gateway), so that `GET /metrics` is
/// served by the router, behind the auth layer and its role rule.
pub fn install_prometheus() -> Result<(), String> {
    if PROMETHEUS.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
    // `install_recorder` leaves upkeep to the caller: without it every histogram sample is
    // kept until a scrape, and a demo nobody scrapes grows without bound (the soak of issue
    // 18 saw 31 MiB become 130 MiB in 10 minutes). SECURITY.md F19.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name(PROMETHEUS_UPKEEP.into())
        .spawn(move || {
            loop {
                std::thread::sleep(PROMETHEUS_UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| format!("cannot start the Prometheus upkeep thread: {e}"))?;
    let _ = PROMETHEUS.set(handle);
    Ok(())
}

/// The thread that drains the Prometheus recorder's histograms between scrapes.
pub const PROMETHEUS_UPKEEP: &str = "prom-upkeep";
/// How often it runs (the exporter's own default upkeep interval).
pub const PROMETHEUS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Name prefixes of the variables that configure authentication (`AUTH_MODE`,
/// `API_KEYS`, `API_KEY_HEADER`, `OIDC_CONFIG`, `HMAC_SECRET`, ...). One variable with any of
/// them, misspelt or not, turns the demo's demo mode off.
pub const CONFIG_PREFIXES: [&str; 4] = ["AUTH_", "API_KEY", "OIDC_", "HMAC_"];

/// How the demo starts, decided by [`startup`].
#[derive(Debug, PartialEq, Eq)]
pub enum Startup {
    /// No configuration variable at all: generated secrets, printed to the terminal.
    Demo,
    /// Configured from the environment; these are the variables that decided it, sorted.
    FromEnv(Vec<String>),
}

/// Demo mode or configuration from the environment, from the names of the variables set
/// and the addresses the demo will listen on (each with the variable that sets it).
///
/// Demo mode only when no variable name starts with one of [`CONFIG_PREFIXES`] (compared
/// without regard to case, so that `auth_mode` or `AUTH_MODEE` also count): a deployment
/// that sets one variable, or misspells one, is configured from the environment and fails
/// or warns as that configuration does, never silently runs on demo secrets. Demo mode on
/// an address other than loopback is an error: its secrets are printed for anyone to copy.
pub fn startup<N: AsRef<str>>(
    names: impl IntoIterator<Item = N>,
    listen: &[(&str, std::net::SocketAddr)],
) -> Result<Startup, String> {
    let mut configured: Vec<String> = names
        .into_iter()
        .map(|name| name.as_ref().to_owned())
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            CONFIG_PREFIXES.iter().any(|p| upper.starts_with(p))
        })
        .collect();
    if !configured.is_empty() {
        configured.sort();
        return Ok(Startup::FromEnv(configured));
    }
    for (variable, addr) in listen {
        if !addr.ip().to_canonical().is_loopback() {
            return Err(format!(
                "{variable}={addr} is not a loopback address, and no AUTH_*, API_KEY*, OIDC_* or \
                 HMAC_* variable is set: the demo would serve on the network with demo secrets \
                 that it prints. Configure authentication (for example API_KEYS, OIDC_CONFIG or \
                 HMAC_SECRET; see the README), or listen on 127.0.0.1 or [::1] for the demo."
            ));
        }
    }
    Ok(Startup::Demo)
}

/// The demo routes behind `auth`:
/// `GET /health` (public), `GET /whoami` (any identity), `GET /admin` (role `admin`),
/// `GET /metrics` (both [`METRICS_ROLES`]), `GET /ready` (public, the readiness probe), and
/// `POST /auth/token` and `POST /auth/revoke` when the layer has a token exchange.
pub fn router(auth: AuthLayer) -> Router {
    // A readiness probe carries no credential.
    let auth = auth
        .into_builder()
        .exempt(READY_PATH)
        .build()
        .expect("a valid path");
    let mut router = Router::new();
    // `POST /auth/token` and `POST /auth/revoke` when AUTH_TOKEN_CLIENTS is configured; the
    // layer exempts both. Inside the layer, so that an admin's bearer identity reaches the
    // revocation endpoint.
    if let Some(exchange) = auth.exchange_endpoint() {
        router = router.merge(exchange.clone().router());
    }
    if let Some(revoke) = auth.revocation_endpoint() {
        router = router.merge(revoke.clone().router());
    }
    router
        .route("/whoami", get(whoami))
        .route(
            "/admin",
            get(|| async { Json(json!({ "admin": true })) }).route_layer(
                RequireRolesLayer::any(["admin"])
                    .expect("a valid role")
                    .realm_of(&auth),
            ),
        )
        .route(
            "/metrics",
            get({
                let auth = auth.clone();
                move || metrics(auth.clone())
            })
            .route_layer(
                RequireRolesLayer::all(METRICS_ROLES)
                    .expect("valid roles")
                    .realm_of(&auth),
            ),
        )
        .route("/health", get(auth.health_handler()))
        .route(READY_PATH, get(auth.ready_handler()))
        .layer(auth)
}

async fn whoami(identity: Identity) -> Json<Value> {
    Json(json!({
        "subject": identity.subject(),
        "name": identity.name(),
        "method": identity.method().kind(),
        "authenticated_by": identity.method().to_string(),
        "roles": identity.roles(),
    }))
}

/// The Prometheus text of the installed recorder (nothing without one), gauges brought up
/// to date first.
async fn metrics(auth: AuthLayer) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    auth.record_gauges();
    let body = PROMETHEUS.get().map_or_else(String::new, |handle| {
        // Without the exporter's own listener, its upkeep (draining histogram buckets) is ours.
        handle.run_upkeep();
        handle.render()
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}

/// A new random key: 32 bytes from the OS generator, hex-encoded (64 characters).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The demo's HTTPS (`TLS_CERT_FILE`, `TLS_KEY_FILE`, `TLS_CLIENT_CA_FILE`): the server's
/// certificate chain and key (PEM), and, when a client CA is given, a request for a client
/// certificate signed by it. The certificate is asked for, not required (rustls
/// `allow_unauthenticated`): a client without one is still served, and only tokens bound to
/// a certificate (RFC 8705) need it. Errors name the variable.
pub fn tls_server_config(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
    client_ca_file: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;

    let certs = |variable: &str, path: &std::path::Path| {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{variable}: {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{variable}: {}: no certificate", path.display()));
        }
        Ok(certs)
    };
    let chain = certs("TLS_CERT_FILE", cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("TLS_KEY_FILE: {}: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs("TLS_CLIENT_CA_FILE", path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("TLS_CLIENT_CA_FILE: {}: {e}", path.display()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("TLS_CLIENT_CA_FILE: {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS_CERT_FILE / TLS_KEY_FILE: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the demo routes behind `auth` over TLS on `listener` until `stop` completes: each
/// request carries the connection's [`TlsPeer`](tower_auth::TlsPeer) (address and client
/// certificate), which the layer reads for certificate-bound tokens.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: std::sync::Arc<rustls::ServerConfig>,
    auth: AuthLayer,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(auth).into_make_service_with_connect_info::<tower_auth::TlsPeer>();
    axum::serve(tower_auth::tls::TlsListener::new(listener, config), app)
        .with_graceful_shutdown(stop)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn demo_mode_only_with_no_configuration_variable_and_on_loopback() {
        let local = [
            ("BIND_ADDR", addr("127.0.0.1:8080")),
            ("GRPC_ADDR", addr("[::1]:50051")),
        ];
        let from_env = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            names.sort();
            Ok(Startup::FromEnv(names))
        };
        let cases: &[(&[&str], Result<Startup, String>)] = &[
            (&[], Ok(Startup::Demo)),
            (
                &["PATH", "HOME", "BIND_ADDR", "RUST_LOG"],
                Ok(Startup::Demo),
            ),
            (&["AUTH_MODE"], from_env(&["AUTH_MODE"])),
            // SECURITY.md D1: one variable, or a misspelt one, is no demo.
            (&["AUTH_TOKEN_CLIENTS"], from_env(&["AUTH_TOKEN_CLIENTS"])),
            (&["AUTH_MODEE", "PATH"], from_env(&["AUTH_MODEE"])),
            (&["API_KEY"], from_env(&["API_KEY"])),
            (&["API_KEYS_FILE"], from_env(&["API_KEYS_FILE"])),
            (&["API_KEY_HEADER"], from_env(&["API_KEY_HEADER"])),
            (&["OIDC_CONFIGURATION"], from_env(&["OIDC_CONFIGURATION"])),
            (
                &["HMAC_SECRET_PREVIOUS"],
                from_env(&["HMAC_SECRET_PREVIOUS"]),
            ),
            (&["auth_mode"], from_env(&["auth_mode"])),
            (
                &["HMAC_SECRET", "AUTH_ADMINS"],
                from_env(&["AUTH_ADMINS", "HMAC_SECRET"]),
            ),
        ];
        for (names, expected) in cases {
            assert_eq!(&startup(names.iter(), &local), expected, "{names:?}");
        }
    }

    /// SECURITY.md D2.
    #[test]
    fn demo_mode_refuses_an_address_other_than_loopback() {
        for (variable, bad) in [
            ("BIND_ADDR", "0.0.0.0:8080"),
            ("BIND_ADDR", "[::]:0"),
            ("BIND_ADDR", "192.0.2.7:8080"),
            ("GRPC_ADDR", "0.0.0.0:50051"),
        ] {
            let mut listen = vec![
                ("BIND_ADDR", addr("127.0.0.1:0")),
                ("GRPC_ADDR", addr("127.0.0.1:0")),
            ];
            listen.retain(|(v, _)| *v != variable);
            listen.push((variable, addr(bad)));
            let error = startup(["PATH"], &listen).unwrap_err();
            assert!(
                error.contains(variable) && error.contains("loopback"),
                "{error}"
            );
        }
        // Loopback in every spelling is the demo.
        for good in [
            "127.0.0.1:0",
            "127.1.2.3:9",
            "[::1]:0",
            "[::ffff:127.0.0.1]:0",
        ] {
            let listen = [("BIND_ADDR", addr(good))];
            assert_eq!(startup(["PATH"], &listen), Ok(Startup::Demo), "{good}");
        }
        // Configured from the environment, any address is the deployment's choice.
        let listen = [("BIND_ADDR", addr("0.0.0.0:8080"))];
        assert_eq!(
            startup(["API_KEYS"], &listen),
            Ok(Startup::FromEnv(vec!["API_KEYS".to_owned()]))
        );
    }

    /// The upkeep threads of this process, by the name `install_prometheus` gives them.
    #[cfg(target_os = "linux")]
    fn upkeep_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == PROMETHEUS_UPKEEP)
            .count()
    }

    /// SECURITY.md F19.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_prometheus_recorder_is_kept_drained_between_scrapes() {
        install_prometheus().unwrap();
        // Without a thread draining them, the histograms keep every sample until a scrape.
        // A new thread names itself once it runs: wait for that (bounded), not for a time.
        let started = std::time::Instant::now();
        while upkeep_threads() == 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(30));
            std::thread::yield_now();
        }
        assert_eq!(upkeep_threads(), 1);
        // Installed once per process: a second call starts no second thread.
        install_prometheus().unwrap();
        assert_eq!(upkeep_threads(), 1);
    }
}
