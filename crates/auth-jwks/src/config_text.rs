//! An [`OidcConfig`] written back as `OIDC_CONFIG` JSON, and comparison of what two
//! configurations say there: a parsed and re-serialised configuration parses to the same
//! value (issue 18; checked by the `config` fuzz target).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{CaSource, Introspection, Issuer, OidcConfig};
use crate::dpop::DpopPolicy;

impl OidcConfig {
    /// The configuration in the JSON form of `OIDC_CONFIG`, which
    /// [`from_json`](Self::from_json) reads back to a configuration that
    /// [`same_variable`](Self::same_variable) finds equal (when the files it names still
    /// hold the same).
    ///
    /// Every field `OIDC_CONFIG` has is written, defaults included (`roles_claim`,
    /// `algorithms`, `dpop`, `dpop_nonce` and the four numbers), except those that are unset
    /// (`jwks_uri`, `roles_prefix`, `required_typ`, `ca_file`, `introspection`). A CA file or
    /// a client secret file is written as its path. A client secret given inline
    /// (`client_secret`) is written as it is: the text is as secret as the variable itself.
    ///
    /// What `OIDC_CONFIG` has no field for is not written: the clock, proxies, timeouts,
    /// the unknown-`kid` cool-down and `OIDC_CA_FILE`. `None` when the configuration was
    /// built in code with what the variable cannot say: an issuer's CA bundle given as PEM
    /// text ([`IssuerConfig::ca_pem`](crate::IssuerConfig::ca_pem)), a path or client secret
    /// that is not UTF-8, or a refresh interval or cache lifetime that is not whole seconds.
    ///
    /// ```
    /// use tower_auth_oidc::OidcConfig;
    ///
    /// let config = OidcConfig::from_json("OIDC_CONFIG",
    ///     r#"{"issuers":[{"issuer":"https://login.example.com","audience":"api"}]}"#).unwrap();
    /// let text = config.to_variable().unwrap();
    /// assert!(text.contains(r#""roles_claim":"roles""#), "{text}");
    /// assert!(OidcConfig::from_json("OIDC_CONFIG", &text).unwrap().same_variable(&config));
    /// ```
    ///
    /// Behind the hidden `fuzzing` feature (the round-trip tests and the fuzz targets): the
    /// text holds an inline client secret in the clear, so it is not offered to applications.
    #[doc(hidden)]
    pub fn to_variable(&self) -> Option<String> {
        let issuers = self
            .issuers
            .iter()
            .map(|issuer| issuer_json(issuer))
            .collect::<Option<Vec<Value>>>()?;
        let mut config = Map::new();
        config.insert("issuers".into(), issuers.into());
        config.insert(
            "jwks_refresh_interval_secs".into(),
            whole_seconds(self.refresh_interval)?.into(),
        );
        config.insert("token_cache_size".into(), self.token_cache_size.into());
        config.insert(
            "token_cache_ttl_secs".into(),
            whole_seconds(self.token_cache_ttl)?.into(),
        );
        config.insert("leeway_secs".into(), self.leeway_secs.into());
        Some(Value::Object(config).to_string())
    }

    /// Whether `self` and `other` say the same in `OIDC_CONFIG`: the same issuers, in the
    /// same order, each with the same audiences, URLs, roles settings, algorithms (in
    /// order), `typ`, CA file (or PEM text), DPoP settings and introspection settings
    /// (client secret included, compared in constant time); and the same refresh interval,
    /// cache size and lifetime, and leeway.
    ///
    /// What the variable has no field for is not compared: the clock, proxies, timeouts, the
    /// unknown-`kid` cool-down, `OIDC_CA_FILE`, and the name errors give the variable.
    #[doc(hidden)]
    pub fn same_variable(&self, other: &OidcConfig) -> bool {
        self.issuers.len() == other.issuers.len()
            && self
                .issuers
                .iter()
                .zip(&other.issuers)
                .all(|(a, b)| same_issuer(a, b))
            && self.refresh_interval == other.refresh_interval
            && self.token_cache_size == other.token_cache_size
            && self.token_cache_ttl == other.token_cache_ttl
            && self.leeway_secs == other.leeway_secs
    }
}

