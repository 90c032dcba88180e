//! Who a request is from, once a credential has been accepted.

use std::collections::{BTreeSet, HashMap, HashSet};
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
    // Boxed strings, not `String`s: 8 bytes less each and no spare capacity, in every identity
    // a key set or the token cache holds (BENCHMARKS.md, cost at scale).
    subject: Box<str>,
    name: Option<Box<str>>,
    email: Option<Box<str>>,
    email_verified: bool,
    method: AuthMethod,
    roles: BTreeSet<String>,
    claims: Option<Map<String, Value>>,
    expires_at: Option<SystemTime>,
    /// RFC 8705: the `x5t#S256` thumbprint of the certificate the token is bound to.
    bound_certificate: Option<Box<str>>,
    issued_at: Option<SystemTime>,
}

impl Identity {
    /// Starts building an identity for `subject`, authenticated by `method`.
    pub fn builder(subject: impl Into<String>, method: AuthMethod) -> IdentityBuilder {
        IdentityBuilder {
            inner: Inner {
                subject: subject.into().into_boxed_str(),
                name: None,
                email: None,
                email_verified: false,
                method,
                roles: BTreeSet::new(),
                claims: None,
                expires_at: None,
                bound_certificate: None,
                issued_at: None,
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

    /// An email address, where the credential carried one. It may be unverified: see
    /// [`email_verified`](Identity::email_verified).
    pub fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// Whether the credential vouched for the [`email`](Identity::email) (an OIDC token's
    /// `email_verified: true`).
    pub fn email_verified(&self) -> bool {
        self.0.email.is_some() && self.0.email_verified
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

    /// The `x5t#S256` thumbprint of the client certificate the credential is bound to (RFC
    /// 8705 section 3, a token's `cnf`): the identity holds only on a connection that
    /// presented that certificate (see [`confirm_certificate`](crate::confirm_certificate)).
    pub fn bound_certificate(&self) -> Option<&str> {
        self.0.bound_certificate.as_deref()
    }

    /// When the credential was issued (a token's `iat`), where that is known: what a
    /// cut-off of the subject ("tokens issued before T are invalid") is judged by.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.0.issued_at
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
        self.inner.name = Some(name.into().into_boxed_str());
        self
    }

    /// Sets the email address, unverified unless [`email_verified`](Self::email_verified)
    /// says otherwise.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.inner.email = Some(email.into().into_boxed_str());
        self
    }

    /// Says whether the credential vouched for the email address (default `false`). Only a
    /// verified email can match [`Admins`].
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.inner.email_verified = verified;
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

    /// Binds the identity to the client certificate with this `x5t#S256` thumbprint (see
    /// [`Identity::bound_certificate`]).
    pub fn bound_certificate(mut self, thumbprint: impl Into<Box<str>>) -> Self {
        self.inner.bound_certificate = Some(thumbprint.into());
        self
    }

    /// Sets when the credential was issued (a token's `iat`).
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.inner.issued_at = Some(at);
        self
    }

    /// Grants [`ADMIN_ROLE`] when `admins` lists this identity (see [`Admins`]). Call it
    /// after setting the email.
    pub fn admins(self, admins: &Admins) -> Self {
        let verified_email = self
            .inner
            .email
            .as_deref()
            .filter(|_| self.inner.email_verified);
        if admins.grants(&self.inner.method, &self.inner.subject, verified_email) {
            self.role(ADMIN_ROLE)
        } else {
            self
        }
    }

    /// Finishes the identity.
    pub fn build(self) -> Identity {
        Identity(Arc::new(self.inner))
    }
}

/// Who is granted [`ADMIN_ROLE`] (`AUTH_ADMINS`).
///
/// Each entry is one of:
///
/// | entry | matches |
/// |---|---|
/// | `api_key:NAME` | the API key named `NAME` |
/// | `hmac:SUBJECT` | an HMAC role token whose `sub` is `SUBJECT` |
/// | `email:ADDRESS` | a verified email ([`IdentityBuilder::email_verified`]) |
/// | `ISSUER_URL#SUBJECT` | an OIDC token of that issuer (exactly as configured) whose `sub` is `SUBJECT` |
/// | anything else | unqualified: any method's subject, an API key's name, or a verified email |
///
/// An unqualified entry lets one method's name stand for another's (a subject `ops` at one
/// issuer is not `ops` at another); qualify entries when more than one method or issuer is
/// configured. Matching is exact: `Alice` is not `alice`. An `ISSUER_URL#SUBJECT` entry is
/// one whose text before the first `#` starts with `http://` or `https://` (an issuer URL
/// has no fragment).
///
/// ```
/// use tower_auth_core::{Admins, AuthMethod};
///
/// let admins = Admins::new(["api_key:deploy", "https://login.example.com#u-42"]);
/// let oidc = |issuer: &str| AuthMethod::Oidc { issuer: issuer.into() };
/// assert!(admins.grants(&oidc("https://login.example.com"), "u-42", None));
/// assert!(!admins.grants(&oidc("https://other.example.com"), "u-42", None));
/// assert!(!admins.grants(&AuthMethod::Hmac { issuer: "tower-auth".into() }, "deploy", None));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admins {
    /// Every entry as written, for [`Admins::contains`].
    listed: HashSet<String>,
    unqualified: HashSet<String>,
    api_keys: HashSet<String>,
    hmac: HashSet<String>,
    emails: HashSet<String>,
    /// Subjects by issuer.
    oidc: HashMap<String, HashSet<String>>,
}

