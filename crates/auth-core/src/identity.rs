//! Who a request is from, once a credential has been accepted.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

/// The role that [`Admins`] grants.
pub const ADMIN_ROLE: &str = "admin";

/// The method that authenticated an [`Identity`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A configured API key, by its name.
    ApiKey {
        /// The key's configured name (never the key).
        name: Arc<str>,
    },
    /// A JWT from an OpenID Connect issuer.
    Oidc {
        /// The issuer URL, exactly as configured.
        issuer: Arc<str>,
    },
    /// An HS256 role token minted with the shared HMAC secret.
    Hmac {
        /// The HMAC issuer (`HMAC_ISSUER`).
        issuer: Arc<str>,
    },
}

impl AuthMethod {
    /// A short, stable name for logs and JSON: `api_key`, `oidc` or `hmac`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey { .. } => "api_key",
            Self::Oidc { .. } => "oidc",
            Self::Hmac { .. } => "hmac",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiKey { name } => write!(f, "api_key:{name}"),
            Self::Oidc { issuer } => write!(f, "oidc:{issuer}"),
            Self::Hmac { issuer } => write!(f, "hmac:{issuer}"),
        }
    }
}

/// An authenticated caller.
///
/// Cloning is one reference-count increment: an authenticator can build an identity once
/// (per API key, per cached token) and hand out clones on every request.
#[derive(Clone)]
pub struct Identity(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    subject: String,
    name: Option<String>,
    email: Option<String>,
    method: AuthMethod,
    roles: BTreeSet<String>,
    claims: Option<Map<String, Value>>,
    expires_at: Option<SystemTime>,
}

impl Identity {
    /// Starts building an identity for `subject`, authenticated by `method`.
    pub fn builder(subject: impl Into<String>, method: AuthMethod) -> IdentityBuilder {
        IdentityBuilder {
            inner: Inner {
                subject: subject.into(),
                name: None,
                email: None,
                method,
                roles: BTreeSet::new(),
                claims: None,
                expires_at: None,
            },
        }
    }

    /// A copy of this identity with a reference count of its own.
    ///
    /// Every clone of one identity writes the same reference count, and when requests on
    /// several cores are handed clones of it, that count's cache line moves between the cores
    /// on every clone and drop. An authenticator that serves one identity again and again on a
    /// thread can keep an unshared copy per thread and hand out clones of that instead. (The
    /// method's key name or issuer is still shared, touched only when a copy is made or
    /// dropped.)
    #[doc(hidden)]
    #[must_use]
    pub fn unshared(&self) -> Identity {
        Identity(Arc::new(Inner::clone(&self.0)))
    }

    /// The subject: an API key's name, a JWT's `sub`.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// A display name, where the credential carried one.
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// An email address, where the credential carried one.
    pub fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// The method that authenticated this identity.
    pub fn method(&self) -> &AuthMethod {
        &self.0.method
    }

    /// The roles granted, sorted and without duplicates.
    pub fn roles(&self) -> &BTreeSet<String> {
        &self.0.roles
    }

    /// Whether the identity holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles.contains(role)
    }

    /// The verified claims of a token, where the credential was one.
    pub fn claims(&self) -> Option<&Map<String, Value>> {
        self.0.claims.as_ref()
    }

    /// When the credential stops being valid, where that is known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }
}

