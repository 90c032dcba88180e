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
and AUTH_LEEWAY_SECS are honoured too). --ttl takes seconds or a number with s, m, h or d.";

/// A failure: its message, and the exit code (2 for usage, 1 otherwise).
struct Fail(String, u8);

fn usage(message: impl Into<String>) -> Fail {
    Fail(format!("{}\n\n{USAGE}", message.into()), 2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
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

fn run(args: &[String]) -> Result<String, Fail> {
    match args.first().map(String::as_str) {
        Some("mint") => mint(&args[1..]),
        Some("decode") => decode(&args[1..]),
        Some("digest") => digest(&args[1..]),
        Some("-h" | "--help" | "help") => Ok(format!("{USAGE}\n")),
        Some(other) => Err(usage(format!("unknown command `{other}`"))),
        None => Err(usage("a command is needed")),
    }
}

fn config() -> Result<HmacConfig, Fail> {
    HmacConfig::from_vars("", &|name| std::env::var(name).ok())
        .map_err(|e| Fail(e.to_string(), 1))?
        .ok_or_else(|| Fail("HMAC_SECRET is not set".into(), 1))
}

/// `90`, `90s`, `15m`, `1h`, `2d`.
fn parse_ttl(value: &str) -> Option<Duration> {
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale).map(Duration::from_secs)
}

fn mint(args: &[String]) -> Result<String, Fail> {
    let mut subject = None;
    let mut roles = Vec::new();
    let mut ttl = Duration::from_secs(3600);
    let mut audience = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--sub" => subject = Some(value()?.clone()),
            "--role" => roles.push(value()?.clone()),
            "--ttl" => {
                let v = value()?;
                ttl =
                    parse_ttl(v).ok_or_else(|| usage(format!("--ttl `{v}` is not a duration")))?;
            }
            "--aud" => audience = Some(value()?.clone()),
            other => return Err(usage(format!("unknown option `{other}`"))),
        }
    }
    let subject = subject.ok_or_else(|| usage("mint needs --sub"))?;
    let config = config()?;
    let token = config
        .create_access_token(&subject, &roles, ttl, audience.as_deref())
        .map_err(|e| Fail(e.to_string(), 1))?;
    Ok(format!("{token}\n"))
}

fn decode(args: &[String]) -> Result<String, Fail> {
    let [token] = args else {
        return Err(usage("decode takes one token"));
    };
    let config = config()?;
    let (status, claims) = match config.decode_access_token(token) {
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

fn digest(args: &[String]) -> Result<String, Fail> {
    if !args.is_empty() {
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
    fn ttl_forms() {
        assert_eq!(parse_ttl("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Some(Duration::from_secs(172_800)));
        for bad in [
            "",
            "h",
            "1x",
            "1.5h",
            "-1",
            "1h30m",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_ttl(bad), None, "{bad}");
        }
    }
}
