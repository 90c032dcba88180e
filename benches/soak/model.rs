//! What the demo may answer to one request, from what the soak did to the key file and what
//! the IdP served: the judge of every request.
//!
//! A request is sent at `t0` and answered at `t1`; the demo decides it at some instant in
//! between, with the key state it holds then. The soak knows which states the demo can hold
//! at each instant (below), and allows the union of their answers over `[t0, t1]`:
//!
//! * **OIDC.** The demo's key set for the issuer is the last JWKS document the IdP served it
//!   (recorded by [`crate::idp`] at the instant it is handed to the connection), "confirmed" at
//!   the instant the demo stored it, at most [`STORE_SLACK`] later. A state after document `i`
//!   served at `a_i` may be in force from `a_i` until `a_{i+1} + STORE_SLACK`. Its keys are
//!   **available** at read time `t` while `t - confirmed_i <= max_stale` (ten refresh
//!   intervals, DESIGN.md's JWKS policy): surely when `t <= a_i + max_stale`, surely not when
//!   `t > a_i + STORE_SLACK + max_stale`. A token whose claims pass (issuer, audience, `exp`)
//!   then gets: 200 (or 403 on a role it lacks) when its kid is in the set and its signature
//!   good; 401 when the set lacks its kid or the signature is bad; 503 when the set is past
//!   max-stale (or none was ever served). Failed fetches change nothing (last-known-good),
//!   and an on-demand fetch during the request is a document served within `[t0, t1]`, so
//!   its state is in the union. Claims that fail (expired, wrong audience, `alg` HS256, an
//!   unknown issuer) get 401 whatever the keys: the demo checks them before the key set.
//! * **API keys.** The demo polls `API_KEYS_FILE` every [`KEY_FILE_POLL`]; a version written
//!   (renamed into place) at `w_j` is in force at `t` only if it is the latest written before
//!   some poll in `(t - KEY_FILE_POLL - POLL_SLACK, t]`. A malformed version keeps the keys in
//!   force, an empty one leaves none.
//! * **`exp`.** Refused iff `now_unix >= exp + leeway` on the demo's wall clock, read between
//!   the soak's readings at `t0` and `t1` (same machine, same clock).
//!
//! A request is wrong when its answer is not in the allowed set: **refused** (a valid
//! credential refused while every state allows only acceptance), **accepted** (200/403 when no
//! state allows acceptance), or **other** (any other mismatch: a 503 where only 401 fits, a
//! 500, no answer).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::idp::Served;

/// How long after the IdP hands a JWKS document to its connection the demo may still be
/// answering with the previous set (body read, parsed, stored).
pub(crate) const STORE_SLACK: Duration = Duration::from_secs(2);
/// The demo's `API_KEYS_FILE` poll interval (`DEFAULT_KEY_FILE_POLL`).
pub(crate) const KEY_FILE_POLL: Duration = Duration::from_secs(5);
/// Scheduling delay a poll may suffer on a loaded machine.
pub(crate) const POLL_SLACK: Duration = Duration::from_secs(3);

/// An answer, HTTP or gRPC alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Answer {
    /// 200 / OK.
    Ok,
    /// 401 / UNAUTHENTICATED.
    Unauthenticated,
    /// 403 / PERMISSION_DENIED.
    Forbidden,
    /// 503 / UNAVAILABLE.
    Unavailable,
    /// Any other status or gRPC code.
    Other(u16),
    /// No answer: a transport error or timeout.
    Silent,
}

impl Answer {
    fn bit(self) -> u8 {
        match self {
            Self::Ok => 1,
            Self::Unauthenticated => 2,
            Self::Forbidden => 4,
            Self::Unavailable => 8,
            Self::Other(_) | Self::Silent => 0,
        }
    }

    pub(crate) fn name(self) -> String {
        match self {
            Self::Ok => "ok".into(),
            Self::Unauthenticated => "401".into(),
            Self::Forbidden => "403".into(),
            Self::Unavailable => "503".into(),
            Self::Other(code) => format!("other({code})"),
            Self::Silent => "no-answer".into(),
        }
    }

    pub(crate) fn accepted(self) -> bool {
        matches!(self, Self::Ok | Self::Forbidden)
    }
}

/// A set of answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Allowed(u8);

impl Allowed {
    pub(crate) fn add(&mut self, answer: Answer) {
        self.0 |= answer.bit();
    }