impl fmt::Debug for Identity {
    // Claims may carry personal data; Debug shows their count, not their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.0.subject)
            .field("method", &self.0.method)
            .field("roles", &self.0.roles)
            .field("claims", &self.0.claims.as_ref().map(Map::len))
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Identity`]; see [`Identity::builder`].
#[must_use]
pub struct IdentityBuilder {
    inner: Inner,
}

impl IdentityBuilder {
    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.inner.name = Some(name.into());
        self
    }

    /// Sets the email address.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.inner.email = Some(email.into());
        self
    }

    /// Adds one role; empty names are ignored.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        let role = role.into();
        if !role.is_empty() {
            self.inner.roles.insert(role);
        }
        self
    }

    /// Adds roles; empty names are ignored and duplicates collapse.
    pub fn roles<I, R>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        for role in roles {
            self = self.role(role);
        }
        self
    }

    /// Keeps the verified claims of a token.
    pub fn claims(mut self, claims: Map<String, Value>) -> Self {
        self.inner.claims = Some(claims);
        self
    }

    /// Sets when the credential expires.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.inner.expires_at = Some(at);
        self
    }

    /// Grants [`ADMIN_ROLE`] when the subject, the email or the API key's name is listed in `admins`.
    pub fn admins(self, admins: &Admins) -> Self {
        let listed = admins.contains(&self.inner.subject)
            || self
                .inner
                .email
                .as_deref()
                .is_some_and(|e| admins.contains(e))
            || matches!(&self.inner.method, AuthMethod::ApiKey { name } if admins.contains(name));
        if listed { self.role(ADMIN_ROLE) } else { self }
    }

    /// Finishes the identity.
    pub fn build(self) -> Identity {
        Identity(Arc::new(self.inner))
    }
}

/// Subjects, emails and API key names that are granted [`ADMIN_ROLE`] (`AUTH_ADMINS`).
#[derive(Clone, Debug, Default)]
pub struct Admins(HashSet<String>);

impl Admins {
    /// An admin list from names; empty entries are ignored.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(
            names
                .into_iter()
                .map(Into::into)
                .filter(|n| !n.is_empty())
                .collect(),
        )
    }

    /// Whether `name` is listed. Matching is exact: `Alice` is not `alice`.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unshared_copy_is_equal_and_separate() {
        let mut claims = Map::new();
        claims.insert("tenant".into(), Value::from("acme"));
        let expiry = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000);
        let identity = Identity::builder("svc", key("svc"))
            .name("Service")
            .email("svc@example.com")
            .role("ops")
            .claims(claims)
            .expires_at(expiry)
            .build();
        let copy = identity.unshared();
        assert!(!Arc::ptr_eq(&identity.0, &copy.0));
        assert_eq!(
            (copy.subject(), copy.name(), copy.email(), copy.method()),
            (
                identity.subject(),
                identity.name(),
                identity.email(),
                identity.method()
            )
        );
        assert!(copy.has_role("ops"));
        assert_eq!(
            copy.claims().and_then(|c| c.get("tenant")),
            Some(&Value::from("acme"))
        );
        assert_eq!(copy.expires_at(), Some(expiry));
        assert_eq!(format!("{copy:?}"), format!("{identity:?}"));
    }

    fn key(name: &str) -> AuthMethod {
        AuthMethod::ApiKey { name: name.into() }
    }

    #[test]
    fn roles_are_a_set_without_empties() {
        let id = Identity::builder("svc", key("svc"))
            .roles(["b", "a", "", "b"])
            .build();
        assert_eq!(id.roles().iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(id.has_role("a"));
        assert!(!id.has_role(""));
    }

    #[test]
    fn admins_match_subject_email_or_key_name() {
        let admins = Admins::new(["ops", "root@example.com", "deploy-key"]);
        let by_subject = Identity::builder("ops", AuthMethod::Oidc { issuer: "i".into() })
            .admins(&admins)
            .build();
        let by_email = Identity::builder("u1", AuthMethod::Oidc { issuer: "i".into() })
            .email("root@example.com")
            .admins(&admins)
            .build();
        let by_key = Identity::builder("x", key("deploy-key"))
            .admins(&admins)
            .build();
        let nobody = Identity::builder("Ops", key("other"))
            .admins(&admins)
            .build();
        assert!(by_subject.has_role(ADMIN_ROLE));
        assert!(by_email.has_role(ADMIN_ROLE));
        assert!(by_key.has_role(ADMIN_ROLE));
        assert!(
            !nobody.has_role(ADMIN_ROLE),
            "matching is exact and case-sensitive"
        );
    }

    #[test]
    fn debug_hides_claim_values() {
        let mut claims = Map::new();
        claims.insert("email".into(), Value::String("private@example.com".into()));
        let id = Identity::builder("s", key("k")).claims(claims).build();
        let shown = format!("{id:?}");
        assert!(!shown.contains("private@example.com"), "{shown}");
        assert!(shown.contains("claims: Some(1)"), "{shown}");
    }
}