/// One entry of an admin list, by the name space it belongs to.
#[derive(Debug, PartialEq, Eq)]
enum Entry<'a> {
    Unqualified(&'a str),
    ApiKey(&'a str),
    Hmac(&'a str),
    Email(&'a str),
    Oidc { issuer: &'a str, subject: &'a str },
}

impl<'a> Entry<'a> {
    /// Reads an entry; `Err` names the part that is empty.
    fn parse(entry: &'a str) -> Result<Self, &'static str> {
        let qualified = if let Some(name) = entry.strip_prefix("api_key:") {
            Some((Entry::ApiKey(name), name, "key name"))
        } else if let Some(subject) = entry.strip_prefix("hmac:") {
            Some((Entry::Hmac(subject), subject, "subject"))
        } else {
            entry
                .strip_prefix("email:")
                .map(|address| (Entry::Email(address), address, "address"))
        };
        if let Some((parsed, name, what)) = qualified {
            return if name.is_empty() {
                Err(what)
            } else {
                Ok(parsed)
            };
        }
        if let Some((issuer, subject)) = entry.split_once('#')
            && (issuer.starts_with("https://") || issuer.starts_with("http://"))
        {
            return if subject.is_empty() {
                Err("subject")
            } else {
                Ok(Entry::Oidc { issuer, subject })
            };
        }
        if entry.is_empty() {
            Err("name")
        } else {
            Ok(Entry::Unqualified(entry))
        }
    }
}

impl Admins {
    /// An admin list from entries (see [`Admins`]); empty entries, and qualified ones with
    /// an empty name (`api_key:`), are ignored. [`Admins::parse`] refuses them instead.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut admins = Self::default();
        for entry in entries {
            let entry = entry.into();
            if let Ok(parsed) = Entry::parse(&entry) {
                admins.insert(parsed);
                admins.listed.insert(entry);
            }
        }
        admins
    }

    /// An admin list from entries; an empty entry, or a qualified one with an empty name,
    /// is an error that names `variable` and the entry's position.
    pub fn parse<I, S>(variable: &str, entries: I) -> Result<Self, crate::ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut admins = Self::default();
        for (i, entry) in entries.into_iter().enumerate() {
            let entry = entry.into();
            let parsed = Entry::parse(&entry).map_err(|what| {
                crate::ConfigError::new(variable, format!("entry #{} has an empty {what}", i + 1))
            })?;
            admins.insert(parsed);
            admins.listed.insert(entry);
        }
        Ok(admins)
    }

    fn insert(&mut self, entry: Entry<'_>) {
        match entry {
            Entry::Unqualified(name) => self.unqualified.insert(name.into()),
            Entry::ApiKey(name) => self.api_keys.insert(name.into()),
            Entry::Hmac(subject) => self.hmac.insert(subject.into()),
            Entry::Email(address) => self.emails.insert(address.into()),
            Entry::Oidc { issuer, subject } => self
                .oidc
                .entry(issuer.into())
                .or_default()
                .insert(subject.into()),
        };
    }

    /// Whether an identity authenticated by `method` as `subject`, with `verified_email`
    /// (`None` when it has none or it is unverified), is an admin. This is the one place
    /// admins are matched; [`IdentityBuilder::admins`] asks it.
    pub fn grants(&self, method: &AuthMethod, subject: &str, verified_email: Option<&str>) -> bool {
        let by_email =
            verified_email.is_some_and(|e| self.emails.contains(e) || self.unqualified.contains(e));
        let by_method = match method {
            AuthMethod::ApiKey { name } => {
                self.api_keys.contains(&**name) || self.unqualified.contains(&**name)
            }
            AuthMethod::Hmac { .. } => self.hmac.contains(subject),
            AuthMethod::Oidc { issuer } => self
                .oidc
                .get(&**issuer)
                .is_some_and(|subjects| subjects.contains(subject)),
        };
        by_email || by_method || self.unqualified.contains(subject)
    }

    /// Whether `entry` is listed, exactly as written.
    pub fn contains(&self, entry: &str) -> bool {
        self.listed.contains(entry)
    }

    /// The unqualified entries (which any method's names can match), sorted.
    pub fn unqualified(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.unqualified.iter().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The issuers that `ISSUER_URL#SUBJECT` entries name, sorted.
    pub fn issuers(&self) -> Vec<&str> {
        let mut issuers: Vec<&str> = self.oidc.keys().map(String::as_str).collect();
        issuers.sort_unstable();
        issuers
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// The list in the text form of `AUTH_ADMINS`: a JSON array of the entries, sorted,
    /// which reads back (as `AUTH_ADMINS` is read, then [`Admins::parse`]) to an equal list.
    /// A JSON array and not a comma list, so that an entry keeps a comma or spaces it holds.
    pub fn to_variable(&self) -> String {
        let mut entries: Vec<&str> = self.listed.iter().map(String::as_str).collect();
        entries.sort_unstable();
        Value::from(entries).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_list_written_out_reads_back_equal() {
        let read = |text: &str| {
            Admins::parse(
                "AUTH_ADMINS",
                serde_json::from_str::<Vec<String>>(text).unwrap(),
            )
            .unwrap()
        };
        let admins = Admins::new([
            "ops",
            "api_key:deploy",
            "hmac:ci, nightly",
            "email:a@example.com",
            "https://login.example.com#u-42",
            "https://login.example.com#u-7",
            " spaced \"quoted\" \u{e9}",
        ]);
        let text = admins.to_variable();
        assert!(
            text.starts_with("[\"") && text.contains("\"hmac:ci, nightly\""),
            "{text}"
        );
        assert_eq!(read(&text), admins);
        assert_eq!(read(&text).to_variable(), text);
        assert_eq!(Admins::default().to_variable(), "[]");
        assert_eq!(read("[]"), Admins::default());
        // Equality is by entries: a list without one of them is another list.
        assert_ne!(read(&text), Admins::new(["ops", "api_key:deploy"]));
        assert_ne!(Admins::new(["hmac:ops"]), Admins::new(["ops"]));
    }

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

    fn oidc(issuer: &str) -> AuthMethod {
        AuthMethod::Oidc {
            issuer: issuer.into(),
        }
    }

    fn hmac() -> AuthMethod {
        AuthMethod::Hmac {
            issuer: "tower-auth".into(),
        }
    }

    fn is_admin(admins: &Admins, builder: IdentityBuilder) -> bool {
        builder.admins(admins).build().has_role(ADMIN_ROLE)
    }

    #[test]
    fn unqualified_entries_match_subject_verified_email_or_key_name() {
        let admins = Admins::new(["ops", "root@example.com", "deploy-key"]);
        let by_subject = Identity::builder("ops", oidc("https://i"));
        let by_email = Identity::builder("u1", oidc("https://i"))
            .email("root@example.com")
            .email_verified(true);
        let by_key = Identity::builder("x", key("deploy-key"));
        let by_hmac_subject = Identity::builder("ops", hmac());
        let nobody = Identity::builder("Ops", key("other"));
        assert!(is_admin(&admins, by_subject));
        assert!(is_admin(&admins, by_email));
        assert!(is_admin(&admins, by_key));
        assert!(is_admin(&admins, by_hmac_subject));
        assert!(
            !is_admin(&admins, nobody),
            "matching is exact and case-sensitive"
        );
    }

    /// SECURITY.md M1.
    #[test]
    fn an_unverified_email_never_matches() {
        for admins in [
            Admins::new(["root@example.com"]),
            Admins::new(["email:root@example.com"]),
        ] {
            let unverified = Identity::builder("u1", oidc("https://i")).email("root@example.com");
            let said_false = Identity::builder("u1", oidc("https://i"))
                .email("root@example.com")
                .email_verified(false);
            let verified = Identity::builder("u1", oidc("https://i"))
                .email("root@example.com")
                .email_verified(true);
            assert!(!is_admin(&admins, unverified), "{admins:?}");
            assert!(!is_admin(&admins, said_false), "{admins:?}");
            assert!(is_admin(&admins, verified), "{admins:?}");
        }
        let verified_without_email = Identity::builder("u1", oidc("https://i"))
            .email_verified(true)
            .build();
        assert!(!verified_without_email.email_verified());
    }

    /// SECURITY.md M2.
    #[test]
    fn qualified_entries_match_only_their_method() {
        let admins = Admins::new([
            "api_key:deploy",
            "hmac:ops",
            "email:boss@example.com",
            "https://a.example#u-1",
        ]);
        // Each entry's own method.
        assert!(is_admin(
            &admins,
            Identity::builder("deploy", key("deploy"))
        ));
        assert!(is_admin(&admins, Identity::builder("ops", hmac())));
        assert!(is_admin(
            &admins,
            Identity::builder("u-9", oidc("https://b.example"))
                .email("boss@example.com")
                .email_verified(true)
        ));
        assert!(is_admin(
            &admins,
            Identity::builder("u-1", oidc("https://a.example"))
        ));
        // The same names through another method, or another issuer.
        assert!(!is_admin(&admins, Identity::builder("deploy", hmac())));
        assert!(!is_admin(
            &admins,
            Identity::builder("deploy", oidc("https://a.example"))
        ));
        assert!(!is_admin(&admins, Identity::builder("ops", key("ops"))));
        assert!(!is_admin(
            &admins,
            Identity::builder("ops", oidc("https://a.example"))
        ));
        assert!(!is_admin(
            &admins,
            Identity::builder("u-1", oidc("https://b.example"))
        ));
        assert!(!is_admin(
            &admins,
            Identity::builder("u-1", oidc("https://a.example/"))
        ));
        assert!(!is_admin(&admins, Identity::builder("u-1", hmac())));
        assert!(
            !is_admin(
                &admins,
                Identity::builder("boss@example.com", oidc("https://a.example"))
            ),
            "email: matches an email, never a subject"
        );
        assert!(!is_admin(
            &admins,
            Identity::builder("api_key:deploy", hmac())
        ));
        assert!(admins.unqualified().is_empty());
        assert_eq!(admins.issuers(), ["https://a.example"]);
        assert!(admins.contains("hmac:ops") && !admins.contains("ops"));
    }

    #[test]
    fn entries_are_told_apart_by_their_form() {
        assert_eq!(Entry::parse("api_key:a:b"), Ok(Entry::ApiKey("a:b")));
        assert_eq!(
            Entry::parse("https://idp.example/realms/x#a#b"),
            Ok(Entry::Oidc {
                issuer: "https://idp.example/realms/x",
                subject: "a#b"
            })
        );
        assert_eq!(Entry::parse("team#ops"), Ok(Entry::Unqualified("team#ops")));
        assert_eq!(Entry::parse("oidc:ops"), Ok(Entry::Unqualified("oidc:ops")));
        for (empty, what) in [
            ("api_key:", "key name"),
            ("hmac:", "subject"),
            ("email:", "address"),
            ("http://127.0.0.1:9#", "subject"),
            ("", "name"),
        ] {
            assert_eq!(Entry::parse(empty), Err(what), "{empty:?}");
        }
        let err = Admins::parse("AUTH_ADMINS", ["ops", "api_key:"]).unwrap_err();
        assert_eq!(err.variable(), "AUTH_ADMINS");
        assert!(err.to_string().contains("entry #2"), "{err}");
        let lenient = Admins::new(["ops", "api_key:", ""]);
        assert_eq!(lenient.unqualified(), ["ops"]);
        assert!(!lenient.contains("api_key:"));
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
