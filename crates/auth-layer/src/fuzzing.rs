//! Doors into crate-private parsers for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Not an API: hidden from the documentation, absent unless the feature is on, and never to
//! be enabled in production. Each door runs the code the configuration runs.

use std::fmt;

use tower_auth_core::ConfigError;

use crate::rules::{Rules, parse_method_roles};

/// The role rules of an `AUTH_METHOD_ROLES` value, as the configuration reads them.
pub struct MethodRoles(Rules);

/// Reads `value` as `AUTH_METHOD_ROLES` is read (over the default exemptions); errors name
/// `AUTH_METHOD_ROLES`.
pub fn method_roles(value: &str) -> Result<MethodRoles, ConfigError> {
    let mut rules = Rules::default();
    parse_method_roles("AUTH_METHOD_ROLES", value, &mut rules)?;
    Ok(MethodRoles(rules))
}

impl MethodRoles {
    /// The rules written back in the variable's syntax.
    pub fn to_variable(&self) -> String {
        self.0.method_roles()
    }
}

/// The same role rules (exemptions are not compared).
impl PartialEq for MethodRoles {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_role_rules(&other.0)
    }
}

impl fmt::Debug for MethodRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MethodRoles")
            .field(&self.0.method_roles())
            .finish()
    }
}
