//! `warden user …`: a user's permissions and limits, read from flags named as nsc
//! names them, and its human and JSON output.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use nats_jwt::{ConnectionType, Subject};
use warden_core::UserSpec;
use warden_core::parse::{self, check_limit, parse_expiry};
use warden_core::permcheck::Direction;
use warden_core::spec::{PermissionsEdit, UserEdit};
use warden_core::template::ServerLine;
use warden_ops::Warden;
use warden_ops::signing_keys::EffectivePermissions;

use super::secret_out::SecretOut;

use super::values::{cidr, conn_type, duration_ns, size, subject, tag};
use super::{emit, table, time_or, usage};

/// `warden user …`.
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user to an account.
    #[command(after_help = super::examples::USER_ADD)]
    Add {
        /// User name.
        name: String,
        /// Account name (default: `warden context set --account`).
        #[arg(short, long)]
        account: Option<String>,
        /// Issue the user with this role's scoped signing key: its permissions come from
        /// the role's template (only --tag may be given with it).
        #[arg(long)]
        role: Option<String>,
        /// Permissions and limits to set.
        #[command(flatten)]
        perms: UserFlags,
    },
    /// List an account's users.
    List {
        /// Account name (default: `warden context set --account`).
        #[arg(short, long)]
        account: Option<String>,
    },
    /// Show a user (for a role's user, what the role's template grants it).
    Show {
        /// User name.
        name: String,
        /// Account name (default: `warden context set --account`).
        #[arg(short, long)]
        account: Option<String>,
        /// nats-server version the template is evaluated for (2.9 or 2.15 rules).
        #[arg(long, value_name = "VERSION", default_value = "2.15")]
        server_version: String,
    },
    /// Give a user a new key: the old one is revoked in the account, new creds are
    /// written (push the account for the server to refuse the old creds).
    Rotate {
        /// User name.
        name: String,
        /// Account name (default: `warden context set --account`).
        #[arg(short, long)]
        account: Option<String>,
        /// Where the new creds go (`-` for standard output; default: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Change a user's permissions and limits (re-issues its JWT).
    Edit {
        /// User name.
        name: String,
        /// Account name (default: `warden context set --account`).
        #[arg(short, long)]
        account: Option<String>,
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
        /// Account name (default: `warden context set --account`).
        #[arg(short, long)]
        account: Option<String>,
    },
    /// Delete a user (its key is revoked first).
    Delete {
        /// User name.
        name: String,
        /// Account name (default: `warden context set --account`).
        #[arg(short, long)]
        account: Option<String>,
    },
    /// Say why a user may or may not use a subject: `explain NAME -a ACCOUNT --pub|--sub
    /// SUBJECT` for a NATS user (a role's template evaluated for it, as the server
    /// does), or `explain DIRECTORY-USER SUBJECT` for the governance roles and tasks of
    /// a directory user.
    Explain {
        /// NATS user name (with --pub/--sub), or directory user id.
        user: String,
        /// Subject (directory users).
        subject: Option<String>,
        /// The account (NATS users: required; directory users: only this account).
        #[arg(short, long)]
        account: Option<String>,
        /// May the NATS user publish to SUBJECT?
        #[arg(long = "pub", value_name = "SUBJECT", value_parser = subject, conflicts_with_all = ["subscribe", "subject"])]
        publish: Option<Subject>,
        /// May the NATS user subscribe to SUBJECT?
        #[arg(long = "sub", value_name = "SUBJECT", value_parser = subject, conflicts_with = "subject")]
        subscribe: Option<Subject>,
        /// nats-server version the answer holds for (2.9 or 2.15 rules).
        #[arg(long, value_name = "VERSION", default_value = "2.15")]
        server_version: String,
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
    #[arg(long = "subscriptions", alias = "subs", value_parser = size, allow_hyphen_values = true)]
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
    /// The flags other than --tag that are set (refused with --role).
    fn set_besides_tags(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (name, set) in [
            ("--allow-pub", !self.allow_pub.is_empty()),
            ("--allow-sub", !self.allow_sub.is_empty()),
            ("--allow-pubsub", !self.allow_pubsub.is_empty()),
            ("--deny-pub", !self.deny_pub.is_empty()),
            ("--deny-sub", !self.deny_sub.is_empty()),
            ("--deny-pubsub", !self.deny_pubsub.is_empty()),
            ("--allow-pub-response", self.allow_pub_response.is_some()),
            ("--response-ttl", self.response_ttl.is_some()),
            ("--bearer", self.bearer.is_some()),
            ("--conn-type", !self.conn_type.is_empty()),
            ("--source-network", !self.source_network.is_empty()),
            ("--expiry", self.expiry.is_some()),
            ("--subscriptions", self.subs.is_some()),
            ("--data", self.data.is_some()),
            ("--payload", self.payload.is_some()),
        ] {
            if set {
                out.push(name);
            }
        }
        out
    }

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
            ("--subscriptions", self.subs),
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
pub async fn run(
    json: bool,
    w: &Warden,
    cmd: UserCmd,
    ctx: &super::context::Context,
) -> Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            account,
            role: Some(role),
            perms,
        } => {
            let account = ctx.account(account)?;
            let extra = perms.set_besides_tags();
            if !extra.is_empty() {
                bail!(usage(format!(
                    "{} cannot be given with --role: a role's user gets its permissions and limits from the role's template \
                     (nats-server refuses a scoped user that sets its own); change the template instead",
                    extra.join(", ")
                )));
            }
            let r = w
                .add_user_by_role(&account, &name, &role, perms.tags)
                .await?;
            for warning in &r.warnings {
                eprintln!("warning: {warning}");
            }
            emit(json, &r, || {
                format!(
                    "user {} added to {} with role {}: {}\n",
                    r.user.name, r.user.account, r.role, r.user.public_key
                )
            })
        }
        UserCmd::Add {
            name,
            account,
            role: None,
            perms,
        } => {
            let account = ctx.account(account)?;
            let mut spec = UserSpec::default();
            perms.edit()?.apply(&mut spec);
            let v = w.add_user(&account, &name, spec).await?;
            emit(json, &v, || {
                format!("user {} added to {}: {}\n", v.name, v.account, v.public_key)
            })
        }
        UserCmd::List { account } => {
            let account = ctx.account(account)?;
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
        UserCmd::Show {
            name,
            account,
            server_version,
        } => {
            let account = ctx.account(account)?;
            let line = ServerLine::parse(&server_version).map_err(|e| usage(e.to_string()))?;
            let v = w.user(&account, &name).await?;
            let eff = w.user_permissions(&account, &name, line).await?;
            // Only a role's user has more to show than its own spec: other users' JSON
            // stays as it was.
            let effective = eff.role.is_some().then_some(eff);
            let out = ShowOut {
                user: &v,
                effective: effective.as_ref(),
            };
            emit(json, &out, || {
                let mut text = user_text(&v);
                if let Some(e) = &effective {
                    text += &effective_text(e);
                }
                text
            })
        }
        UserCmd::Rotate {
            name,
            account,
            output,
        } => {
            let account = ctx.account(account)?;
            // The output is made ready first: one that cannot be written fails before
            // anything changes.
            let output = SecretOut::prepare(output.as_deref())?;
            let (r, creds) = w.rotate_user(&account, &name).await?;
            let done = format!(
                "user {} has its new key {} already (the old one is revoked); fetch its creds with `warden creds`",
                r.user.name, r.user.public_key
            );
            match output {
                Some(SecretOut::File(file)) => {
                    let path = file.path().to_path_buf();
                    SecretOut::File(file).write(creds.as_bytes(), &done)?;
                    emit(
                        json,
                        &serde_json::json!({"user": r.user.name, "account": r.user.account, "public_key": r.user.public_key, "old_key": r.old_key, "creds_file": path}),
                        || {
                            format!(
                                "user {} rotated: new key {}, old key {} revoked; creds written to {} (mode 0600); push the account for the server to refuse the old creds\n",
                                r.user.name,
                                r.user.public_key,
                                r.old_key,
                                path.display()
                            )
                        },
                    )
                }
                Some(SecretOut::Stdout) | None => {
                    if !json {
                        eprintln!(
                            "user {} rotated: new key {}, old key {} revoked; push the account for the server to refuse the old creds",
                            r.user.name, r.user.public_key, r.old_key
                        );
                    }
                    if json && output.is_none() {
                        return super::print_json(
                            &serde_json::json!({"user": r.user.name, "account": r.user.account, "public_key": r.user.public_key, "old_key": r.old_key, "creds": creds.as_str()}),
                        );
                    }
                    SecretOut::Stdout.write(creds.as_bytes(), &done)
                }
            }
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
            let account = ctx.account(account)?;
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
            let account = ctx.account(account)?;
            let v = w.revoke_user(&account, &name).await?;
            // Whether anything must be done for the servers to learn it depends on
            // whether a serve relays the outbox now.
            let serve = w.serve_presence().await.ok().flatten();
            let running = serve.as_ref().is_some_and(|p| p.is_live(warden_ops::now()));
            emit(json, &v, || match (&serve, running) {
                (Some(p), true) => format!(
                    "user {} revoked in account {}; the running `warden serve` pushes the account to {}: the servers refuse the user within a second or so\n",
                    v.name, v.account, p.nats
                ),
                _ => format!(
                    "user {} revoked in account {}; no `warden serve` is running: `warden push` (or starting `warden serve`) delivers it to nats-server\n",
                    v.name, v.account
                ),
            })
        }
        UserCmd::Delete { name, account } => {
            let account = ctx.account(account)?;
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
            publish,
            subscribe,
            server_version,
        } => {
            let asked = match (publish, subscribe) {
                (Some(s), None) => Some((Direction::Publish, s)),
                (None, Some(s)) => Some((Direction::Subscribe, s)),
                (None, None) => None,
                (Some(_), Some(_)) => bail!(usage("give one of --pub and --sub")),
            };
            match (asked, subject) {
                (Some((direction, subject)), None) => {
                    let Some(account) = account else {
                        bail!(usage("a NATS user is named with its account: -a ACCOUNT"));
                    };
                    let line =
                        ServerLine::parse(&server_version).map_err(|e| usage(e.to_string()))?;
                    let x = w
                        .explain_user(&account, &user, direction, &subject, line)
                        .await?;
                    emit(json, &x, || {
                        format!(
                            "{} {} {} to {} in {} (nats-server {}): {}\n",
                            x.user,
                            if x.allowed { "may" } else { "may not" },
                            x.direction,
                            x.subject,
                            x.account,
                            x.server_line.as_str(),
                            x.reason
                        )
                    })
                }
                (None, Some(subject)) => {
                    super::governance::run_explain(json, w, &user, &subject, account.as_deref())
                        .await
                }
                (None, None) => bail!(usage(
                    "give the subject: `explain NAME -a ACCOUNT --pub|--sub SUBJECT` for a NATS user, `explain DIRECTORY-USER SUBJECT` for a directory user"
                )),
                (Some(_), Some(_)) => bail!(usage(
                    "give the subject once: as --pub/--sub or as the argument"
                )),
            }
        }
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

/// `user show`'s JSON: the user as before, and for a role's user what the role's
/// template grants it.
#[derive(serde::Serialize)]
struct ShowOut<'a> {
    #[serde(flatten)]
    user: &'a warden_ops::UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective: Option<&'a EffectivePermissions>,
}

fn effective_text(e: &EffectivePermissions) -> String {
    let mut out = format!(
        "role          {} (signed by {}); on nats-server {}:\n",
        e.role.as_deref().unwrap_or("-"),
        e.signing_key.as_deref().unwrap_or("-"),
        e.server_line.as_str()
    );
    match (&e.limits, &e.connect_refused) {
        (Some(l), _) => {
            let p = &l.permissions;
            out += &format!(
                "  pub allow   {}\n  pub deny    {}\n  sub allow   {}\n  sub deny    {}\n",
                join_subjects(&p.publish.allow),
                join_subjects(&p.publish.deny),
                join_subjects(&p.subscribe.allow),
                join_subjects(&p.subscribe.deny)
            );
            for d in &e.dropped {
                out += &format!("  not granted {} {} ({})\n", d.list, d.subject, d.why);
            }
        }
        (None, why) => {
            out += &format!(
                "  connect refused: {}\n",
                why.as_deref().unwrap_or("the template cannot be applied")
            );
        }
    }
    out
}
