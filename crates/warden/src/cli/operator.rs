//! `warden operator show` and `warden operator signing-key add|list|rotate|rm`: the operator
//! and the keys that issue its accounts, rotated without downtime (see docs/operator-keys.md).

use std::time::Duration;
use warden_nats::NatsUrls;

use anyhow::{Result, bail};
use clap::Subcommand;

use warden_ops::Warden;
use warden_ops::operator_keys::{RotateOptions, RotateReport, SigningKeysView};

use crate::cli::{emit, table, time_or};

/// `warden operator …`.
#[derive(Subcommand, Debug)]
pub enum OperatorCmd {
    /// Show the operator (public key, JWT, signing key, system account).
    Show,
    /// The operator's signing keys, which issue account JWTs.
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCmd),
}

/// `warden operator signing-key …`.
#[derive(Subcommand, Debug)]
pub enum SigningKeyCmd {
    /// Add a signing key to the operator JWT (not issuing; servers trust it after a restart).
    Add,
    /// List the keys: issuing?, in the operator JWT?, accounts signed, rotation state.
    #[command(alias = "ls")]
    List,
    /// Take the next step of a rotation to a new issuing key (run it again until it says
    /// the rotation is complete; each run does one step or says what it waits for).
    Rotate {
        /// A server of the cluster, asked (as the system user) what it trusts and holds.
        #[arg(long, value_name = "URL[,URL...]", env = "WARDEN_NATS_URL")]
        nats: Option<NatsUrls>,
        /// How many servers must answer the trust check (the servers of the cluster).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        servers: u16,
        /// Bound in seconds on connecting, each request and the wait for servers' answers.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
        timeout: u64,
    },
    /// Remove a signing key from the operator JWT and delete its seed (refused for the
    /// issuing key and for a key that still signs accounts).
    #[command(alias = "delete")]
    Rm {
        /// The key (O…).
        key: String,
    },
}

/// Runs `warden operator …`.
pub async fn run(json: bool, cmd: OperatorCmd, w: &Warden) -> Result<()> {
    match cmd {
        OperatorCmd::Show => {
            let op = w.operator().await?;
            emit(json, &op, || {
                format!(
                    "name            {}\npublic key      {}\nsigning key     {}\nsystem account  {}\njwt             {}\n",
                    op.name, op.public_key, op.signing_key, op.system_account, op.jwt
                )
            })
        }
        OperatorCmd::SigningKey(SigningKeyCmd::List) => {
            let v = w.operator_signing_keys().await?;
            emit(json, &v, || list_text(&v))
        }
        OperatorCmd::SigningKey(SigningKeyCmd::Add) => {
            let c = w.add_operator_signing_key().await?;
            emit(json, &c, || {
                format!(
                    "added operator signing key {} (not issuing)\nnext: {}\n",
                    c.public_key,
                    c.next.join("\n      ")
                )
            })
        }
        OperatorCmd::SigningKey(SigningKeyCmd::Rm { key }) => {
            let c = w.remove_operator_signing_key(&key).await?;
            emit(json, &c, || {
                format!(
                    "removed operator signing key {}; its seed is deleted\nnext: {}\n",
                    c.public_key,
                    c.next.join("\n      ")
                )
            })
        }
        OperatorCmd::SigningKey(SigningKeyCmd::Rotate {
            nats,
            servers,
            timeout,
        }) => {
            let opts = RotateOptions {
                nats: nats.map(|n| n.to_string()),
                servers: servers as usize,
                timeout: Duration::from_secs(timeout),
            };
            let r = w.rotate_operator_signing_key(&opts).await?;
            emit(json, &r, || rotate_text(&r))?;
            // A step that could not be taken is a failure for scripts (exit 1), with the
            // report above saying why; nothing changed.
            if let Some(why) = r.waiting_for.as_deref().filter(|_| !r.changed) {
                bail!("the rotation did not advance: {why}");
            }
            Ok(())
        }
    }
}

fn list_text(v: &SigningKeysView) -> String {
    let mut t = table(vec![
        "key",
        "issuing",
        "in operator JWT",
        "accounts",
        "seed",
        "rotation",
    ]);
    for k in &v.keys {
        t.add_row(vec![
            if k.identity {
                format!("{} (identity)", k.public_key)
            } else {
                k.public_key.clone()
            },
            yes(k.issuing).into(),
            yes(k.in_operator_jwt).into(),
            k.accounts.to_string(),
            if k.seed_held { "held" } else { "missing" }.into(),
            k.rotation.unwrap_or("-").into(),
        ]);
    }
    let mut out = format!("{t}\n");
    match &v.rotation {
        Some(r) => {
            out += &format!(
                "rotation {} -> {}: {} (started {}, last step {})\n",
                r.from,
                r.to,
                r.phase.label(),
                time_or(Some(r.started_at), "-"),
                time_or(Some(r.updated_at), "-")
            );
        }
        None => out += "no rotation in progress\n",
    }
    out
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn rotate_text(r: &RotateReport) -> String {
    use warden_ops::operator_keys::RotateStep as S;
    let mut out = match r.step {
        S::Started => format!(
            "rotation started: new signing key {} is in the operator JWT; {} still issues\n",
            r.to, r.from
        ),
        S::AwaitingTrust => format!("waiting: servers must trust the new key {}\n", r.to),
        S::Resigned => format!(
            "re-signed {} accounts with {}, which issues now\n",
            r.accounts_resigned, r.to
        ),
        S::AwaitingAccounts => format!(
            "waiting: the server must hold every account signed by {}\n",
            r.to
        ),
        S::OldKeyRemoved => {
            let mut s = String::new();
            if r.accounts_resigned > 0 {
                s += &format!(
                    "re-signed {} accounts with {}, which issues now\n",
                    r.accounts_resigned, r.to
                );
            }
            s + &format!(
                "every account is on the server signed by {}; {} left the operator JWT and its seed is deleted\n",
                r.to, r.from
            )
        }
        S::AwaitingRestart => format!(
            "waiting: servers must stop trusting the old key {}\n",
            r.from
        ),
        S::Completed => format!("rotation complete: {} issues, {} is gone\n", r.to, r.from),
    };
    if let Some(d) = &r.delivery {
        out += &format!(
            "delivered {} pending changes ({} accounts pushed), {} failed\n",
            d.delivered, d.accounts_pushed, d.failed
        );
    }
    for s in &r.servers {
        out += &format!(
            "server {} ({}): trusts new key: {}, old key: {}\n",
            s.name,
            s.version,
            yes(s.operators.iter().any(|o| o.signing_keys.contains(&r.to))),
            yes(s.operators.iter().any(|o| o.signing_keys.contains(&r.from)))
        );
    }
    if let Some(why) = &r.waiting_for {
        out += &format!("not yet: {why}\n");
    }
    for u in &r.unconfirmed {
        out += &format!(
            "  {} {}: {}\n",
            u.name,
            u.public_key,
            match &u.issuer_on_server {
                Some(i) => format!("held signed by {i}"),
                None => "not held by the server".into(),
            }
        );
    }
    if r.unconfirmed_count > r.unconfirmed.len() {
        out += &format!(
            "  … and {} more\n",
            r.unconfirmed_count - r.unconfirmed.len()
        );
    }
    for (i, n) in r.next.iter().enumerate() {
        out += &format!("{} {n}\n", if i == 0 { "next:" } else { "     " });
    }
    out
}
