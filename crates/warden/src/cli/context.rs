//! `warden context`: the account commands use when `-a` is left out, as `nsc env -a`
//! sets one. It is a preference of whoever runs `warden` in this data directory, kept in
//! a small file there (`context.json`), not state of the organisation: nothing in the
//! database or the ledger changes with it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use warden_ops::Warden;

use super::{emit, usage};

/// The file, in the data directory.
const FILE: &str = "context.json";

/// `warden context …`.
#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// Use ACCOUNT when a command's `-a` is left out.
    Set {
        /// The account (it must exist).
        #[arg(short, long)]
        account: String,
    },
    /// Show the current context.
    Show,
    /// Forget the default account.
    Clear,
}

/// The defaults of this data directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The account used when `-a` is left out.
    pub account: Option<String>,
}

impl Context {
    /// The context kept in `dir`; none when there is no file (or it cannot be read: a
    /// damaged preference must not stop a command that names its account).
    pub fn load(dir: &Path) -> Context {
        std::fs::read_to_string(dir.join(FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text + "\n")
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// The account of a command: its `-a`, else the context's, else a usage error
    /// saying how to give one.
    pub fn account(&self, flag: Option<String>) -> Result<String> {
        flag.or_else(|| self.account.clone()).ok_or_else(|| {
            usage("no account: pass -a ACCOUNT, or set a default with `warden context set --account ACCOUNT`")
        })
    }
}

/// Runs `warden context …` in data directory `dir`.
pub async fn run(json: bool, w: &Warden, dir: &Path, cmd: ContextCmd) -> Result<()> {
    let mut ctx = Context::load(dir);
    match cmd {
        ContextCmd::Set { account } => {
            // Only an account that exists, under the name Warden keeps.
            let view = w.account(&account).await?;
            ctx.account = Some(view.name);
            ctx.save(dir)?;
        }
        ContextCmd::Clear => {
            ctx.account = None;
            ctx.save(dir)?;
        }
        ContextCmd::Show => {}
    }
    emit(json, &ctx, || match &ctx.account {
        Some(a) => format!("account      {a}\n"),
        None => "account      (none: commands need -a)\n".to_string(),
    })
}
