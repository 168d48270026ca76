//! `warden account signing-key …`: an account's signing keys — plain ones and roles
//! (scoped keys with a permission template) — added, listed, rotated and removed, as
//! nsc names their flags.

use anyhow::Result;
use clap::{Args, Subcommand};
use nats_jwt::{ConnectionType, ResponsePermission, Subject, UserPermissionLimits};
use warden_ops::Warden;
use warden_ops::signing_keys::{KeyRef, NewSigningKey, SigningKeyView};

use super::values::{conn_type, size, subject};
use super::{emit, table, usage};

/// `warden account signing-key …`.
#[derive(Subcommand, Debug)]
pub enum SigningKeyCmd {
    /// Add a signing key: with --role a scoped key whose template the server applies to
    /// every user it signs (subjects may use {{name()}}, {{subject()}},
    /// {{account-name()}}, {{account-subject()}}, {{tag(KEY)}}, {{account-tag(KEY)}}).
    Add {
        /// Account name.
        account: String,
        /// Role name: makes a scoped key with the template below.
        #[arg(long)]
        role: Option<String>,
        /// The role's template.
        #[command(flatten)]
        template: Box<TemplateFlags>,
    },
    /// List an account's signing keys.
    List {
        /// Account name.
        account: String,
    },
    /// Replace a signing key by a new one (same role and template) and re-issue every
    /// user it signed; the old key and its JWTs are refused once the account is pushed.
    Rotate {
        /// Account name.
        account: String,
        /// The key (A…); or give --role.
        key: Option<String>,
        /// The role whose key to rotate.
        #[arg(long, conflicts_with = "key")]
        role: Option<String>,
    },
    /// Remove a signing key (refused while users it signed are live).
    Rm {
        /// Account name.
        account: String,
        /// The key (A…); or give --role.
        key: Option<String>,
        /// The role whose key to remove.
        #[arg(long, conflicts_with = "key")]
        role: Option<String>,
    },
}

/// A role's template, flags as nsc names them. Lists are repeatable and
/// comma-separated; a blank entry is refused.
#[derive(Args, Debug, Default)]
pub struct TemplateFlags {
    /// Allow publishing to these subjects.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    allow_pub: Vec<Subject>,
    /// Allow subscribing to these subjects.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    allow_sub: Vec<Subject>,
    /// Allow publishing and subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    allow_pubsub: Vec<Subject>,
    /// Deny publishing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    deny_pub: Vec<Subject>,
    /// Deny subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    deny_sub: Vec<Subject>,
    /// Deny publishing and subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    deny_pubsub: Vec<Subject>,
    /// Allow publishing to reply subjects of received requests (max N replies, default 1).
    #[arg(long, num_args = 0..=1, default_missing_value = "1", value_name = "N")]
    allow_pub_response: Option<i64>,
    /// Max subscriptions (-1 unlimited).
    #[arg(long = "subscriptions", alias = "subs", value_parser = size, allow_hyphen_values = true)]
    subs: Option<i64>,
    /// Max payload (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    payload: Option<i64>,
    /// Max data (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    data: Option<i64>,
    /// Bearer token: the role's users need no nonce signature.
    #[arg(long)]
    bearer: bool,
    /// Allowed connection types: STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT, MQTT_WS.
    #[arg(long, value_delimiter = ',', value_name = "TYPE", value_parser = conn_type)]
    conn_type: Vec<ConnectionType>,
}

impl TemplateFlags {
    /// The template; what clap cannot check alone is a usage error here.
    fn template(self) -> Result<UserPermissionLimits> {
        let mut t = UserPermissionLimits::unlimited();
        let p = &mut t.permissions;
        p.publish.allow = self.allow_pub;
        p.subscribe.allow = self.allow_sub;
        p.publish.deny = self.deny_pub;
        p.subscribe.deny = self.deny_sub;
        p.publish.allow.extend(self.allow_pubsub.iter().cloned());
        p.subscribe.allow.extend(self.allow_pubsub);
        p.publish.deny.extend(self.deny_pubsub.iter().cloned());
        p.subscribe.deny.extend(self.deny_pubsub);
        // The operation checks the template (queue groups, response max, limits), as for
        // every surface.
        if let Some(n) = self.allow_pub_response {
            p.response = Some(ResponsePermission { max: n, ttl_ns: 0 });
        }
        for (v, slot) in [
            (self.subs, &mut t.subs),
            (self.data, &mut t.data),
            (self.payload, &mut t.payload),
        ] {
            if let Some(n) = v {
                *slot = n;
            }
        }
        t.bearer_token = self.bearer;
        t.allowed_connection_types = self.conn_type;
        Ok(t)
    }
}