fn whole_seconds(duration: Duration) -> Option<u64> {
    (duration.subsec_nanos() == 0).then_some(duration.as_secs())
}

fn issuer_json(issuer: &Issuer) -> Option<Value> {
    let mut out = Map::new();
    out.insert("issuer".into(), (*issuer.issuer).into());
    out.insert("audience".into(), issuer.audiences.clone().into());
    if let Some(uri) = &issuer.jwks_uri {
        out.insert("jwks_uri".into(), uri.to_string().into());
    }
    out.insert("roles_claim".into(), issuer.roles_claim.clone().into());
    if !issuer.roles_prefix.is_empty() {
        out.insert("roles_prefix".into(), issuer.roles_prefix.clone().into());
    }
    let algorithms: Vec<String> = issuer
        .algorithms
        .iter()
        .map(|alg| format!("{alg:?}"))
        .collect();
    out.insert("algorithms".into(), algorithms.into());
    if let Some(typ) = &issuer.required_typ {
        out.insert("required_typ".into(), typ.clone().into());
    }
    match &issuer.ca_source {
        None => {}
        Some(CaSource::File(path)) => {
            out.insert("ca_file".into(), path.to_str()?.into());
        }
        Some(CaSource::Pem(_)) => return None,
    }
    let dpop = match issuer.dpop {
        DpopPolicy::Allowed => "allowed",
        DpopPolicy::Required => "required",
    };
    out.insert("dpop".into(), dpop.into());
    out.insert("dpop_nonce".into(), issuer.dpop_nonce.into());
    if let Some(introspection) = &issuer.introspection {
        out.insert("introspection".into(), introspection_json(introspection)?);
    }
    Some(Value::Object(out))
}

fn introspection_json(introspection: &Introspection) -> Option<Value> {
    let mut out = Map::new();
    if let Some(endpoint) = &introspection.endpoint {
        out.insert("endpoint".into(), endpoint.to_string().into());
    }
    out.insert("client_id".into(), introspection.client_id.clone().into());
    match &introspection.secret_file {
        Some(path) => {
            out.insert("client_secret_file".into(), path.to_str()?.into());
        }
        None => {
            let secret = std::str::from_utf8(introspection.secret.expose_secret()).ok()?;
            out.insert("client_secret".into(), secret.into());
        }
    }
    Some(Value::Object(out))
}

fn same_issuer(a: &Issuer, b: &Issuer) -> bool {
    let same_ca = match (&a.ca_source, &b.ca_source) {
        (None, None) => true,
        (Some(CaSource::File(x)), Some(CaSource::File(y))) => x == y,
        (Some(CaSource::Pem(x)), Some(CaSource::Pem(y))) => x == y,
        _ => false,
    };
    let same_introspection = match (&a.introspection, &b.introspection) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.endpoint == y.endpoint
                && x.client_id == y.client_id
                && x.secret.ct_eq(y.secret.expose_secret())
                && x.secret_file == y.secret_file
        }
        _ => false,
    };
    a.issuer == b.issuer
        && a.audiences == b.audiences
        && a.jwks_uri == b.jwks_uri
        && a.discovery_uri == b.discovery_uri
        && a.roles_claim == b.roles_claim
        && a.roles_prefix == b.roles_prefix
        && a.algorithms == b.algorithms
        && a.required_typ == b.required_typ
        && same_ca
        && a.dpop == b.dpop
        && a.dpop_nonce == b.dpop_nonce
        && same_introspection
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IssuerConfig;

    /// A self-signed CA certificate (P-256) made with openssl for this test, valid until
    /// 2126; its key was thrown away.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBsjCCAVegAwIBAgIUEZerWqgh9M5rfyVyQlJbRIGnkM8wCgYIKoZIzj0EAwIw
