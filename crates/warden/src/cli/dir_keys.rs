//! The ADD_KEY commands: `warden dir user key add|list|remove` and `warden jwt`. Flags are
//! read here; [`crate::dir_keys`] validates the key (bad input: usage error, exit 2, nothing
//! changed) and does the work.

use anyhow::Result;
use clap::Subcommand;
use warden_core::parse::format_unix;

use crate::cli::governance::Acting;
use crate::cli::print_json;
use warden_ops::Warden;

/// `warden dir user key …`.
#[derive(Subcommand, Debug)]
pub enum DirKeyCmd {
    /// Register a NATS user public key (U…) the user holds the seed of (ADD_KEY); their
    /// NATS users are re-issued for it. Only the user themself or a system administrator.
    Add {
        /// Directory id.
        id: String,
        /// The user public key (U…). Never a seed.
        public_key: String,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// List a user's keys, newest (the one in use) first.
    List {
        /// Directory id.
        id: String,
    },
    /// Remove a key; without keys left the user goes back to a Warden-generated key.
    Remove {
        /// Directory id.
        id: String,
        /// The user public key (U…).
        public_key: String,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
}

/// Runs `warden dir user key …`.
pub async fn run_key(json: bool, cmd: DirKeyCmd, w: &Warden) -> Result<()> {
    let change = match cmd {
        DirKeyCmd::List { id } => {
            let keys = w.dir_keys(&id).await?;
            if json {
                return print_json(&keys);
            }
            let mut t = crate::cli::table(["PUBLIC KEY", "ADDED", "IN USE"]);
            for (i, k) in keys.iter().enumerate() {
                t.add_row([
                    k.public_key.clone(),
                    format_unix(k.created_at),
                    if i == 0 { "yes" } else { "" }.to_string(),
                ]);
            }
            outln!("{t}")?;
            return Ok(());
        }
        DirKeyCmd::Add {
            id,
            public_key,
            acting,
        } => {
            w.dir_key_add(acting.as_user.as_deref(), &id, &public_key)
                .await?
        }
        DirKeyCmd::Remove {
            id,
            public_key,
            acting,
        } => {
            w.dir_key_remove(acting.as_user.as_deref(), &id, &public_key)
                .await?
        }
    };
    if json {
        return print_json(&change);
    }
    outln!(
        "key {} {} for {}; NATS users re-issued: {}",
        change.public_key,
        if change.change == "add" {
            "added"
        } else {
            "removed"
        },
        change.user,
        change.reissued.len()
    )?;
    Ok(())
}

/// Runs `warden jwt ACCOUNT USER`: prints the user's JWT (for a user who holds their
/// own seed: they combine the two into a creds file).
pub async fn run_jwt(json: bool, account: &str, user: &str, w: &Warden) -> Result<()> {
    let v = w.user_jwt(account, user).await?;
    if json {
        return print_json(&v);
    }
    let jwt = warden_ops::device::issued(v.jwt, "a bearer user's JWT")?;
    outln!("{jwt}")?;
    Ok(())
}
