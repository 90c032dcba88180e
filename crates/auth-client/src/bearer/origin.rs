//! Where a [`BearerLayer`](super::BearerLayer) sends its token: the origins it was made for.
//!
//! A request with a relative URI (`/pkg.Service/Method`, as tonic's generated clients send
//! through a `Channel`) goes where the inner service was built to send it: the token goes
//! with it. A request with an absolute URI (`https://api.example.com/x`, as a hyper client
//! sends) gets the token only when its origin (scheme, host, port) is one the layer was
//! given; to any other origin it goes out without it, or is refused, as the user chose. So a
//! link or webhook taken from a response, or a redirect to another host, never carries it.

use std::fmt;
use std::sync::Arc;

use http::Uri;
use http::uri::Scheme;
use tower_auth_http::is_loopback;

/// What happens to a request for an origin the layer was not made for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtherOrigins {
    /// It goes out without the token (the default), as a browser sends no credential of
    /// one site to another.
    #[default]
    SendWithoutToken,
    /// The call fails with [`ForeignOrigin`], before the inner service is called.
    Refuse,
}

/// An origin: scheme, host (lower case, IPv6 without brackets) and port (the scheme's
/// default when none is given).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: Box<str>,
    port: u16,
}

impl Origin {
    /// The origin of an absolute `http` or `https` URI; `None` for any other.
    fn of(uri: &Uri) -> Option<Self> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return None,
        };
        let host = uri.host().filter(|h| !h.is_empty())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some(Self {
            https,
            host: host.to_ascii_lowercase().into(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
        })
    }

    fn plain_http_off_loopback(&self) -> bool {
        !self.https && !is_loopback(&self.host) && !is_loopback(&format!("[{}]", self.host))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A URL given to [`BearerLayer::allow_origin`](super::BearerLayer::allow_origin) that is not
/// an origin the layer may send its token to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidOrigin {
    message: &'static str,
}

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for InvalidOrigin {}

/// A request refused by a layer set to [`OtherOrigins::Refuse`]: its URI's origin is not one
/// the layer sends its token to. The service's error, boxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignOrigin {
    origin: Option<String>,
}

impl ForeignOrigin {
    /// The request's origin (`https://host:port`), or `None` when its URI had an authority
    /// but no `http` or `https` scheme.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

impl fmt::Display for ForeignOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(
                f,
                "{origin} is not an origin this BearerLayer sends its token to"
            ),
            None => f.write_str("the request's URI is not an http or https origin this BearerLayer sends its token to"),
        }
    }
}

impl std::error::Error for ForeignOrigin {}

/// The origins a layer sends its token to, and what it does with others.
#[derive(Clone, Debug, Default)]
pub(crate) struct Destinations {
    origins: Arc<[Origin]>,
    others: OtherOrigins,
}

/// What to do with one request.
pub(crate) enum Verdict {
    /// Add the token.
    Send,
    /// Send the request as it is.
    Withhold,
    /// Fail the call.
    Refuse(ForeignOrigin),
}

impl Destinations {
    /// Adds `url`'s origin; plain `http` to a host that is not loopback only with `insecure`.
    pub(crate) fn allow(&mut self, url: &str, insecure: bool) -> Result<(), InvalidOrigin> {
        let uri: Uri = url.trim().parse().map_err(|_| InvalidOrigin {
            message: "not a URL",
        })?;
        let origin = Origin::of(&uri).ok_or(InvalidOrigin {
            message: "not an absolute http or https URL",
        })?;
        if origin.plain_http_off_loopback() && !insecure {
            return Err(InvalidOrigin {
                message: "plain http to a host that is not loopback would send the token in the clear; use https, or allow_insecure_origin",
            });
        }
        let mut origins = self.origins.to_vec();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
        self.origins = origins.into();
        Ok(())
    }

    pub(crate) fn set_others(&mut self, others: OtherOrigins) {
        self.others = others;
    }

    /// Whether a request for `uri` gets the token.
    pub(crate) fn judge(&self, uri: &Uri) -> Verdict {
        // Relative: the inner service (a tonic `Channel`, a client bound to one host) was
        // built for one destination, and the layer for it.
        if uri.authority().is_none() {
            return Verdict::Send;
        }
        let origin = Origin::of(uri);
        match &origin {
            Some(o) if self.origins.contains(o) => Verdict::Send,
            _ => match self.others {
                OtherOrigins::SendWithoutToken => Verdict::Withhold,
                OtherOrigins::Refuse => Verdict::Refuse(ForeignOrigin {
                    origin: origin.map(|o| o.to_string()),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(d: &Destinations, uri: &str) -> &'static str {
        match d.judge(&uri.parse().unwrap()) {
            Verdict::Send => "send",
            Verdict::Withhold => "withhold",
            Verdict::Refuse(_) => "refuse",
        }
    }

    #[test]
    fn only_the_given_origins_and_relative_uris_get_the_token() {
        let mut d = Destinations::default();
        d.allow("https://API.example.com/ignored/path?q=1", false)
            .unwrap();
        d.allow("http://127.0.0.1:8080", false).unwrap();
        d.allow("http://[::1]:9000", false).unwrap();
        for (uri, verdict) in [
            ("/pkg.Service/Method", "send"),
            ("https://api.example.com/x", "send"),
            ("https://api.example.com:443/x", "send"),
            ("https://API.EXAMPLE.COM/x", "send"),
            ("http://127.0.0.1:8080/x", "send"),
            ("http://[::1]:9000/x", "send"),
            // Another scheme, port or host is another origin.
            ("http://api.example.com/x", "withhold"),
            ("https://api.example.com:8443/x", "withhold"),
            ("https://api.example.com.evil.example/x", "withhold"),
            (
                "https://evil.example/?u=https://api.example.com",
                "withhold",
            ),
            ("http://127.0.0.1:8081/x", "withhold"),
        ] {
            assert_eq!(judge(&d, uri), verdict, "{uri}");
        }
        d.set_others(OtherOrigins::Refuse);
        assert_eq!(judge(&d, "https://evil.example/x"), "refuse");
        assert_eq!(judge(&d, "/relative"), "send");
        match d.judge(&"https://Evil.example:444/x".parse().unwrap()) {
            Verdict::Refuse(e) => assert_eq!(e.origin(), Some("https://evil.example:444")),
            _ => panic!("refused"),
        }
    }

    #[test]
    fn plain_http_off_loopback_needs_the_insecure_opt_in() {
        let mut d = Destinations::default();
        for url in ["http://api.example.com", "http://10.0.0.5:50051"] {
            assert!(d.allow(url, false).is_err(), "{url}");
            assert!(d.allow(url, true).is_ok(), "{url}");
        }
        for url in ["http://localhost:1", "http://127.0.0.2", "http://[::1]"] {
            assert!(d.allow(url, false).is_ok(), "{url}");
        }
        for bad in [
            "api.example.com",
            "ftp://x.example",
            "/path",
            "https://:443",
            "https://",
            "",
        ] {
            assert!(d.allow(bad, true).is_err(), "{bad}");
        }
    }
}