    pub(crate) fn contains(self, answer: Answer) -> bool {
        answer.bit() != 0 && self.0 & answer.bit() != 0
    }

    pub(crate) fn len(self) -> u32 {
        self.0.count_ones()
    }

    pub(crate) fn may_accept(self) -> bool {
        self.contains(Answer::Ok) || self.contains(Answer::Forbidden)
    }

    pub(crate) fn names(self) -> String {
        [
            Answer::Ok,
            Answer::Unauthenticated,
            Answer::Forbidden,
            Answer::Unavailable,
        ]
        .into_iter()
        .filter(|a| self.contains(*a))
        .map(Answer::name)
        .collect::<Vec<_>>()
        .join("|")
    }
}

/// How a judged answer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Right,
    /// A credential that every state accepts was refused.
    WrongRefused,
    /// A credential that no state accepts was accepted.
    WrongAccepted,
    /// Any other answer outside the allowed set.
    WrongOther,
}

pub(crate) fn verdict(allowed: Allowed, answer: Answer) -> Verdict {
    if allowed.contains(answer) {
        Verdict::Right
    } else if answer.accepted() && !allowed.may_accept() {
        Verdict::WrongAccepted
    } else if !answer.accepted()
        && allowed.may_accept()
        && !allowed.contains(Answer::Unauthenticated)
        && !allowed.contains(Answer::Unavailable)
    {
        Verdict::WrongRefused
    } else {
        Verdict::WrongOther
    }
}

/// The answer of an authenticated request: 403 on a path needing `admin` without it.
pub(crate) fn authenticated(admin_path: bool, admin: bool) -> Answer {
    if admin_path && !admin {
        Answer::Forbidden
    } else {
        Answer::Ok
    }
}

/// The two wall-clock readings around a request, in Unix seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub t0: Instant,
    pub t1: Instant,
    pub u0: u64,
    pub u1: u64,
}

/// `(may be unexpired, may be expired)` for a token with `exp`.
pub(crate) fn expiry(exp: u64, leeway: u64, span: &Span) -> (bool, bool) {
    let limit = exp.saturating_add(leeway);
    (span.u0 < limit, span.u1 >= limit)
}

/// The answers an OIDC token whose claims pass may get, signed by key `kid` (`good_sig`
/// false: a signature that no key verifies, such as a tampered token).
pub(crate) fn oidc(
    served: &[Served],
    kid: &str,
    good_sig: bool,
    ok: Answer,
    max_stale: Duration,
    span: &Span,
) -> Allowed {
    let mut allowed = Allowed::default();
    let (t0, t1) = (span.t0, span.t1);
    // No key set yet: 503 until the first document is stored.
    if served.first().is_none_or(|s| t0 <= s.at + STORE_SLACK) {
        allowed.add(Answer::Unavailable);
    }
    for (i, state) in served.iter().enumerate().rev() {
        let from = state.at;
        let until = served.get(i + 1).map(|next| next.at + STORE_SLACK);
        if until.is_some_and(|u| u < t0) {
            break;
        }
        if from > t1 {
            continue;
        }
        // The part of [t0, t1] this state may be in force.
        let lo = t0.max(from);
        let hi = until.map_or(t1, |u| u.min(t1));
        if lo <= from + STORE_SLACK + max_stale {
            if good_sig && state.kids.iter().any(|k| k == kid) {
                allowed.add(ok);
            } else {
                allowed.add(Answer::Unauthenticated);
            }
        }
        if hi > from + max_stale {
            allowed.add(Answer::Unavailable);
        }
    }
    allowed
}

/// A version of the key file: when it was renamed into place, and the keys (by number) the
/// demo holds after reading it.
#[derive(Clone, Debug)]
pub(crate) struct FileVersion {
    pub(crate) at: Instant,
    pub(crate) keys: Arc<HashSet<u64>>,
}