LTErMCkGA1UEAwwidG93ZXItYXV0aC1vaWRjIHJvdW5kLXRyaXAgdGVzdCBDQTAg
Fw0yNjExMzAxNjQ5NTFaGA8yMTI2MTEwNjE2NDk1MVowLTErMCkGA1UEAwwidG93
ZXItYXV0aC1vaWRjIHJvdW5kLXRyaXAgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABLBcrw6AToCrch32/o7L7CN5HAL+UWv5zHTtVsfjnywsXJDL06H+
SocttnUN5/DUJlLsX9F03jZx1w47DsP21JSjUzBRMB0GA1UdDgQWBBSX9O6PEi2g
LqUiCd2qxUFjxpz4vjAfBgNVHSMEGDAWgBSX9O6PEi2gLqUiCd2qxUFjxpz4vjAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQCy4YQaVkJlD/C1hsd1
YoPeN3QQarHBHxqA4LWXUu+G+QIhAKu8Co+IkbQ7xibo1btzWlC427gFGQ54CJfa
cUSk/lRb
-----END CERTIFICATE-----
";

    fn parse(json: &str) -> OidcConfig {
        // The error only: the JSON may hold a client secret, which test output never shows.
        OidcConfig::from_json("OIDC_CONFIG", json).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Written back, the configuration reads back the same, and writing that again gives
    /// the same text.
    fn round_trip(config: &OidcConfig) -> String {
        let text = config.to_variable().expect("OIDC_CONFIG can say it");
        let again = parse(&text);
        // No text in the messages: it may hold a client secret.
        assert!(
            again.same_variable(config),
            "written back, read back another configuration"
        );
        assert!(
            config.same_variable(&again),
            "read back, differs from the configuration"
        );
        assert_eq!(again.to_variable().as_deref(), Some(text.as_str()));
        text
    }

    #[test]
    fn every_field_of_oidc_config_written_back_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, CERT).unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "from-a-file\n").unwrap();
        let (ca, secret_file) = (ca.to_str().unwrap(), secret_file.to_str().unwrap());
        let configs = [
            // Defaults only.
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api"}]}"#.to_owned(),
            // Every field, some issuers, an audience as a string and as arrays.
            format!(
                r#"{{"issuers":[
                {{"issuer":"https://a.example","audience":"api","roles_claim":"scope","algorithms":["ES256","RS256","ES256"],
                  "dpop":"required","dpop_nonce":true,"ca_file":"{ca}"}},
                {{"issuer":"https://b.example/realms/x/","audience":["one","two","one"],"jwks_uri":"http://127.0.0.1:9/jwks?v=1",
                  "roles_claim":"realm_access.roles","roles_prefix":"partner:","algorithms":["EdDSA","PS512"],
                  "required_typ":"at+jwt","dpop":"allowed","dpop_nonce":false,
                  "introspection":{{"client_id":"rs \"1\"","client_secret":"s3cret-\u00e9"}}}},
                {{"issuer":"http://any.example","audience":["x"],"jwks_uri":"https://k.example",
                  "introspection":null}}],
               "jwks_refresh_interval_secs":1,"token_cache_size":0,"token_cache_ttl_secs":0,"leeway_secs":600}}"#
            ),
            // Introspection at a given endpoint, and with the secret in a file.
            r#"{"issuers":[{"issuer":"http://idp.example","audience":"x","jwks_uri":"https://k.example/jwks",
                "introspection":{"endpoint":"https://idp.example/introspect","client_id":"rs","client_secret":"s"}}]}"#
                .to_owned(),
            format!(
                r#"{{"issuers":[{{"issuer":"https://a.example","audience":"x",
                "introspection":{{"client_id":"rs","client_secret_file":"{secret_file}"}}}}],"leeway_secs":0}}"#
            ),
        ];
        for json in &configs {
            let config = parse(json);
            let text = round_trip(&config);
            assert!(
                !format!("{config:?}").contains("s3cret")
                    && !format!("{config:?}").contains("from-a-file"),
                "a client secret in Debug"
            );
            // A secret file is written as its path, never as what it holds.
            assert!(
                !text.contains("from-a-file"),
                "the file's secret was written"
            );
        }
        let full = parse(&configs[1]).to_variable().unwrap();
        for field in [
            r#""algorithms":["ES256","RS256"]"#,
            r#""audience":["one","two","one"]"#,
            r#""dpop":"required""#,
            r#""client_secret":"s3cret-é""#,
            r#""jwks_uri":"http://127.0.0.1:9/jwks?v=1""#,
            r#""jwks_uri":"https://k.example/""#,
            r#""leeway_secs":600"#,
            r#""token_cache_size":0"#,
        ] {
            assert!(full.contains(field), "{field} not in {full}");
        }
        let defaults = parse(&configs[0]).to_variable().unwrap();
        assert_eq!(
            defaults,
            r#"{"issuers":[{"algorithms":["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","EdDSA"],"audience":["api"],"dpop":"allowed","dpop_nonce":false,"issuer":"https://a.example","roles_claim":"roles"}],"jwks_refresh_interval_secs":3600,"leeway_secs":60,"token_cache_size":1000,"token_cache_ttl_secs":300}"#
        );
    }

    #[test]
    fn configurations_differ_by_any_field() {
        let base = r#"{"issuers":[{"issuer":"https://a.example","audience":"api","introspection":{"client_id":"rs","client_secret":"s1"}}]}"#;
        let config = parse(base);
        assert!(config.same_variable(&parse(base)));
        for other in [
            r#"{"issuers":[{"issuer":"https://b.example","audience":"api","introspection":{"client_id":"rs","client_secret":"s1"}}]}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":["api","v2"],"introspection":{"client_id":"rs","client_secret":"s1"}}]}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api","introspection":{"client_id":"rs","client_secret":"s2"}}]}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api","introspection":{"client_id":"rt","client_secret":"s1"}}]}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api"}]}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api","algorithms":["RS256"],"introspection":{"client_id":"rs","client_secret":"s1"}}]}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api","dpop_nonce":true,"introspection":{"client_id":"rs","client_secret":"s1"}}]}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api","introspection":{"client_id":"rs","client_secret":"s1"}}],"leeway_secs":5}"#,
            r#"{"issuers":[{"issuer":"https://a.example","audience":"api","introspection":{"client_id":"rs","client_secret":"s1"}},{"issuer":"https://b.example","audience":"api"}]}"#,
        ] {
            assert!(!config.same_variable(&parse(other)), "{other}");
        }
        // Another clock or name for the variable is not another OIDC_CONFIG.
        let renamed = OidcConfig::from_json("APP_OIDC_CONFIG", base)
            .unwrap()
            .with_clock(tower_auth_core::Clock::manual(1_000));
        assert!(config.same_variable(&renamed));
    }

    #[test]
    fn what_oidc_config_cannot_say_is_none() {
        let pem = OidcConfig::builder()
            .issuer(IssuerConfig::new("https://a.example", "x").ca_pem(CERT))
            .build()
            .unwrap();
        assert_eq!(pem.to_variable(), None);
        let half_second = OidcConfig::builder()
            .issuer(IssuerConfig::new("https://a.example", "x"))
            .token_cache_ttl(Duration::from_millis(1500))
            .build()
            .unwrap();
        assert_eq!(half_second.to_variable(), None);
        // Built in code with what the variable can say, it reads back the same.
        let coded = OidcConfig::builder()
            .issuer(
                IssuerConfig::new("https://a.example", "x")
                    .audience("y")
                    .roles_prefix("p:")
                    .dpop(DpopPolicy::Required),
            )
            .leeway(Duration::from_millis(2500))
            .build()
            .unwrap();
        round_trip(&coded);
    }
}
