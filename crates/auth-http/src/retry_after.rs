//! `Retry-After` (RFC 9110 section 10.2.3), as 429 and 5xx responses carry it.

use std::time::{Duration, SystemTime};

/// A `Retry-After` longer than this is cut down.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` (RFC 9110 section 10.2.3): delay-seconds, or an HTTP-date in any of the three
/// formats a recipient must accept (section 5.6.7). A date is measured from the response's own
/// `Date` when it has one, so that both ends of the wait come from the server's clock and our
/// clock's skew does not count; from our clock otherwise. A date already past means no wait.
pub(crate) fn parse_retry_after(value: &str, date: Option<&str>) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than a u64 holds is still a (very) long wait: capped below.
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let until = httpdate::parse_http_date(value).ok()?;
        let now = date
            .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
            .unwrap_or_else(SystemTime::now);
        until.duration_since(now).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_delta_seconds_capped() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(parse_retry_after("120", None), secs(120));
        assert_eq!(parse_retry_after(" 7 ", None), secs(7));
        assert_eq!(parse_retry_after("999999", None), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", None),
            Some(MAX_RETRY_AFTER)
        );
        for bad in [
            "-1",
            "+5",
            "1.5",
            "",
            "soon",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_dates_count_from_the_servers_date() {
        let date = Some("Wed, 21 Oct 2015 07:28:00 GMT");
        let secs = |s| Some(Duration::from_secs(s));
        // IMF-fixdate, and the obsolete RFC 850 and asctime forms.
        for later in [
            "Wed, 21 Oct 2015 07:30:00 GMT",
            "Wednesday, 21-Oct-15 07:30:00 GMT",
            "Wed Oct 21 07:30:00 2015",
        ] {
            assert_eq!(parse_retry_after(later, date), secs(120), "{later}");
        }
        // Already past by the server's clock: no wait. Far ahead: capped.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", date),
            secs(0)
        );
        assert_eq!(
            parse_retry_after("Thu, 22 Oct 2015 07:28:00 GMT", date),
            Some(MAX_RETRY_AFTER)
        );
        // No usable Date: our clock, by which 2015 is past and 9999 beyond the cap.
        for no_date in [None, Some("yesterday")] {
            assert_eq!(
                parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", no_date),
                secs(0)
            );
            assert_eq!(
                parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", no_date),
                Some(MAX_RETRY_AFTER)
            );
        }
    }
}