fn key_ref(key: Option<String>, role: Option<String>) -> Result<KeyRef> {
    match (key, role) {
        (Some(k), None) => Ok(KeyRef::Key(k)),
        (None, Some(r)) => Ok(KeyRef::Role(r)),
        _ => Err(usage(
            "name the signing key: its public key (A…) or --role ROLE",
        )),
    }
}

fn subjects(list: &[Subject]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.iter()
            .map(Subject::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn key_text(k: &SigningKeyView) -> String {
    let mut out = format!(
        "key           {}\nkind          {}\n",
        k.key,
        if k.role.is_some() {
            "scoped (role)"
        } else {
            "plain"
        }
    );
    if let Some(r) = &k.role {
        out += &format!("role          {r}\n");
    }
    if let Some(t) = &k.template {
        let p = &t.permissions;
        out += &format!(
            "pub allow     {}\npub deny      {}\nsub allow     {}\nsub deny      {}\n",
            subjects(&p.publish.allow),
            subjects(&p.publish.deny),
            subjects(&p.subscribe.allow),
            subjects(&p.subscribe.deny)
        );
        if let Some(r) = &p.response {
            out += &format!("responses     max {}\n", r.max);
        }
        out += &format!("subs/data/payload  {}/{}/{}\n", t.subs, t.data, t.payload);
        if t.bearer_token {
            out += "bearer        true\n";
        }
    }
    out += &format!("users         {}\n", k.users);
    if !k.seed_held {
        out += "seed          not held by Warden (cannot issue users)\n";
    }
    out
}

/// Runs `warden account signing-key …`.
pub async fn run(json: bool, w: &Warden, cmd: SigningKeyCmd) -> Result<()> {
    match cmd {
        SigningKeyCmd::Add {
            account,
            role,
            template,
        } => {
            let template = (*template).template()?;
            if role.is_none() && template != UserPermissionLimits::unlimited() {
                return Err(usage(
                    "permission and limit flags make a role's template: add --role ROLE (a plain signing key has no template)",
                ));
            }
            let added = w
                .add_signing_key(&account, NewSigningKey { role, template })
                .await?;
            for warning in &added.warnings {
                eprintln!("warning: {warning}");
            }
            emit(json, &added, || {
                format!(
                    "signing key added to {}; push the account for servers to learn it\n{}",
                    added.signing_key.account,
                    key_text(&added.signing_key)
                )
            })
        }
        SigningKeyCmd::List { account } => {
            let keys = w.signing_keys(&account).await?;
            emit(json, &keys, || {
                let mut t = table(["key", "role", "pub allow", "sub allow", "users"]);
                for k in &keys {
                    let (pa, sa) = match &k.template {
                        Some(t) => (
                            subjects(&t.permissions.publish.allow),
                            subjects(&t.permissions.subscribe.allow),
                        ),
                        None => ("-".into(), "-".into()),
                    };
                    t.add_row(vec![
                        k.key.clone(),
                        k.role.clone().unwrap_or_else(|| "(plain)".into()),
                        pa,
                        sa,
                        k.users.to_string(),
                    ]);
                }
                format!("{t}\n")
            })
        }
        SigningKeyCmd::Rotate { account, key, role } => {
            let which = key_ref(key, role)?;
            let r = w.rotate_signing_key(&account, &which).await?;
            emit(json, &r, || {
                format!(
                    "{which} of {} rotated: {} replaces {}; {} user(s) re-issued{}; push the account for the old key to be refused\n",
                    r.signing_key.account,
                    r.signing_key.key,
                    r.old_key,
                    r.reissued.len(),
                    if r.reissued.is_empty() {
                        String::new()
                    } else {
                        format!(" ({}): hand them their new creds", r.reissued.join(", "))
                    }
                )
            })
        }
        SigningKeyCmd::Rm { account, key, role } => {
            let which = key_ref(key, role)?;
            let r = w.remove_signing_key(&account, &which).await?;
            emit(json, &r, || {
                format!(
                    "signing key {} removed from {}; push the account for servers to learn it\n",
                    r.key, r.account
                )
            })
        }
    }
}
