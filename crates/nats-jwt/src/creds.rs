//! Creds files: the decorated user JWT + seed text that NATS clients read, and a tolerant
//! parser for it (Go `FormatUserConfig` / `ParseDecoratedJWT` / `ParseDecoratedNKey`).

use crate::jwt::{AnyClaims, JwtError, decode_any, decode_any_unverified};
use crate::keys::{KeyError, KeyKind, Seed};

/// Errors writing or reading creds text.
#[derive(thiserror::Error, Debug)]
pub enum CredsError {
    /// The JWT given to `format_user_creds` is not a user JWT.
    #[error("creds need a user JWT, got a {0} JWT")]
    NotUserJwt(&'static str),
    /// The seed given to `format_user_creds` is not a user seed.
    #[error("creds need a user seed (SU…), got a {0} seed")]
    NotUserSeed(KeyKind),
    /// The JWT does not decode.
    #[error("invalid JWT: {0}")]
    Jwt(#[from] JwtError),
    /// No JWT found in the text.
    #[error("no JWT found in creds text")]
    NoJwt,
    /// The seed found is invalid.
    #[error("invalid seed in creds text: {0}")]
    Seed(#[from] KeyError),
}

/// The parts of a creds file.
#[derive(Clone, Debug, PartialEq)]
pub struct Creds {
    /// The JWT (not verified by the parser).
    pub jwt: String,
    /// The seed, when present.
    pub seed: Option<Seed>,
}

const BANNER: &str = "************************* IMPORTANT *************************\n\
NKEY Seed printed below can be used to sign and prove identity.\n\
NKEYs are sensitive and should be treated as secrets.\n";

fn decorate(out: &mut String, label: &str, body: &str) {
    out.push_str(&format!(
        "-----BEGIN {label}-----\n{body}\n------END {label}------\n"
    ));
}

/// Formats a user creds file, byte for byte as Go/nsc do. Refuses a non-user JWT or a
/// non-user seed. The JWT's signature is not verified here: the server verifies it when the
/// creds connect, and bulk provisioning formats creds for JWTs it has just signed, where a
/// second verification would cost about a fifth of the work per device.
pub fn format_user_creds(jwt: &str, seed: &Seed) -> Result<String, CredsError> {
    let claims = decode_any_unverified(jwt)?;
    if !matches!(claims, AnyClaims::User(_)) {
        return Err(CredsError::NotUserJwt(claims.kind_name()));
    }
    if seed.kind() != KeyKind::User {
        return Err(CredsError::NotUserSeed(seed.kind()));
    }
    let mut out = String::new();
    decorate(&mut out, "NATS USER JWT", jwt.trim());
    out.push('\n');
    out.push_str(BANNER);
    out.push('\n');
    decorate(&mut out, "USER NKEY SEED", seed.expose());
    out.push('\n');
    out.push_str(&"*".repeat(61));
    out.push('\n');
    Ok(out)
}

/// Decorates any JWT: `-----BEGIN NATS <KIND> JWT-----\n<jwt>\n------END NATS <KIND> JWT------\n\n`.
pub fn format_decorated_jwt(jwt: &str) -> Result<String, CredsError> {
    let kind = decode_any(jwt)?.kind_name().to_ascii_uppercase();
    let mut out = String::new();
    decorate(&mut out, &format!("NATS {kind} JWT"), jwt.trim());
    out.push('\n');
    Ok(out)
}

/// A line of the form `---…---` (at least 3 dashes, anything, at least 3 dashes at the end).
fn is_dash_line(line: &str) -> bool {
    match line.find("---") {
        Some(first) => line.ends_with("---") && line.len() >= first + 6,
        None => false,
    }
}

fn is_token_line(line: &str) -> bool {
    !line.is_empty()
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'='))
}

/// The contents of every `---…---` / value / `---…---` block, in order.
fn blocks(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 2 < lines.len() {
        if is_dash_line(lines[i]) && is_token_line(lines[i + 1]) && is_dash_line(lines[i + 2]) {
            found.push(lines[i + 1]);
            i += 3;
        } else {
            i += 1;
        }
    }
    found
}

/// Parses creds text: decorated blocks (first = JWT, second = seed), else the whole text as a
/// raw JWT; seed fallback = the first line starting with `SO`/`SA`/`SU`. CRLF tolerated.
pub fn parse_creds(text: &str) -> Result<Creds, CredsError> {
    let found = blocks(text);
    let jwt = match found.first() {
        Some(j) => j.to_string(),
        None => text.trim().to_string(),
    };
    if jwt.is_empty() {
        return Err(CredsError::NoJwt);
    }
    let seed_text = found.get(1).map(|s| s.to_string()).or_else(|| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with("SO") || l.starts_with("SA") || l.starts_with("SU"))
            .map(str::to_string)
    });
    let seed = match seed_text {
        Some(s) => {
            let s = zeroize::Zeroizing::new(s);
            Some(Seed::parse(&s)?)
        }
        None => None,
    };
    Ok(Creds { jwt, seed })
}
