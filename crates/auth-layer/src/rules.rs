//! What a path (or full gRPC method) asks for: nothing (exempt), a role requirement, or just
//! an identity.

use std::borrow::Cow;
use std::sync::Arc;

use tower_auth_core::{AuthError, ConfigError, Identity};

/// Paths exempt unless configured otherwise.
pub(crate) const DEFAULT_PUBLIC_PATHS: [&str; 2] = ["/health", "/grpc.health.v1.Health/Check"];

/// Roles a route needs: any one of them, or all of them.
#[derive(Debug)]
pub(crate) struct RoleRequirement {
    all: bool,
    roles: Box<[String]>,
    /// The roles space-separated, as `scope` in the 403 challenge (RFC 6750 section 3).
    scope: Arc<str>,
}

impl RoleRequirement {
    pub(crate) fn new(all: bool, roles: Vec<String>) -> Result<Self, String> {
        if roles.is_empty() {
            return Err("a role requirement needs at least one role".into());
        }
        // RFC 6750 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): no space, quote or backslash.
        if let Some(bad) = roles.iter().position(|r| {
            r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(format!(
                "role #{} is empty or has a space, quote, backslash or non-ASCII character",
                bad + 1
            ));
        }
        let scope = roles.join(" ").into();
        Ok(Self {
            all,
            roles: roles.into(),
            scope,
        })
    }

    pub(crate) fn check(&self, identity: &Identity) -> Result<(), AuthError> {
        let satisfied = if self.all {
            self.roles.iter().all(|r| identity.has_role(r))
        } else {
            self.roles.iter().any(|r| identity.has_role(r))
        };
        if satisfied {
            Ok(())
        } else {
            Err(AuthError::insufficient_scope(Arc::clone(&self.scope)))
        }
    }
}

/// What a request path needs.
pub(crate) enum PathRule<'a> {
    /// Public: never rejected, though a valid credential still yields an identity.
    Exempt,
    /// An identity with these roles.
    Require(&'a RoleRequirement),
    /// Any identity.
    Authenticated,
}

/// What an exact path has: an exemption, a role rule, or both (then the exemption wins).
#[derive(Clone, Debug, Default)]
struct Exact {
    exempt: bool,
    requirement: Option<Arc<RoleRequirement>>,
}

/// Exemptions and per-path role rules.
///
/// Exemptions match the raw path exactly: no prefix, no normalisation, so `/health/../admin`,
/// `//health`, `/health/` and `/Health` are not `/health`, and an exemption never widens.
/// Role rules match the path as a router may serve it ([`rule_path`]): a rule for `/admin`
/// also covers `/admin/`, `//admin` and `/%61dmin`, which axum's `nest_service("/admin", ..)`
/// (or a normalising proxy in front) would route to the same service.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    /// Exemptions and role rules by exact path, sorted by path: a request finds its path with
    /// a binary search, a few short comparisons where a hash map would first hash the whole
    /// (client-chosen) path with SipHash.
    exact: Vec<(Box<str>, Exact)>,
    /// `/pkg.Service/*` exemptions, stored as `/pkg.Service/`. They apply to gRPC requests
    /// only, whose path is always exactly `/package.Service/Method`; an HTTP path never
    /// matches them, so they cannot become a prefix bypass for HTTP routes.
    exempt_grpc_services: Vec<Box<str>>,
    /// `/pkg.Service/*` rules, stored as `/pkg.Service/`, in the order they were added.
    by_prefix: Vec<(Box<str>, Arc<RoleRequirement>)>,
    /// Each `by_prefix` rule's prefix and place there, sorted by prefix (then place): a request
    /// looks up each of its own prefixes ending in `/` by binary search, so the cost grows with
    /// the path's segments and the log of the rules, not with the number of rules (issue 18).
    prefix_index: Vec<(Box<str>, usize)>,
    /// The longest prefix in `by_prefix`: longer prefixes of a path are not looked up.
    longest_prefix: usize,
}

impl Default for Rules {
    fn default() -> Self {
        let mut rules = Self {
            exact: Vec::new(),
            exempt_grpc_services: Vec::new(),
            by_prefix: Vec::new(),
            prefix_index: Vec::new(),
            longest_prefix: 0,
        };
        for path in DEFAULT_PUBLIC_PATHS {
            rules.exact_mut(path).exempt = true;
        }
        rules
    }
}

