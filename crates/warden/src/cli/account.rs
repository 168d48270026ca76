//! `warden account …`: accounts and their limits (flags named as nsc names them),
//! and their human and JSON output.

use anyhow::Result;
use clap::{Args, Subcommand};
use warden_core::AccountSpec;
use warden_core::spec::AccountLimitsEdit;
use warden_ops::Warden;

use super::values::size;
use super::{emit, table};

/// `warden account …`.
#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Add an account.
    Add {
        /// Account name.
        name: String,
        /// Limits to set.
        #[command(flatten)]
        limits: LimitFlags,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List accounts.
    List,
    /// Show an account.
    Show {
        /// Account name.
        name: String,
    },
    /// Change an account's limits.
    Edit {
        /// Account name.
        name: String,
        /// Limits to set.
        #[command(flatten)]
        limits: LimitFlags,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete an account and all its users.
    Delete {
        /// Account name.
        name: String,
    },
    /// Signing keys and roles: `signing-key add|list|rotate|rm`.
    #[command(subcommand)]
    SigningKey(super::signing_keys::SigningKeyCmd),
}

/// Account limits, as nsc names them; sizes accept units (1K, 5MB) and -1 for unlimited.
#[derive(Args, Debug, Default)]
pub struct LimitFlags {
    /// Max client connections.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    conns: Option<i64>,
    /// Max subscriptions per connection.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    subscriptions: Option<i64>,
    /// Max message payload.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    payload: Option<i64>,
    /// Max data.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    data: Option<i64>,
    /// Max leaf node connections.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    leaf_conns: Option<i64>,
    /// Max imports.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    imports: Option<i64>,
    /// Max exports.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    exports: Option<i64>,
    /// Allow wildcard exports (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    wildcard_exports: Option<bool>,
    /// Refuse bearer-token users (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    disallow_bearer: Option<bool>,
    /// JetStream memory storage (0 disables, -1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_mem_storage: Option<i64>,
    /// JetStream disk storage (0 disables, -1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_disk_storage: Option<i64>,
    /// JetStream streams.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_streams: Option<i64>,
    /// JetStream consumers.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_consumer: Option<i64>,
}

impl LimitFlags {
    fn edit(&self) -> AccountLimitsEdit {
        AccountLimitsEdit {
            conns: self.conns,
            subscriptions: self.subscriptions,
            payload: self.payload,
            data: self.data,
            leaf_conns: self.leaf_conns,
            imports: self.imports,
            exports: self.exports,
            wildcard_exports: self.wildcard_exports,
            disallow_bearer: self.disallow_bearer,
            js_mem_storage: self.js_mem_storage,
            js_disk_storage: self.js_disk_storage,
            js_streams: self.js_streams,
            js_consumer: self.js_consumer,
            js_max_ack_pending: None,
        }
    }
}

/// Runs `warden account …`.
pub async fn run(json: bool, w: &Warden, cmd: AccountCmd) -> Result<()> {
    match cmd {
        AccountCmd::Add {
            name,
            limits,
            description,
        } => {
            let mut spec = AccountSpec::default();
            limits.edit().apply(&mut spec.limits);
            spec.description = description.filter(|d| !d.is_empty());
            let v = w.add_account(&name, spec).await?;
            emit(json, &v, || {
                format!("account {} added: {}\n", v.name, v.public_key)
            })
        }
        AccountCmd::List => {
            let list = w.list_accounts().await?;
            emit(json, &list, || {
                let mut t = table(["name", "public key", "users", "conns", "jetstream"]);
                for a in &list {
                    t.add_row(vec![
                        if a.system {
                            format!("{} (system)", a.name)
                        } else {
                            a.name.clone()
                        },
                        a.public_key.clone(),
                        a.users.to_string(),
                        limit(a.spec.limits.conn),
                        if a.spec.limits.jetstream.enabled() {
                            "on".into()
                        } else {
                            "off".into()
                        },
                    ]);
                }
                format!("{t}\n")
            })
        }
        AccountCmd::Show { name } => {
            let v = w.account(&name).await?;
            emit(json, &v, || account_text(&v))
        }
        AccountCmd::Edit {
            name,
            limits,
            description,
        } => {
            let v = w.edit_account(&name, &limits.edit(), description).await?;
            emit(json, &v, || {
                format!("account {} updated\n{}", v.name, account_text(&v))
            })
        }
        AccountCmd::SigningKey(cmd) => super::signing_keys::run(json, w, cmd).await,
        AccountCmd::Delete { name } => {
            let v = w.delete_account(&name).await?;
            emit(json, &v, || {
                format!("account {} deleted ({} users)\n", v.name, v.users)
            })
        }
    }
}

fn limit(n: i64) -> String {
    if n < 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

fn account_text(v: &warden_ops::AccountView) -> String {
    let l = &v.spec.limits;
    let mut out = format!(
        "name          {}{}\npublic key    {}\nusers         {}\n",
        v.name,
        if v.system { " (system account)" } else { "" },
        v.public_key,
        v.users
    );
    out += &format!(
        "limits        conns {}, leaf {}, subs {}, payload {}, data {}, imports {}, exports {}, wildcard exports {}\n",
        limit(l.conn),
        limit(l.leaf),
        limit(l.subs),
        limit(l.payload),
        limit(l.data),
        limit(l.imports),
        limit(l.exports),
        l.wildcards
    );
    let js = &l.jetstream;
    out += &format!(
        "jetstream     mem {}, disk {}, streams {}, consumers {}\n",
        limit(js.mem_storage),
        limit(js.disk_storage),
        limit(js.streams),
        limit(js.consumer)
    );
    if !v.spec.revocations.is_empty() {
        out += &format!("revocations   {}\n", v.spec.revocations.len());
    }
    out += &format!("jwt           {}\n", v.jwt);
    out
}
