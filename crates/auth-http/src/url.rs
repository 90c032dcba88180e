//! URLs of identity providers, and the loopback rule: plain `http` only to this machine.

use std::net::{IpAddr, Ipv6Addr};

use http::Uri;

use crate::HttpError;

/// Whether `host` (as [`Uri::host`] gives it) names this machine, so that plain `http` to it
/// never leaves it.
///
/// - `localhost` in any case: hosts are case-insensitive (RFC 3986 section 3.2.2).
/// - `127.0.0.0/8`, and `::1` with or without brackets.
/// - Not `localhost.` nor `api.localhost`: resolvers differ on whether they reach a DNS server
///   (RFC 6761 section 6.3 only says they SHOULD not), and a secret must not depend on that.
/// - Not an IPv4-mapped `::ffff:127.0.0.1`, nor a shorthand such as `127.1`, which
///   [`IpAddr`] does not parse: whoever needs loopback can write it plainly.
pub fn is_loopback(host: &str) -> bool {
    let ip = match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .strip_suffix(']')
            .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6),
        None => host.parse::<IpAddr>().ok(),
    };
    match ip {
        Some(ip) => ip.is_loopback(),
        None => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Parses an absolute `http` or `https` URL with a host and no fragment.
///
/// # Errors
/// [`HttpError::Fragment`], [`HttpError::InvalidUrl`], [`HttpError::NotAbsolute`] or
/// [`HttpError::UnsupportedScheme`].
pub fn parse_url(url: &str) -> Result<Uri, HttpError> {
    // Checked on the text: `Uri` would refuse it as an invalid character, which says less.
    if url.contains('#') {
        return Err(HttpError::Fragment);
    }
    let uri: Uri = url.parse().map_err(|_| HttpError::InvalidUrl)?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(HttpError::NotAbsolute);
    }
    match uri.scheme_str() {
        Some("https" | "http") => Ok(uri),
        _ => Err(HttpError::UnsupportedScheme),
    }
}

/// Parses the URL of an endpoint that is sent credentials: [`parse_url`], and `https` unless
/// the host [is loopback](is_loopback) (RFC 6749 sections 2.3.1 and 3.2 require TLS wherever a
/// client secret is sent).
///
/// # Errors
/// As [`parse_url`], and [`HttpError::PlainHttp`].
pub fn parse_endpoint(url: &str) -> Result<Uri, HttpError> {
    let uri = parse_url(url)?;
    require_tls_off_loopback(&uri)?;
    Ok(uri)
}

/// The loopback rule for an already parsed URL: `https`, or `http` to a loopback host.
///
/// # Errors
/// [`HttpError::PlainHttp`] or [`HttpError::UnsupportedScheme`].
pub fn require_tls_off_loopback(uri: &Uri) -> Result<(), HttpError> {
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(uri.host().unwrap_or_default()) => Ok(()),
        Some("http") => Err(HttpError::PlainHttp),
        _ => Err(HttpError::UnsupportedScheme),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_in_any_case_and_nothing_that_only_looks_like_one() {
        for host in [
            "localhost",
            "LOCALHOST",
            "LocalHost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
            "[0:0:0:0:0:0:0:1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.",
            "api.localhost",
            "localhost.example.com",
            "127.0.0.1.example",
            "127.1",
            "[::ffff:127.0.0.1]",
            "[::1",
            "::1]",
            "[127.0.0.1]",
            "0.0.0.0",
            "10.0.0.1",
            "[2001:db8::1]",
            "login.example.com",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn the_loopback_rule_reads_the_host_as_uri_gives_it() {
        for ok in [
            "https://idp.example/token",
            "http://127.0.0.1:8080/token",
            "http://[::1]:1/t",
            "http://localhost/t",
            "http://LOCALHOST:9/t",
        ] {
            assert!(parse_endpoint(ok).is_ok(), "{ok}");
        }
        for (bad, error) in [
            ("http://idp.example/token", HttpError::PlainHttp),
            ("http://localhost.:9/t", HttpError::PlainHttp),
            ("http://127.0.0.1.example/t", HttpError::PlainHttp),
            ("ftp://idp.example/token", HttpError::UnsupportedScheme),
            ("/token", HttpError::NotAbsolute),
            ("https://idp.example/token#x", HttpError::Fragment),
            ("not a url", HttpError::InvalidUrl),
        ] {
            assert_eq!(parse_endpoint(bad).unwrap_err(), error, "{bad}");
        }
        // Without the rule, plain http anywhere is a URL (keys are public; callers warn).
        assert!(parse_url("http://idp.example/jwks").is_ok());
    }
}
