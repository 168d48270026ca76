//! `warden user …`: a user's permissions and limits, read from flags named as nsc
//! names them, and its human and JSON output.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use nats_jwt::{ConnectionType, Subject};
use warden_core::UserSpec;
use warden_core::parse::{self, check_limit, parse_expiry};
use warden_core::spec::{PermissionsEdit, UserEdit};
use warden_ops::Warden;

use super::values::{cidr, conn_type, duration_ns, size, subject, tag};
use super::{emit, table, time_or, usage};

/// `warden user …`.
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user to an account.
    Add {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
        /// Permissions and limits to set.
        #[command(flatten)]
        perms: UserFlags,
    },
    /// List an account's users.
    List {
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Show a user.
    Show {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Change a user's permissions and limits (re-issues its JWT).
    Edit {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
        /// Permissions and limits to set.
        #[command(flatten)]
        perms: UserFlags,
        /// Remove these subjects from every allow and deny list.
        #[arg(long = "rm", value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
        remove: Vec<Subject>,
        /// Remove the response permission.
        #[arg(long)]
        rm_response_perms: bool,
        /// Remove these connection types.
        #[arg(long, value_delimiter = ',', value_name = "TYPE", value_parser = conn_type)]
        rm_conn_type: Vec<ConnectionType>,
        /// Remove these source networks.
        #[arg(long, value_delimiter = ',', value_name = "CIDR", value_parser = cidr)]
        rm_source_network: Vec<String>,
        /// Remove these tags.
        #[arg(long, value_delimiter = ',', value_name = "TAG", value_parser = tag)]
        rm_tag: Vec<String>,
    },
    /// Revoke a user in its account JWT (the server refuses and disconnects it).
    Revoke {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Delete a user (its key is revoked first).
    Delete {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Say which governance role and task allow or deny a directory user a subject.
    Explain {
        /// Directory user id.
        user: String,
        /// Subject.
        subject: String,
        /// Only this account (default: every account the user has grants in).
        #[arg(long)]
        account: Option<String>,
    },
}

/// User permissions and limits, as nsc names them. Lists are repeatable and
/// comma-separated; every entry is checked, and a blank one is refused (an empty
/// allow list would mean "everything allowed").
#[derive(Args, Debug, Default)]
pub struct UserFlags {
    /// Allow publishing to these subjects.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    allow_pub: Vec<Subject>,
    /// Allow subscribing to these subjects (`subject queue` for a queue group).
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
    /// How long the response permission lasts (e.g. 1s, 5m).
    #[arg(long, value_parser = duration_ns, value_name = "DURATION")]
    response_ttl: Option<i64>,
    /// Bearer token: no nonce signature needed to connect (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    bearer: Option<bool>,
    /// Allowed connection types: STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT, MQTT_WS.
    #[arg(long, value_delimiter = ',', value_name = "TYPE", value_parser = conn_type)]
    conn_type: Vec<ConnectionType>,
    /// Allowed source networks (CIDR or address).
    #[arg(long, value_delimiter = ',', value_name = "CIDR", value_parser = cidr)]
    source_network: Vec<String>,
    /// Expiry: 0 (never), 30m, 12h, 7d, 2w, 6M, 1y, or a date (2027-01-31).
    #[arg(long, value_name = "WHEN")]
    expiry: Option<String>,
    /// Max subscriptions (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    subs: Option<i64>,
    /// Max data (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    data: Option<i64>,
    /// Max payload (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    payload: Option<i64>,
    /// Tags (lower-cased).
    #[arg(long = "tag", value_delimiter = ',', value_parser = tag)]
    tags: Vec<String>,
}

impl UserFlags {
    /// The edit these flags ask for; what clap cannot check alone (queue groups on
    /// publish subjects, an expiry in the past, limits) is a usage error here.
    fn edit(self) -> Result<UserEdit> {
        let mut allow_pub = self.allow_pub;
        let mut allow_sub = self.allow_sub;
        let mut deny_pub = self.deny_pub;
        let mut deny_sub = self.deny_sub;
        allow_pub.extend(self.allow_pubsub.iter().cloned());
        allow_sub.extend(self.allow_pubsub);
        deny_pub.extend(self.deny_pubsub.iter().cloned());
        deny_sub.extend(self.deny_pubsub);
        if let Some(s) = allow_pub
            .iter()
            .chain(&deny_pub)
            .find(|s| s.queue().is_some())
        {
            bail!(usage(format!(
                "publish permission {s:?} has a queue group; queue groups apply to subscriptions only"
            )));
        }
        if let Some(n) = self.allow_pub_response
            && n < 1
        {
            bail!(usage(format!(
                "--allow-pub-response must be at least 1, got {n}"
            )));
        }
        let expiry = match &self.expiry {
            None => None,
            Some(text) => {
                let now = warden_ops::now();
                let at = parse_expiry(text, now).map_err(|e| usage(e.to_string()))?;
                if let Some(t) = at
                    && t <= now
                {
                    bail!(usage(format!(
                        "expiry {text:?} ({}) is in the past",
                        parse::format_unix(t)
                    )));
                }
                Some(at)
            }
        };
        for (flag, v) in [
            ("--subs", self.subs),
            ("--data", self.data),
            ("--payload", self.payload),
        ] {
            if let Some(n) = v {
                check_limit(n).map_err(|e| usage(format!("{flag}: {e}")))?;
            }
        }
        Ok(UserEdit {
            permissions: PermissionsEdit {
                allow_pub,
                allow_sub,
                deny_pub,
                deny_sub,
                remove: Vec::new(),
                allow_pub_response: self.allow_pub_response,
                response_ttl_ns: self.response_ttl,
                remove_response: false,
            },
            bearer: self.bearer,
            add_conn_types: self.conn_type,
            remove_conn_types: Vec::new(),
            add_source_networks: self.source_network,
            remove_source_networks: Vec::new(),
            expiry,
            subs: self.subs,
            data: self.data,
            payload: self.payload,
            add_tags: self.tags,
            remove_tags: Vec::new(),
        })
    }
}

/// Runs `warden user …`.
pub async fn run(json: bool, w: &Warden, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            account,
            perms,
        } => {
            let mut spec = UserSpec::default();
            perms.edit()?.apply(&mut spec);
            let v = w.add_user(&account, &name, spec).await?;
            emit(json, &v, || {
                format!("user {} added to {}: {}\n", v.name, v.account, v.public_key)
            })
        }
        UserCmd::List { account } => {
            let list = w.list_users(&account).await?;
            emit(json, &list, || {
                let mut t = table([
                    "name",
                    "public key",
                    "pub allow",
                    "sub allow",
                    "expires",
                    "revoked",
                ]);
                for u in &list {
                    let p = &u.spec.permissions;
                    t.add_row(vec![
                        u.name.clone(),
                        u.public_key.clone(),
                        join_subjects(&p.publish.allow),
                        join_subjects(&p.subscribe.allow),
                        time_or(u.spec.expires_at, "never"),
                        time_or(u.revoked_at, "-"),
                    ]);
                }
                format!("{t}\n")
            })
        }
        UserCmd::Show { name, account } => {
            let v = w.user(&account, &name).await?;
            emit(json, &v, || user_text(&v))
        }
        UserCmd::Edit {
            name,
            account,
            perms,
            remove,
            rm_response_perms,
            rm_conn_type,
            rm_source_network,
            rm_tag,
        } => {
            let mut edit = perms.edit()?;
            edit.remove_tags = rm_tag;
            edit.permissions.remove = remove;
            edit.permissions.remove_response = rm_response_perms;
            edit.remove_conn_types = rm_conn_type;
            edit.remove_source_networks = rm_source_network;
            let v = w.edit_user(&account, &name, &edit).await?;
            emit(json, &v, || {
                format!("user {} updated\n{}", v.name, user_text(&v))
            })
        }
        UserCmd::Revoke { name, account } => {
            let v = w.revoke_user(&account, &name).await?;
            emit(json, &v, || {
                format!(
                    "user {} revoked in account {}; push the account JWT (or restart nats-server with a fresh config) for the server to learn it\n",
                    v.name, v.account
                )
            })
        }
        UserCmd::Delete { name, account } => {
            let v = w.delete_user(&account, &name).await?;
            emit(json, &v, || {
                format!(
                    "user {} deleted from {} (its key is revoked)\n",
                    v.name, v.account
                )
            })
        }
        UserCmd::Explain {
            user,
            subject,
            account,
        } => super::governance::run_explain(json, w, &user, &subject, account.as_deref()).await,
    }
}

fn join_subjects(list: &[Subject]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn user_text(v: &warden_ops::UserView) -> String {
    let l = &v.spec;
    let p = &l.permissions;
    let mut out = format!(
        "name          {}\naccount       {}\npublic key    {}\n",
        v.name, v.account, v.public_key
    );
    out += &format!(
        "pub allow     {}\npub deny      {}\n",
        join_subjects(&p.publish.allow),
        join_subjects(&p.publish.deny)
    );
    out += &format!(
        "sub allow     {}\nsub deny      {}\n",
        join_subjects(&p.subscribe.allow),
        join_subjects(&p.subscribe.deny)
    );
    if let Some(r) = &p.response {
        out += &format!(
            "responses     max {}, ttl {} ms\n",
            r.max,
            r.ttl_ns / 1_000_000
        );
    }
    if !l.src.is_empty() {
        out += &format!("source nets   {}\n", l.src.join(", "));
    }
    if !l.allowed_connection_types.is_empty() {
        let types: Vec<&str> = l
            .allowed_connection_types
            .iter()
            .map(|c| c.as_str())
            .collect();
        out += &format!("conn types    {}\n", types.join(", "));
    }
    out += &format!("bearer        {}\n", l.bearer_token);
    out += &format!("expires       {}\n", time_or(l.expires_at, "never"));
    if v.revoked_at.is_some() {
        out += &format!("revoked       {}\n", time_or(v.revoked_at, "-"));
    }
    out += &format!(
        "jwt           {}\n",
        v.jwt
            .as_deref()
            .unwrap_or("(withheld: a bearer user's JWT needs the creds scope)")
    );
    out
}
