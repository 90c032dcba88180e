//! [`Capped`]: a request-supplied value as it may be logged.

use std::fmt;

/// A value that came with a request (a path, a `client_id`), as a log field: at most
/// [`Capped::MAX`] bytes of it, cut at a character boundary and followed by its whole length
/// when cut, with control characters escaped.
///
/// A rejected request is logged, so whatever a caller may send at will must not decide how
/// much is written: over HTTP/2 one stored 4,000-character path, replayed in 13-byte frames,
/// would otherwise write about 550 bytes of log for each byte sent.
///
/// ```
/// use tower_auth_core::Capped;
///
/// assert_eq!(Capped("/orders/42").to_string(), "/orders/42");
/// let long = format!("/{}", "a".repeat(4000));
/// let logged = Capped(&long).to_string();
/// assert!(logged.ends_with("... (4001 bytes)"));
/// assert!(logged.len() < 160);
/// assert_eq!(Capped("a\nb").to_string(), "a\\nb");
/// ```
#[derive(Clone, Copy)]
pub struct Capped<'a>(pub &'a str);

impl Capped<'_> {
    /// How many bytes of the value are written.
    pub const MAX: usize = 128;
}

impl fmt::Display for Capped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        let mut end = value.len().min(Self::MAX);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{}", value[..end].escape_debug())?;
        if end < value.len() {
            write!(f, "... ({} bytes)", value.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Capped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_cut_at_a_character_boundary_with_its_length() {
        // 127 ASCII bytes and then a 2-byte character across the cut.
        let value = format!("{}é{}", "a".repeat(127), "b".repeat(500));
        let logged = Capped(&value).to_string();
        assert_eq!(
            logged,
            format!("{}... ({} bytes)", "a".repeat(127), value.len())
        );
        let exact = "c".repeat(Capped::MAX);
        assert_eq!(Capped(&exact).to_string(), exact);
        assert_eq!(format!("{:?}", Capped("x\ty")), "\"x\\ty\"");
    }
}