/// `(may be valid, may be invalid)` for API key number `key` (`None`: never issued).
pub(crate) fn api_key(versions: &[FileVersion], key: Option<u64>, span: &Span) -> (bool, bool) {
    let Some(key) = key else {
        return (false, true);
    };
    let window = KEY_FILE_POLL + POLL_SLACK;
    let earliest = span.t0.checked_sub(window);
    let (mut valid, mut invalid) = (false, false);
    for (i, version) in versions.iter().enumerate().rev() {
        if version.at > span.t1 {
            continue;
        }
        if version.keys.contains(&key) {
            valid = true;
        } else {
            invalid = true;
        }
        // Older versions are out of reach once one was in place before the earliest poll.
        let before_window = earliest.is_none_or(|e| version.at <= e);
        if before_window || i == 0 {
            break;
        }
    }
    (valid, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(t0: Instant, from: u64, to: u64) -> Span {
        Span {
            t0: t0 + Duration::from_secs(from),
            t1: t0 + Duration::from_secs(to),
            u0: from,
            u1: to,
        }
    }

    fn served(base: Instant, at: u64, kids: &[&str]) -> Served {
        Served {
            at: base + Duration::from_secs(at),
            kids: kids.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    #[test]
    fn oidc_answers_follow_the_served_key_sets_and_max_stale() {
        let base = Instant::now();
        let slack = STORE_SLACK.as_secs();
        let history = [served(base, 10, &["a"]), served(base, 20, &["a", "b"])];
        let stale = Duration::from_secs(40);
        let judge = |kid, from, to| {
            oidc(
                &history,
                kid,
                true,
                Answer::Ok,
                stale,
                &span(base, from, to),
            )
            .names()
        };
        assert_eq!(judge("a", 0, 1), "503");
        assert_eq!(judge("a", 10 + slack + 1, 19), "ok");
        assert_eq!(judge("b", 10 + slack + 1, 19), "401");
        // Around the second document both sets may be in force.
        assert_eq!(judge("b", 20, 20), "ok|401");
        assert_eq!(judge("b", 20 + slack, 20 + slack), "ok|401");
        assert_eq!(judge("b", 20 + slack + 1, 30), "ok");
        // Past max-stale of the last document (served at 20): 503 only.
        assert_eq!(judge("b", 59, 60), "ok");
        assert_eq!(judge("b", 60, 61), "ok|503");
        assert_eq!(judge("b", 60 + slack, 60 + slack), "ok|503");
        assert_eq!(judge("b", 60 + slack + 1, 70), "503");
        // A bad signature is never accepted.
        let later = span(base, 30, 31);
        let bad = oidc(&history, "a", false, Answer::Ok, stale, &later);
        assert_eq!(bad.names(), "401");
        assert_eq!(verdict(bad, Answer::Ok), Verdict::WrongAccepted);
        assert_eq!(verdict(bad, Answer::Forbidden), Verdict::WrongAccepted);
        let good = oidc(&history, "a", true, Answer::Ok, stale, &later);
        assert_eq!(
            verdict(good, Answer::Unauthenticated),
            Verdict::WrongRefused
        );
        assert_eq!(verdict(good, Answer::Other(500)), Verdict::WrongRefused);
        assert_eq!(verdict(bad, Answer::Unavailable), Verdict::WrongOther);
        assert_eq!(verdict(good, Answer::Ok), Verdict::Right);
    }

    #[test]
    fn api_keys_follow_the_file_with_the_poll_window() {
        let base = Instant::now();
        let version = |at: u64, keys: &[u64]| FileVersion {
            at: base + Duration::from_secs(at),
            keys: Arc::new(keys.iter().copied().collect()),
        };
        let versions = [version(0, &[1]), version(20, &[1, 2]), version(40, &[2])];
        assert_eq!(
            api_key(&versions, Some(1), &span(base, 10, 11)),
            (true, false)
        );
        assert_eq!(
            api_key(&versions, Some(2), &span(base, 10, 11)),
            (false, true)
        );
        assert_eq!(
            api_key(&versions, Some(2), &span(base, 21, 22)),
            (true, true)
        );
        assert_eq!(
            api_key(&versions, Some(2), &span(base, 28, 29)),
            (true, false)
        );
        assert_eq!(
            api_key(&versions, Some(1), &span(base, 45, 46)),
            (true, true)
        );
        assert_eq!(
            api_key(&versions, Some(1), &span(base, 48, 49)),
            (false, true)
        );
        assert_eq!(api_key(&versions, None, &span(base, 48, 49)), (false, true));
    }

    #[test]
    fn expiry_is_exp_plus_leeway_on_either_reading() {
        let base = Instant::now();
        assert_eq!(expiry(100, 5, &span(base, 104, 104)), (true, false));
        assert_eq!(expiry(100, 5, &span(base, 104, 105)), (true, true));
        assert_eq!(expiry(100, 5, &span(base, 105, 106)), (false, true));
    }
}
