//! `auth-token`: mint, decode and digest from the command line.
//!
//! ```text
//! auth-token mint --sub ops --role runtime.health:read [--role ...] [--ttl 1h] [--aud A]
//! auth-token decode <token>
//! auth-token digest            (secret from AUTH_TOKEN_SECRET_INPUT or standard input)
//! ```
//!
//! The HMAC secret is read from `HMAC_SECRET` (and `HMAC_SECRET_PREVIOUS`, `HMAC_ISSUER`,
//! `HMAC_AUDIENCE`, `AUTH_LEEWAY_SECS`), never from the command line, where it would show
//! in `ps` and shell history.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use tower_auth_core::{Secret, sha256_digest};
use tower_auth_hmac::HmacConfig;
use zeroize::Zeroize as _;

const USAGE: &str = "usage:
  auth-token mint --sub SUBJECT [--role ROLE]... [--ttl 1h] [--aud AUDIENCE]
  auth-token decode TOKEN
  auth-token digest      (reads the secret from AUTH_TOKEN_SECRET_INPUT or standard input)

The HMAC secret comes from HMAC_SECRET (HMAC_SECRET_PREVIOUS, HMAC_ISSUER, HMAC_AUDIENCE
and AUTH_LEEWAY_SECS are honoured too). --ttl takes seconds, or a duration such as 90s, 15m, 1h, 2d or \"1h 30m\".";

/// A failure: its message, and the exit code (2 for usage, 1 otherwise).
struct Fail(String, u8);

fn usage(message: impl Into<String>) -> Fail {
    Fail(format!("{}\n\n{USAGE}", message.into()), 2)
}

fn main() -> ExitCode {
    match run(lexopt::Parser::from_env()) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(output.as_bytes());
            ExitCode::SUCCESS
        }
        Err(Fail(message, code)) => {
            eprintln!("auth-token: {message}");
            ExitCode::from(code)
        }
    }
}

impl From<lexopt::Error> for Fail {
    fn from(error: lexopt::Error) -> Self {
        usage(error.to_string())
    }
}

fn run(mut args: lexopt::Parser) -> Result<String, Fail> {
    use lexopt::Arg::{Long, Short, Value};
    match args.next()? {
        Some(Value(command)) => match command.to_str() {
            Some("mint") => mint(args),
            Some("decode") => decode(args),
            Some("digest") => digest(args),
            Some("help") => Ok(format!("{USAGE}\n")),
            _ => Err(usage(format!(
                "unknown command `{}`",
                command.to_string_lossy()
            ))),
        },
        Some(Short('h') | Long("help")) => Ok(format!("{USAGE}\n")),
        Some(other) => Err(other.unexpected().into()),
        None => Err(usage("a command is needed")),
    }
}

fn config() -> Result<HmacConfig, Fail> {
    HmacConfig::from_env()
        .map_err(|e| Fail(e.to_string(), 1))?
        .ok_or_else(|| Fail("HMAC_SECRET is not set".into(), 1))
}

/// `90` (seconds), or a duration as humantime reads it: `90s`, `15m`, `1h`, `1.5h`, `2d`,
/// `1h 30m`.
fn parse_ttl(value: &str) -> Option<Duration> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    humantime::parse_duration(value).ok()
}

fn mint(mut args: lexopt::Parser) -> Result<String, Fail> {
    use lexopt::Arg::Long;
    let mut subject = None;
    let mut roles = Vec::new();
    let mut ttl = Duration::from_secs(3600);
    let mut audience = None;
    while let Some(arg) = args.next()? {
        match arg {
            Long("sub") => subject = Some(text(args.value()?)?),
            Long("role") => roles.push(text(args.value()?)?),
            Long("ttl") => {
                let value = text(args.value()?)?;
                ttl = parse_ttl(&value)
                    .ok_or_else(|| usage(format!("--ttl `{value}` is not a duration")))?;
            }
            Long("aud") => audience = Some(text(args.value()?)?),
            other => return Err(other.unexpected().into()),
        }
    }
    let subject = subject.ok_or_else(|| usage("mint needs --sub"))?;
    let config = config()?;
    let token = config
        .mint(&subject, &roles, ttl, audience.as_deref())
        .map_err(|e| Fail(e.to_string(), 1))?;
    Ok(format!("{token}\n"))
}

/// An argument as UTF-8 text (subjects, roles and audiences are JSON strings).
fn text(value: std::ffi::OsString) -> Result<String, Fail> {
    value
        .into_string()
        .map_err(|v| usage(format!("`{}` is not UTF-8", v.to_string_lossy())))
}

fn decode(mut args: lexopt::Parser) -> Result<String, Fail> {
    let token = match args.next()? {
        Some(lexopt::Arg::Value(token)) => text(token)?,
        Some(other) => return Err(other.unexpected().into()),
        None => return Err(usage("decode takes one token")),
    };
    if let Some(extra) = args.next()? {
        return Err(extra.unexpected().into());
    }
    let config = config()?;
    let (status, claims) = match config.decode(&token) {
        Ok(claims) => ("valid", claims),
        Err(e) => match e.expired_claims() {
            Some(claims) => ("expired", claims.clone()),
            None => return Err(Fail(format!("status: invalid ({})", e.reason()), 1)),
        },
    };
    let json = serde_json::json!({
        "sub": claims.sub,
        "roles": claims.roles,
        "iss": claims.iss,
        "aud": claims.aud,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "jti": claims.jti,
    });
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
    let out = format!("status: {status}\n{pretty}\n");
    if status == "valid" {
        Ok(out)
    } else {
        let _ = std::io::stdout().lock().write_all(out.as_bytes());
        Err(Fail("the token is expired".into(), 1))
    }
}

fn digest(mut args: lexopt::Parser) -> Result<String, Fail> {
    if args.next()?.is_some() {
        return Err(usage(
            "digest takes no arguments: the secret is read from AUTH_TOKEN_SECRET_INPUT or standard input",
        ));
    }
    let secret = match std::env::var("AUTH_TOKEN_SECRET_INPUT") {
        Ok(value) => Secret::from(value),
        Err(_) => {
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .map_err(|e| Fail(format!("cannot read standard input: {e}"), 1))?;
            // `echo secret | auth-token digest` adds a newline that is not part of the secret.
            let end = input
                .strip_suffix(b"\r\n")
                .or_else(|| input.strip_suffix(b"\n"))
                .map_or(input.len(), <[u8]>::len);
            let secret = Secret::new(&input[..end]);
            input.zeroize();
            secret
        }
    };
    if secret.is_empty() {
        return Err(Fail("the secret is empty".into(), 1));
    }
    Ok(format!(
        "sha256:{}\n",
        hex::encode(sha256_digest(secret.expose_secret()))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_seconds_or_a_humantime_duration() {
        assert_eq!(parse_ttl("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "h", "1x", "-1", "soon", "99999999999999999999d"] {
            assert_eq!(parse_ttl(bad), None, "{bad}");
        }
    }
}
