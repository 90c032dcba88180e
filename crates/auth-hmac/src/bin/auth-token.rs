//! `auth-token`: mint, decode and digest from the command line.
//!
//! ```text
//! auth-token mint --sub ops --role runtime.health:read [--role ...] [--ttl 1h] [--aud A]
//! auth-token decode [-]        (token from standard input)
//! auth-token digest [-]        (secret from AUTH_TOKEN_SECRET_INPUT or standard input)
//! ```
//!
//! The HMAC secret is read from `HMAC_SECRET` (and `HMAC_SECRET_PREVIOUS`, `HMAC_ISSUER`,
//! `HMAC_AUDIENCE`, `AUTH_LEEWAY_SECS`), never from the command line, where it would show
//! in `ps` and shell history; so are the token to decode and the secret to digest, read from
//! standard input: from a terminal, after a prompt and without echo.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use tower_auth_core::{Secret, sha256_digest};
use tower_auth_hmac::HmacConfig;
use zeroize::Zeroize as _;

const USAGE: &str = "usage:
  auth-token mint --sub SUBJECT [--role ROLE]... [--ttl 1h] [--aud AUDIENCE]
  auth-token decode [-]  (reads the token from standard input)
  auth-token digest [-]  (reads the secret from AUTH_TOKEN_SECRET_INPUT or standard input)

The HMAC secret comes from HMAC_SECRET (HMAC_SECRET_PREVIOUS, HMAC_ISSUER, HMAC_AUDIENCE
and AUTH_LEEWAY_SECS are honoured too). Tokens and secrets are never taken from the command
line, where `ps` and shell history show them; from a terminal they are read without echo. --ttl takes seconds, or a duration such as 90s, 15m, 1h, 2d or \"1h 30m\".";

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
            _ => Err(usage(unknown_command(&command.to_string_lossy()))),
        },
        Some(Short('h') | Long("help")) => Ok(format!("{USAGE}\n")),
        Some(other) => Err(other.unexpected().into()),
        None => Err(usage("a command is needed")),
    }
}

/// The message for an unknown command, quoting it only when it is short: a token or a secret
/// pasted in the wrong place is not repeated on the terminal.
fn unknown_command(command: &str) -> String {
    if command.len() <= 16 {
        format!("unknown command `{command}`")
    } else {
        format!("unknown command ({} characters, not shown)", command.len())
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

/// Standard input is the only source of what is read, spelt as no argument or `-`: a token or
/// a secret on the command line shows in `ps` and shell history, so it is refused, unquoted.
fn stdin_only(mut args: lexopt::Parser, command: &str, what: &str) -> Result<(), Fail> {
    let mut dash = false;
    while let Some(arg) = args.next()? {
        match arg {
            lexopt::Arg::Value(value) if value == "-" && !dash => dash = true,
            lexopt::Arg::Value(_) => {
                return Err(usage(format!(
                    "{command} reads the {what} from standard input, not from the command line, \
                     where `ps` and shell history show it (`{command} < file`, or `{command}` and \
                     paste it at the prompt)"
                )));
            }
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(())
}

/// One value from standard input. From a terminal: after a prompt on the terminal, read
/// without echo. From a pipe or file: all of it, less one line ending.
fn read_input(what: &str) -> Result<Secret, Fail> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        let mut line = rpassword::prompt_password(format!("{what} (not echoed): "))
            .map_err(|e| Fail(format!("cannot read the {what} from the terminal: {e}"), 1))?;
        let secret = Secret::new(line.as_bytes());
        line.zeroize();
        return Ok(secret);
    }
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
    Ok(secret)
}

fn decode(args: lexopt::Parser) -> Result<String, Fail> {
    stdin_only(args, "decode", "token")?;
    let input = read_input("token")?;
    let token = std::str::from_utf8(input.expose_secret())
        .map_err(|_| Fail("status: invalid (the token is not UTF-8)".into(), 1))?
        .trim();
    if token.is_empty() {
        return Err(Fail("no token on standard input".into(), 1));
    }
    let config = config()?;
    let (status, claims) = match config.decode(token) {
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

fn digest(args: lexopt::Parser) -> Result<String, Fail> {
    stdin_only(args, "digest", "secret")?;
    let secret = match std::env::var("AUTH_TOKEN_SECRET_INPUT") {
        Ok(value) => Secret::from(value),
        Err(_) => read_input("secret")?,
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