impl Rules {
    /// The entry for exactly `path`, added empty if there is none.
    fn exact_mut(&mut self, path: &str) -> &mut Exact {
        let at = match self.exact.binary_search_by(|(p, _)| (**p).cmp(path)) {
            Ok(at) => at,
            Err(at) => {
                self.exact.insert(at, (path.into(), Exact::default()));
                at
            }
        };
        &mut self.exact[at].1
    }

    /// Whether any `/pkg.Service/*` exemption is configured: only they depend on `grpc` in
    /// [`classify`](Self::classify).
    pub(crate) fn has_grpc_service_exemptions(&self) -> bool {
        !self.exempt_grpc_services.is_empty()
    }

    pub(crate) fn classify(&self, path: &str, grpc: bool) -> PathRule<'_> {
        let exact = self
            .exact
            .binary_search_by(|(p, _)| (**p).cmp(path))
            .ok()
            .map(|at| &self.exact[at].1);
        if exact.is_some_and(|e| e.exempt)
            || (grpc
                && self
                    .exempt_grpc_services
                    .iter()
                    .any(|s| path.starts_with(&**s)))
        {
            return PathRule::Exempt;
        }
        if let Some(r) = exact.and_then(|e| e.requirement.as_deref()) {
            return PathRule::Require(r);
        }
        // The raw path found no rule of its own; its rule form may (a rule covers more than
        // the one spelling it was written in, never less).
        let normal = rule_path(path);
        if let Cow::Owned(normal) = &normal
            && let Ok(at) = self.exact.binary_search_by(|(p, _)| (**p).cmp(normal))
            && let Some(r) = self.exact[at].1.requirement.as_deref()
        {
            return PathRule::Require(r);
        }
        match self.prefix_rule(path, &normal) {
            Some(r) => PathRule::Require(r),
            None => PathRule::Authenticated,
        }
    }

    /// The `/pkg.Service/*` rule for `path` (whose rule form is `normal`): of the rules whose
    /// prefix starts `path` or `normal`, or is `normal` with a `/` added (`/admin/*` also
    /// covers `/admin` itself, which `nest_service("/admin", ..)` serves as its `/`), the
    /// longest, and of equally long ones the first added.
    ///
    /// Every prefix ends in `/`, so the prefixes that can start `path` are the path's own
    /// prefixes that end at one of its `/`: those (up to the longest rule's length) are looked
    /// up in `prefix_index`, a binary search each, instead of testing every rule in turn.
    fn prefix_rule(&self, path: &str, normal: &str) -> Option<&RoleRequirement> {
        if self.by_prefix.is_empty() {
            return None;
        }
        // (length, place in `by_prefix`) of the best match so far.
        let mut best: Option<(usize, usize)> = None;
        let mut consider = |len: usize, found: Option<usize>| {
            if let Some(place) = found
                && best.is_none_or(|(l, p)| len > l || (len == l && place < p))
            {
                best = Some((len, place));
            }
        };
        for text in [path, normal] {
            for (at, _) in text
                .bytes()
                .enumerate()
                .take(self.longest_prefix)
                .filter(|&(_, b)| b == b'/')
            {
                let candidate = &text[..=at];
                consider(at + 1, self.find_prefix(|p| p.cmp(candidate)));
            }
        }
        if normal.len() < self.longest_prefix {
            let with_slash = |p: &str| p.bytes().cmp(normal.bytes().chain([b'/']));
            consider(normal.len() + 1, self.find_prefix(with_slash));
        }
        best.map(|(_, place)| &*self.by_prefix[place].1)
    }

    /// The first-added place of the prefix for which `order` (the prefix against the one
    /// looked for) says `Equal`.
    fn find_prefix(&self, order: impl Fn(&str) -> std::cmp::Ordering) -> Option<usize> {
        let at = self
            .prefix_index
            .partition_point(|(p, _)| order(p) == std::cmp::Ordering::Less);
        self.prefix_index
            .get(at)
            .filter(|(p, _)| order(p) == std::cmp::Ordering::Equal)
            .map(|&(_, place)| place)
    }

    /// Exempts an exact path, or every method of a gRPC service (`/pkg.Service/*`).
    pub(crate) fn exempt(&mut self, path: &str) -> Result<(), String> {
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            return Err(format!("`{path}` is not a path starting with `/`"));
        }
        match path.strip_suffix('*') {
            None if !path.contains('*') => {
                self.exact_mut(path).exempt = true;
            }
            Some(service) if is_grpc_service_prefix(service) => {
                self.exempt_grpc_services.push(service.into())
            }
            _ => {
                return Err(format!(
                    "`{path}`: exemptions are exact paths, or `/package.Service/*` for a gRPC service"
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn clear_exemptions(&mut self) {
        self.exact.retain_mut(|(_, e)| {
            e.exempt = false;
            e.requirement.is_some()
        });
        self.exempt_grpc_services.clear();
    }

    pub(crate) fn exemptions(&self) -> impl Iterator<Item = String> + '_ {
        self.exact
            .iter()
            .filter(|(_, e)| e.exempt)
            .map(|(p, _)| p.to_string())
            .chain(self.exempt_grpc_services.iter().map(|s| format!("{s}*")))
    }

    /// Every role a rule names, sorted and once each (the protected resource metadata's
    /// `scopes_supported`).
    pub(crate) fn roles(&self) -> std::collections::BTreeSet<&str> {
        let exact = self
            .exact
            .iter()
            .filter_map(|(_, e)| e.requirement.as_deref());
        let by_prefix = self.by_prefix.iter().map(|(_, r)| &**r);
        exact
            .chain(by_prefix)
            .flat_map(|r| r.roles.iter().map(String::as_str))
            .collect()
    }

    /// Adds a rule for an exact path or a `/pkg.Service/*` pattern.
    pub(crate) fn require(
        &mut self,
        pattern: &str,
        requirement: Arc<RoleRequirement>,
    ) -> Result<(), String> {
        if !pattern.starts_with('/') {
            return Err(format!("`{pattern}` does not start with `/`"));
        }
        match pattern.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                let place = self.by_prefix.len();
                self.by_prefix.push((prefix.into(), requirement));
                // After any earlier rule with the same prefix: the first added is found.
                let at = self.prefix_index.partition_point(|(p, _)| **p <= *prefix);
                self.prefix_index.insert(at, (prefix.into(), place));
                self.longest_prefix = self.longest_prefix.max(prefix.len());
            }
            Some(_) => {
                return Err(format!(
                    "`{pattern}`: `*` is only allowed as a whole last segment (`/pkg.Service/*`)"
                ));
            }
            None if pattern.contains('*') => {
                return Err(format!("`{pattern}`: `*` is only allowed at the end"));
            }
            None => {
                self.exact_mut(pattern).requirement = Some(requirement);
            }
        }
        Ok(())
    }
}

