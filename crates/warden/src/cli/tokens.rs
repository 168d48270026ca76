//! `warden token create|list|revoke`: admin bearer tokens of the HTTP API, printed (the
//! secret once, on stdout).

use std::io::Write as _;

use clap::Subcommand;
use serde_json::json;
use zeroize::Zeroizing;

use warden_ops::now;
use warden_ops::tokens::*;

/// `warden token …`: admin tokens of the HTTP API.
#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; its secret is printed once, on stdout.
    Create {
        /// A name saying who or what uses it.
        #[arg(long)]
        name: String,
        /// Scopes: read, write, creds, admin (repeat the flag or separate with commas).
        #[arg(
            long = "scope",
            value_name = "SCOPE",
            value_delimiter = ',',
            required_unless_present = "dir_user",
            conflicts_with = "dir_user"
        )]
        scopes: Vec<Scope>,
        /// Bind the token to this directory user: it acts as them only (`as` is implied and
        /// may not name anyone else), on /v1/dir… and /v1/proposals… only, with read and
        /// write.
        #[arg(long, value_name = "ID")]
        dir_user: Option<String>,
        /// Expiry as nsc writes it: 30d, 12h, 1y, 2026-01-31, @<unix>; 0 or absent: never.
        #[arg(long = "expiry", alias = "expires", value_name = "EXPIRY")]
        expires: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// The token's id (tok_…).
        id: String,
    },
}

/// Runs `warden token …`: the token operations, as the local operator.
pub async fn run(json: bool, cmd: TokenCmd, warden: &warden_ops::Warden) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        TokenCmd::Create {
            name,
            scopes,
            dir_user,
            expires,
        } => {
            let expires_at = match expires.as_deref() {
                Some(text) => warden_core::parse::parse_expiry(text, now())
                    .map_err(|e| crate::cli::UsageError(e.to_string()))?,
                None => None,
            };
            let (info, secret) = match dir_user.as_deref() {
                Some(user) => {
                    warden
                        .create_dir_user_api_token(&name, user, expires_at)
                        .await?
                }
                None => warden.create_api_token(&name, &scopes, expires_at).await?,
            };
            if json {
                let doc = Zeroizing::new(serde_json::to_string_pretty(
                    &json!({"token": secret.as_str(), "info": info}),
                )?);
                writeln!(out, "{}", doc.as_str())?;
            } else {
                writeln!(out, "{}", secret.as_str())?;
                eprintln!(
                    "token {} ({}) created with scopes {}{}{}; the secret above is shown only once",
                    info.id,
                    info.name,
                    join_scopes(&info.scopes),
                    info.dir_user
                        .as_deref()
                        .map(|u| format!(", acting as directory user {u}"))
                        .unwrap_or_default(),
                    info.expires_at
                        .map(|e| format!(", expiring at {}", crate::cli::time_or(Some(e), "-")))
                        .unwrap_or_default()
                );
            }
        }
        TokenCmd::List => {
            let list = warden.api_tokens().await?;
            if json {
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
            } else {
                let mut t = crate::cli::table([
                    "id",
                    "name",
                    "scopes",
                    "created",
                    "expires",
                    "revoked",
                    "last used",
                    "acts as",
                ]);
                for i in &list {
                    t.add_row(vec![
                        i.id.clone(),
                        i.name.clone(),
                        join_scopes(&i.scopes),
                        crate::cli::time_or(Some(i.created_at), "-"),
                        crate::cli::time_or(i.expires_at, "-"),
                        crate::cli::time_or(i.revoked_at, "-"),
                        crate::cli::time_or(i.last_used_at, "-"),
                        i.dir_user.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                writeln!(out, "{t}")?;
            }
        }
        TokenCmd::Revoke { id } => {
            let info = warden.revoke_api_token(&id).await?;
            if json {
                serde_json::to_writer_pretty(&mut out, &info)?;
                writeln!(out)?;
            } else {
                writeln!(out, "token {} ({}) revoked", info.id, info.name)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_cmd_parses_scopes_and_expiry() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(subcommand)]
            cmd: TokenCmd,
        }
        let t = T::try_parse_from([
            "t",
            "create",
            "--name",
            "ci",
            "--scope",
            "read,write",
            "--scope",
            "creds",
            "--expires",
            "30d",
        ])
        .unwrap();
        match t.cmd {
            TokenCmd::Create {
                name,
                scopes,
                dir_user,
                expires,
            } => {
                assert_eq!(name, "ci");
                assert_eq!(scopes, [Scope::Read, Scope::Write, Scope::Creds]);
                assert_eq!(dir_user, None);
                assert_eq!(expires.as_deref(), Some("30d"));
            }
            other => panic!("{other:?}"),
        }
        assert!(T::try_parse_from(["t", "create", "--name", "ci"]).is_err());
        // A directory user's token takes no scopes (it has read and write).
        assert!(matches!(
            T::try_parse_from(["t", "create", "--name", "u", "--dir-user", "alice"]).unwrap().cmd,
            TokenCmd::Create { dir_user: Some(u), scopes, .. } if u == "alice" && scopes.is_empty()
        ));
        assert!(
            T::try_parse_from([
                "t",
                "create",
                "--name",
                "u",
                "--dir-user",
                "alice",
                "--scope",
                "admin"
            ])
            .is_err()
        );
        assert!(T::try_parse_from(["t", "create", "--name", "ci", "--scope", "root"]).is_err());
        assert!(matches!(
            T::try_parse_from(["t", "revoke", "tok_abc"]).unwrap().cmd,
            TokenCmd::Revoke { id } if id == "tok_abc"
        ));
    }
}
