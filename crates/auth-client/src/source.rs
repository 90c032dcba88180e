//! Where tokens come from: the [`TokenSource`] trait, a static token and any async closure.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tower_auth_core::{ConfigError, Secret};

use crate::{Token, TokenError};

/// A boxed future, as [`TokenSource::fetch`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that obtains a new access token: one call, one upstream request.
///
/// Sources do not cache; wrap one in a [`TokenCache`](crate::TokenCache) (which
/// [`BearerLayer::new`](crate::BearerLayer::new) does for you) to reuse tokens until they are
/// due for refresh, with one fetch at a time. The trait is object safe; all sources here are
/// cheap to clone (their state sits behind reference counts).
///
/// ```
/// use tower_auth_client::{BoxFuture, Token, TokenError, TokenSource};
///
/// /// Reads a token that a sidecar keeps fresh in a file.
/// struct FileToken(std::path::PathBuf);
///
/// impl TokenSource for FileToken {
///     fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
///         Box::pin(async move {
///             let text = std::fs::read_to_string(&self.0).map_err(TokenError::other)?;
///             Ok(Token::new(text.trim().to_owned(), None))
///         })
///     }
/// }
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token. [`TokenCache`](crate::TokenCache) calls this at most once at a
    /// time per cache, so an implementation needs no coalescing of its own.
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>>;
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        (**self).fetch()
    }
}

impl<T: TokenSource + ?Sized> TokenSource for Box<T> {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        (**self).fetch()
    }
}

/// A fixed token, for scripts and tests: from a value or from `AUTH_STATIC_TOKEN`. It has no
/// known expiry.
///
/// ```
/// use tower_auth_client::StaticToken;
///
/// let token = StaticToken::new("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA").unwrap();
/// assert_eq!(format!("{token:?}"), "StaticToken([redacted])");
/// assert!(StaticToken::new("two words").is_err());
/// ```
#[derive(Clone)]
pub struct StaticToken(Arc<Secret>);

impl StaticToken {
    /// A source that always yields `token`.
    ///
    /// # Errors
    /// A [`ConfigError`] (never showing the value) when `token` is empty or not an RFC 6750
    /// b64token, so that it could not be sent in an `Authorization` header.
    pub fn new(token: impl Into<Secret>) -> Result<Self, ConfigError> {
        Self::checked("StaticToken", token.into())
    }

    /// Reads the token from `AUTH_STATIC_TOKEN`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable when it is unset, not UTF-8, or not a b64token.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_prefixed("")
    }

    /// Reads the token from `{prefix}AUTH_STATIC_TOKEN`.
    ///
    /// # Errors
    /// As [`StaticToken::from_env`], naming the prefixed variable.
    pub fn from_env_prefixed(prefix: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// Reads `{prefix}AUTH_STATIC_TOKEN` through `get`, which is called with the full name.
    ///
    /// # Errors
    /// As [`StaticToken::from_env_prefixed`].
    pub fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let variable = format!("{prefix}AUTH_STATIC_TOKEN");
        let value = get(&variable).ok_or_else(|| ConfigError::new(&variable, "is not set"))?;
        Self::checked(&variable, Secret::from(value.trim().to_owned()))
    }

    fn checked(variable: &str, secret: Secret) -> Result<Self, ConfigError> {
        if !tower_auth_core::is_b64token(secret.expose_secret()) {
            return Err(ConfigError::new(
                variable,
                "is empty or has characters a bearer token cannot carry (RFC 6750 b64token)",
            ));
        }
        Ok(Self(Arc::new(secret)))
    }
}

impl TokenSource for StaticToken {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        let token = Token::new((*self.0).clone(), None);
        Box::pin(async move { Ok(token) })
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken([redacted])")
    }
}

type TokenFn = dyn Fn() -> BoxFuture<'static, Result<Token, TokenError>> + Send + Sync;

/// Any async closure as a source: called afresh at each fetch.
///
/// ```
/// use std::time::Duration;
/// use tower_auth_client::{FnSource, Token, TokenCache, TokenError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let source = FnSource::new(|| async {
///     // Ask a metadata server, a vault, a CLI...
///     Ok::<_, TokenError>(Token::new("from-the-vault", Some(Duration::from_secs(600))))
/// });
/// let tokens = TokenCache::new(source);
/// assert_eq!(tokens.token().await.unwrap().secret().expose_secret(), b"from-the-vault");
/// # }
/// ```
#[derive(Clone)]
pub struct FnSource(Arc<TokenFn>);

impl FnSource {
    /// A source calling `f` for every fetch.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Token, TokenError>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(f())))
    }
}

impl TokenSource for FnSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        (self.0)()
    }
}

impl fmt::Debug for FnSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnSource")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_token_from_lookup_reads_the_prefixed_variable() {
        let get = |name: &str| (name == "APP_AUTH_STATIC_TOKEN").then(|| " abc.def \n".to_owned());
        let source = StaticToken::from_lookup("APP_", get).unwrap();
        let token = source.fetch().await.unwrap();
        assert_eq!(token.secret().expose_secret(), b"abc.def");
        assert_eq!(token.expires_at(), None);

        let err = StaticToken::from_lookup("", get).unwrap_err();
        assert_eq!(err.variable(), "AUTH_STATIC_TOKEN");
        let err = StaticToken::from_lookup("BAD_", |_| Some("a secret value".into())).unwrap_err();
        assert_eq!(err.variable(), "BAD_AUTH_STATIC_TOKEN");
        assert!(!err.to_string().contains("secret value"), "{err}");
    }

    #[tokio::test]
    async fn fn_source_is_called_each_fetch() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let source = FnSource::new(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(Token::new(format!("t{n}"), None)) }
        });
        let boxed: Box<dyn TokenSource> = Box::new(source.clone());
        assert_eq!(boxed.fetch().await.unwrap().secret().expose_secret(), b"t0");
        assert_eq!(
            source.fetch().await.unwrap().secret().expose_secret(),
            b"t1"
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