/// `path` as role rules see it: runs of `/` as one, one trailing `/` dropped (not from `/`
/// itself), and every percent-escape but `%2F` decoded once, as axum decodes route
/// parameters (`/users/root%40corp.example` reaches the handler of `/users/{id}` with
/// `root@corp.example`). `%2F` stays: decoded, it would split a segment in two. Decoded bytes
/// that are not UTF-8 become U+FFFD, which no rule names. Borrowed when there is nothing to
/// change.
fn rule_path(path: &str) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    let changes = bytes.contains(&b'%')
        || bytes.windows(2).any(|w| w == b"//")
        || (bytes.len() > 1 && bytes.ends_with(b"/"));
    if !changes {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if out.last() == Some(&b'/') => i += 1,
            b'%' => match escape(&bytes[i..]) {
                Some(byte) if byte != b'/' => {
                    out.push(byte);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    if out.len() > 1 && out.last() == Some(&b'/') {
        out.pop();
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The byte `escape` (`%XX...`) encodes, if it is a well-formed escape.
fn escape(escape: &[u8]) -> Option<u8> {
    let hex = std::str::from_utf8(escape.get(1..3)?).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// `/package.Service/`: one segment with a dot, as gRPC service names have.
fn is_grpc_service_prefix(prefix: &str) -> bool {
    prefix
        .strip_prefix('/')
        .and_then(|s| s.strip_suffix('/'))
        .is_some_and(|service| {
            service.contains('.')
                && !service.contains('/')
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        })
}

/// Parses `AUTH_METHOD_ROLES`: `/pkg.Svc/Method=role1+role2;/pkg.Admin/*=admin;/admin=admin`.
///
/// Each rule requires all of its `+`-joined roles; `|`-joined roles require any one of them.
pub(crate) fn parse_method_roles(
    variable: &str,
    value: &str,
    rules: &mut Rules,
) -> Result<(), ConfigError> {
    for (i, rule) in value
        .split(';')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .enumerate()
    {
        let err = |msg: String| ConfigError::new(variable, format!("rule #{}: {msg}", i + 1));
        let (pattern, roles) = rule
            .split_once('=')
            .ok_or_else(|| err("expected `PATH=role1+role2`".into()))?;
        let roles = roles.trim();
        let (all, parts): (bool, Vec<String>) = if roles.contains('|') {
            if roles.contains('+') {
                return Err(err("mixes `+` (all of) and `|` (any of)".into()));
            }
            (
                false,
                roles.split('|').map(|r| r.trim().to_owned()).collect(),
            )
        } else {
            (
                true,
                roles.split('+').map(|r| r.trim().to_owned()).collect(),
            )
        };
        let requirement = RoleRequirement::new(all, parts).map_err(err)?;
        rules
            .require(pattern.trim(), Arc::new(requirement))
            .map_err(err)?;
    }
    Ok(())
}

/// Used by the fuzz targets (`tower_auth::fuzzing`) and tests only.
#[cfg(any(test, feature = "fuzzing"))]
impl Rules {
    /// The role rules in the syntax of `AUTH_METHOD_ROLES`, which [`parse_method_roles`] reads
    /// back (into rules without role rules) to rules that [`Rules::same_role_rules`] finds
    /// equal: the exact-path rules sorted by path, then the `/pkg.Service/*` rules in the order
    /// they were added (a later rule for an earlier prefix included: it is never the one
    /// found, and is kept so), joined by `;`. A rule needs all of its roles joined by `+`,
    /// any one of those joined by `|`; one role is written alone (it needs all of one).
    ///
    /// Rules added in code ([`AuthLayerBuilder`](crate::AuthLayerBuilder)) may hold what the
    /// syntax cannot say (a path with `;` or `=`, or surrounding spaces); the variable's own
    /// rules never do. Exemptions are not written: they are `AUTH_PUBLIC_PATHS`.
    pub(crate) fn method_roles(&self) -> String {
        self.role_rules()
            .map(|(pattern, requirement)| {
                let joiner = if requirement.all { "+" } else { "|" };
                format!("{pattern}={}", requirement.roles.join(joiner))
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Whether `self` and `other` have the same role rules: the same exact paths with the same
    /// requirements, and the same `/pkg.Service/*` rules in the same order. Exemptions are not
    /// compared.
    pub(crate) fn same_role_rules(&self, other: &Rules) -> bool {
        self.role_rules()
            .map(|(pattern, r)| (pattern, r.needs_all(), &r.roles))
            .eq(other
                .role_rules()
                .map(|(pattern, r)| (pattern, r.needs_all(), &r.roles)))
    }

    /// Every role rule, as its pattern (`/pkg.Service/*` for a prefix) and requirement.
    fn role_rules(&self) -> impl Iterator<Item = (Cow<'_, str>, &RoleRequirement)> {
        let exact = self.exact.iter().filter_map(|(path, e)| {
            let requirement = e.requirement.as_deref()?;
            Some((Cow::Borrowed(&**path), requirement))
        });
        let by_prefix = self
            .by_prefix
            .iter()
            .map(|(prefix, r)| (Cow::Owned(format!("{prefix}*")), &**r));
        exact.chain(by_prefix)
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl RoleRequirement {
    /// Whether every role is needed: true as well for one role, however it was written.
    fn needs_all(&self) -> bool {
        self.all || self.roles.len() == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_auth_core::AuthMethod;

    fn id(roles: &[&str]) -> Identity {
        Identity::builder("s", AuthMethod::ApiKey { name: "k".into() })
            .roles(roles.iter().copied())
            .build()
    }

    /// SECURITY.md K6.
    #[test]
    fn a_role_rule_covers_the_spellings_a_router_serves_and_an_exemption_does_not() {
        let mut rules = Rules::default();
        let admin = Arc::new(RoleRequirement::new(false, vec!["admin".into()]).unwrap());
        rules.require("/admin", Arc::clone(&admin)).unwrap();
        rules.require("/ops/*", Arc::clone(&admin)).unwrap();
        rules.exempt("/public").unwrap();
        let required = |p: &str| matches!(rules.classify(p, false), PathRule::Require(_));
        for path in [
            "/admin",
            "/admin/",
            "//admin",
            "///admin//",
            "/%61dmin",
            "/%61%64min/",
            "/ops/x",
            "//ops//x",
            "/%6Fps/x",
            "/ops/",
            "/ops",
        ] {
            assert!(required(path), "{path}");
        }
        // Not the same path: another segment, an encoded slash, a case change.
        for path in [
            "/admin/x",
            "/admin%2F",
            "/Admin",
            "/%2Fadmin",
            "/adminx",
            "/opsx",
        ] {
            assert!(!required(path), "{path}");
        }
        // Exemptions stay exact.
        assert!(matches!(rules.classify("/public", false), PathRule::Exempt));
        for path in ["/public/", "//public", "/%70ublic"] {
            assert!(
                matches!(rules.classify(path, false), PathRule::Authenticated),
                "{path}"
            );
        }
    }

    #[test]
    fn the_rule_form_of_a_path() {
        for (raw, normal) in [
            ("/", "/"),
            ("/a", "/a"),
            ("//", "/"),
            ("/a//b/", "/a/b"),
            ("/%7e%2D%5f", "/~-_"),
            ("/a%40b%3A", "/a@b:"),
            ("/%2f%2F%zz%", "/%2f%2F%zz%"),
            ("/%2561", "/%61"),
            ("/%ff", "/\u{FFFD}"),
            ("/é//", "/é"),
        ] {
            assert_eq!(rule_path(raw), normal, "{raw}");
        }
        assert!(matches!(rule_path("/plain/path"), Cow::Borrowed(_)));
    }

    #[test]
    fn exemptions_are_exact() {
        let rules = Rules::default();
        assert!(matches!(rules.classify("/health", false), PathRule::Exempt));
        assert!(matches!(
            rules.classify("/grpc.health.v1.Health/Check", false),
            PathRule::Exempt
        ));
        for spoof in [
            "/health/../admin",
            "//health",
            "/health/",
            "/Health",
            "/health%2F",
            "/health;x",
            "/healthz",
            "/grpc.health.v1.Health/Watch",
        ] {
            assert!(
                matches!(rules.classify(spoof, false), PathRule::Authenticated),
                "{spoof}"
            );
        }
    }

    #[test]
    fn grpc_service_exemptions_apply_to_grpc_requests_only() {
        let mut rules = Rules::default();
        rules
            .exempt("/grpc.reflection.v1.ServerReflection/*")
            .unwrap();
        let method = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert!(matches!(rules.classify(method, true), PathRule::Exempt));
        assert!(matches!(
            rules.classify(method, false),
            PathRule::Authenticated
        ));
        assert!(matches!(
            rules.classify("/grpc.reflection.v1.ServerReflectionX/M", true),
            PathRule::Authenticated
        ));
        for bad in [
            "/static/*",
            "/a/b/*",
            "/x*",
            "*",
            "/pkg.Svc/M*",
            "no-slash",
            "/a b",
        ] {
            assert!(rules.exempt(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn any_and_all() {
        let any = RoleRequirement::new(false, vec!["a".into(), "b".into()]).unwrap();
        let all = RoleRequirement::new(true, vec!["a".into(), "b".into()]).unwrap();
        assert!(any.check(&id(&["b"])).is_ok());
        assert!(all.check(&id(&["b"])).is_err());
        assert!(all.check(&id(&["a", "b", "c"])).is_ok());
        let err = all.check(&id(&[])).unwrap_err();
        assert_eq!(err.scope(), Some("a b"));
        assert_eq!(err.http_status(), 403);
    }

    #[test]
    fn bad_role_names_are_refused() {
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(
                RoleRequirement::new(true, vec![bad.into()]).is_err(),
                "{bad:?}"
            );
        }
        assert!(RoleRequirement::new(true, vec![]).is_err());
    }

    #[test]
    fn method_roles_syntax() {
        let mut rules = Rules::default();
        parse_method_roles(
            "AUTH_METHOD_ROLES",
            "/pkg.Svc/Get=reader+auditor; /pkg.Admin/*=admin;/admin=admin|ops",
            &mut rules,
        )
        .unwrap();
        let PathRule::Require(get) = rules.classify("/pkg.Svc/Get", false) else {
            panic!()
        };
        assert!(get.check(&id(&["reader"])).is_err());
        assert!(get.check(&id(&["reader", "auditor"])).is_ok());
        let PathRule::Require(admin) = rules.classify("/pkg.Admin/Drop", false) else {
            panic!()
        };
        assert!(admin.check(&id(&["admin"])).is_ok());
        let PathRule::Require(any) = rules.classify("/admin", false) else {
            panic!()
        };
        assert!(any.check(&id(&["ops"])).is_ok());
        assert!(matches!(
            rules.classify("/pkg.Svc/Other", false),
            PathRule::Authenticated
        ));
        assert!(matches!(
            rules.classify("/admin/x", false),
            PathRule::Authenticated
        ));

        for bad in ["/x", "x=a", "/x=a+b|c", "/x/*y=a", "/x*=a", "/x="] {
            let err =
                parse_method_roles("AUTH_METHOD_ROLES", bad, &mut Rules::default()).unwrap_err();
            assert_eq!(err.variable(), "AUTH_METHOD_ROLES", "{bad}");
        }
    }

    #[test]
    fn clearing_exemptions_keeps_role_rules() {
        let mut rules = Rules::default();
        // Before, between and after the default exemptions in the sorted rules.
        parse_method_roles("V", "/z=admin;/a=ops;/health=admin", &mut rules).unwrap();
        rules.exempt("/m").unwrap();
        rules
            .exempt("/grpc.reflection.v1.ServerReflection/*")
            .unwrap();
        assert!(rules.has_grpc_service_exemptions());
        rules.clear_exemptions();
        assert!(!rules.has_grpc_service_exemptions());
        assert_eq!(rules.exemptions().count(), 0);
        for path in ["/m", "/grpc.health.v1.Health/Check"] {
            assert!(
                matches!(rules.classify(path, true), PathRule::Authenticated),
                "{path}"
            );
        }
        for path in ["/a", "/health", "/z"] {
            assert!(
                matches!(rules.classify(path, false), PathRule::Require(_)),
                "{path}"
            );
        }
    }

    #[test]
    fn exemption_wins_over_a_role_rule() {
        let mut rules = Rules::default();
        parse_method_roles("V", "/health=admin", &mut rules).unwrap();
        assert!(matches!(rules.classify("/health", false), PathRule::Exempt));
    }
}

/// The indexed lookup of `/pkg.Service/*` rules against the rule it replaced: test every rule
/// in turn, longest first, and of equally long ones the first added (issue 18).
#[cfg(test)]
mod prefix_index_tests {
    use super::*;

    fn linear<'r>(rules: &'r Rules, path: &str) -> Option<&'r RoleRequirement> {
        let normal = rule_path(path);
        let mut by_length: Vec<_> = rules.by_prefix.iter().collect();
        by_length.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        by_length
            .into_iter()
            .find(|(prefix, _)| {
                path.starts_with(&**prefix)
                    || normal.starts_with(&**prefix)
                    || prefix.strip_suffix('/') == Some(&*normal)
            })
            .map(|(_, r)| &**r)
    }

    /// A small deterministic generator (xorshift), so that a failure can be replayed.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, below: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % below as u64) as usize
        }

        fn text(&mut self, parts: usize) -> String {
            const PIECES: [&str; 8] = ["/", "a", "b.c", "%61", "%2F", "//", "S1", "\u{e9}"];
            (0..parts)
                .map(|_| PIECES[self.next(PIECES.len())])
                .collect()
        }
    }

    #[test]
    fn the_indexed_lookup_picks_the_rule_the_linear_scan_picked() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        let mut compared = 0;
        for round in 0..300 {
            let mut rules = Rules::default();
            for i in 0..1 + g.next(12) {
                let parts = 1 + g.next(3);
                let pattern = format!("/{}/*", g.text(parts));
                let requirement =
                    Arc::new(RoleRequirement::new(false, vec![format!("r{round}-{i}")]).unwrap());
                // Patterns the parser refuses (a `*` inside) are left out, as they would be.
                let _ = rules.require(&pattern, requirement);
            }
            for _ in 0..40 {
                let parts = g.next(6);
                let path = format!("/{}", g.text(parts));
                let indexed = rules.prefix_rule(&path, &rule_path(&path));
                let expected = linear(&rules, &path);
                assert_eq!(
                    indexed.map(|r| &r.scope),
                    expected.map(|r| &r.scope),
                    "{path} with {:?}",
                    rules.by_prefix.iter().map(|(p, _)| p).collect::<Vec<_>>()
                );
                compared += usize::from(expected.is_some());
            }
        }
        // Not only misses: most rounds find a rule.
        assert!(compared > 1000, "{compared}");
    }

    #[test]
    fn equal_prefixes_keep_the_first_rule_and_longer_prefixes_win() {
        let mut rules = Rules::default();
        let rule = |role: &str| Arc::new(RoleRequirement::new(false, vec![role.into()]).unwrap());
        rules.require("/pkg.A/*", rule("first")).unwrap();
        rules.require("/pkg.A/*", rule("second")).unwrap();
        rules.require("/pkg.A/sub/*", rule("longer")).unwrap();
        let scope = |path: &str| {
            rules
                .prefix_rule(path, &rule_path(path))
                .map(|r| r.scope.to_string())
        };
        assert_eq!(scope("/pkg.A/Get").as_deref(), Some("first"));
        assert_eq!(scope("/pkg.A").as_deref(), Some("first"));
        assert_eq!(scope("/pkg.A/sub/x").as_deref(), Some("longer"));
        assert_eq!(scope("//pkg.A//sub//x").as_deref(), Some("longer"));
        assert_eq!(scope("/pkg.B/Get"), None);
    }
}

/// `AUTH_METHOD_ROLES` written back (issue 18).
#[cfg(test)]
mod method_roles_text_tests {
    use super::*;

    fn method_roles(value: &str) -> Rules {
        let mut rules = Rules::default();
        parse_method_roles("AUTH_METHOD_ROLES", value, &mut rules).unwrap();
        rules
    }

    #[test]
    fn method_roles_written_back_read_back_the_same() {
        for (value, written) in [
            ("", ""),
            (" ; ;", ""),
            ("/admin=admin", "/admin=admin"),
            (
                " /pkg.Svc/Get = reader + auditor ; /pkg.Admin/*=admin;/admin=admin | ops ;",
                "/admin=admin|ops;/pkg.Svc/Get=reader+auditor;/pkg.Admin/*=admin",
            ),
            // A later rule for the same path replaces the earlier one; a later rule for the
            // same prefix is kept, behind the first.
            (
                "/b=x;/a=y;/b=z;/p/*=1;/q.R/*=2;/p/*=3",
                "/a=y;/b=z;/p/*=1;/q.R/*=2;/p/*=3",
            ),
            // Roles with `=`, repeated roles, odd but allowed paths, the root prefix.
            (
                "/x y=a=b+a=b;/%61dmin/=r;/*=any;/health=admin",
                "/%61dmin/=r;/health=admin;/x y=a=b+a=b;/*=any",
            ),
            ("/\u{e9}t\u{e9}=r|s|r", "/\u{e9}t\u{e9}=r|s|r"),
        ] {
            let rules = method_roles(value);
            let text = rules.method_roles();
            assert_eq!(text, written, "{value}");
            let again = method_roles(&text);
            assert!(again.same_role_rules(&rules), "{value} -> {text}");
            assert_eq!(again.method_roles(), text);
        }
    }

    #[test]
    fn role_rules_differ_by_path_roles_or_order() {
        let base = method_roles("/a=x+y;/p/*=1;/q/*=2");
        for other in [
            "/a=x|y",
            "/a=x+y;/p/*=1",
            "/a=x+y;/q/*=2;/p/*=1",
            "/a=y+x;/p/*=1;/q/*=2",
            "/b=x+y;/p/*=1;/q/*=2",
            "/a=x+y;/p/*=1;/q/*=2;/p/*=3",
            "/a=x+y+x;/p/*=1;/q/*=2",
        ] {
            assert!(!method_roles(other).same_role_rules(&base), "{other}");
        }
        // Exemptions are not role rules; one role is needed however it is joined.
        let mut exempt = method_roles("/a=x+y;/p/*=1;/q/*=2");
        exempt.clear_exemptions();
        exempt.exempt("/other").unwrap();
        assert!(exempt.same_role_rules(&base));
        let mut one = Rules::default();
        one.require(
            "/a",
            Arc::new(RoleRequirement::new(false, vec!["x".into()]).unwrap()),
        )
        .unwrap();
        assert!(one.same_role_rules(&method_roles("/a=x")));
        assert!(method_roles(&one.method_roles()).same_role_rules(&one));
    }
}
