//! `warden account …`: accounts and their limits (flags named as nsc names them),
//! and their human and JSON output.

use anyhow::Result;
use clap::{Args, Subcommand};
use nats_jwt::{Permissions, Subject};
use warden_core::AccountSpec;
use warden_core::spec::{
    AccountEdit, AccountLimitsEdit, JetStreamLimitsSpec, JsTier, PermissionsEdit,
};
use warden_ops::Warden;

use super::values::{duration_ns, size, subject, tag};
use super::{emit, mappings, table, usage};
use warden_core::units::{limit, size as bytes};

/// `warden account …`.
#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Add an account.
    #[command(after_help = super::examples::ACCOUNT_ADD)]
    Add {
        /// Account name.
        name: String,
        /// Limits to set.
        #[command(flatten)]
        limits: LimitFlags,
        /// JetStream tiers, default permissions, tags, info URL.
        #[command(flatten)]
        model: ModelFlags,
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
        /// JetStream tiers, default permissions, tags, info URL.
        #[command(flatten)]
        model: ModelFlags,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Exports: streams and services offered to other accounts (`export add|list|edit|rm|revoke-activation`).
    #[command(subcommand)]
    Export(super::exports::ExportCmd),
    /// Imports of other accounts' exports (`import add|list|rm`).
    #[command(subcommand)]
    Import(super::exports::ImportCmd),
    /// Delete an account and all its users.
    Delete {
        /// Account name.
        name: String,
    },
    /// Subject mappings: `mapping add|list|rm`.
    #[command(subcommand)]
    Mapping(mappings::MappingCmd),
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
    /// JetStream max ack pending per consumer.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_max_ack_pending: Option<i64>,
    /// JetStream max bytes of one memory stream.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_max_mem_stream: Option<i64>,
    /// JetStream max bytes of one disk stream.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_max_disk_stream: Option<i64>,
    /// Streams must declare their max bytes (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    js_max_bytes_required: Option<bool>,
}

/// What an account carries besides its limits, as nsc names the flags: JetStream tiers
/// (`--js-tier R3` points the JetStream limit flags at that tier), default permissions
/// (for users whose JWT carries none), tags and info URL.
#[derive(Args, Debug, Default)]
pub struct ModelFlags {
    /// The JetStream limit flags apply to this replication tier: R1 to R5 (or 1 to 5).
    /// Tiered and flat JetStream limits exclude each other.
    #[arg(long, value_name = "TIER", value_parser = tier)]
    js_tier: Option<JsTier>,
    /// Remove these JetStream tiers.
    #[arg(long, value_delimiter = ',', value_name = "TIER", value_parser = tier)]
    rm_js_tier: Vec<JsTier>,
    /// Clear every JetStream limit, flat and tiered, before the other flags apply (to
    /// move from flat to tiered limits: --js-disable --js-tier R1 --js-disk-storage 1G).
    #[arg(long)]
    js_disable: bool,
    /// Default permissions: allow publishing to these subjects.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    default_allow_pub: Vec<Subject>,
    /// Default permissions: allow subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    default_allow_sub: Vec<Subject>,
    /// Default permissions: allow publishing and subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    default_allow_pubsub: Vec<Subject>,
    /// Default permissions: deny publishing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    default_deny_pub: Vec<Subject>,
    /// Default permissions: deny subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    default_deny_sub: Vec<Subject>,
    /// Default permissions: deny publishing and subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    default_deny_pubsub: Vec<Subject>,
    /// Default permissions: allow publishing to reply subjects of received requests
    /// (max N replies, default 1).
    #[arg(long, num_args = 0..=1, default_missing_value = "1", value_name = "N")]
    default_allow_pub_response: Option<i64>,
    /// Default permissions: how long the response permission lasts (e.g. 1s, 5m).
    #[arg(long, value_parser = duration_ns, value_name = "DURATION")]
    default_response_ttl: Option<i64>,
    /// Remove these subjects from every default allow and deny list.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = subject)]
    rm_default: Vec<Subject>,
    /// Remove the default response permission.
    #[arg(long)]
    rm_default_response_perms: bool,
    /// Tags (lower-cased), e.g. team:billing.
    #[arg(long = "tag", value_delimiter = ',', value_parser = tag)]
    tags: Vec<String>,
    /// Remove these tags.
    #[arg(long, value_delimiter = ',', value_name = "TAG", value_parser = tag)]
    rm_tag: Vec<String>,
    /// A URL with more about the account (empty clears it).
    #[arg(long, value_name = "URL")]
    info_url: Option<String>,
}

fn tier(s: &str) -> Result<JsTier, String> {
    s.parse()
        .map_err(|e: warden_core::spec::JsTierError| e.to_string())
}

impl ModelFlags {
    /// The account edit these flags and the limit flags ask for; a queue group on a
    /// publish subject or a response count below 1 is a usage error here.
    fn edit(self, limits: &LimitFlags, description: Option<String>) -> Result<AccountEdit> {
        let mut allow_pub = self.default_allow_pub;
        let mut allow_sub = self.default_allow_sub;
        let mut deny_pub = self.default_deny_pub;
        let mut deny_sub = self.default_deny_sub;
        allow_pub.extend(self.default_allow_pubsub.iter().cloned());
        allow_sub.extend(self.default_allow_pubsub);
        deny_pub.extend(self.default_deny_pubsub.iter().cloned());
        deny_sub.extend(self.default_deny_pubsub);
        if let Some(s) = allow_pub
            .iter()
            .chain(&deny_pub)
            .find(|s| s.queue().is_some())
        {
            return Err(usage(format!(
                "default publish permission {s:?} has a queue group; queue groups apply to subscriptions only"
            )));
        }
        if let Some(n) = self.default_allow_pub_response
            && n < 1
        {
            return Err(usage(format!(
                "--default-allow-pub-response must be at least 1, got {n}"
            )));
        }
        Ok(AccountEdit {
            limits: limits.edit(),
            js_mem_max_stream_bytes: limits.js_max_mem_stream,
            js_disk_max_stream_bytes: limits.js_max_disk_stream,
            js_max_bytes_required: limits.js_max_bytes_required,
            js_tier: self.js_tier,
            remove_js_tiers: self.rm_js_tier,
            js_disable: self.js_disable,
            default_permissions: PermissionsEdit {
                allow_pub,
                allow_sub,
                deny_pub,
                deny_sub,
                remove: self.rm_default,
                allow_pub_response: self.default_allow_pub_response,
                response_ttl_ns: self.default_response_ttl,
                remove_response: self.rm_default_response_perms,
            },
            add_tags: self.tags,
            remove_tags: self.rm_tag,
            info_url: self.info_url,
            description,
        })
    }
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
            js_max_ack_pending: self.js_max_ack_pending,
        }
    }
}

/// Runs `warden account …`.
pub async fn run(json: bool, w: &Warden, cmd: AccountCmd) -> Result<()> {
    match cmd {
        AccountCmd::Add {
            name,
            limits,
            model,
            description,
        } => {
            let mut spec = AccountSpec::default();
            model
                .edit(&limits, description)?
                .apply(&mut spec)
                .map_err(|e| usage(format!("account {name}: {e}")))?;
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
            model,
            description,
        } => {
            let v = w
                .change_account(&name, model.edit(&limits, description)?)
                .await?;
            emit(json, &v, || {
                format!("account {} updated\n{}", v.name, account_text(&v))
            })
        }
        AccountCmd::Mapping(cmd) => mappings::run(json, w, cmd).await,
        AccountCmd::SigningKey(cmd) => super::signing_keys::run(json, w, cmd).await,
        AccountCmd::Export(cmd) => super::exports::run_export(json, w, cmd).await,
        AccountCmd::Import(cmd) => super::exports::run_import(json, w, cmd).await,
        AccountCmd::Delete { name } => {
            let v = w.delete_account(&name).await?;
            emit(json, &v, || {
                format!("account {} deleted ({} users)\n", v.name, v.users)
            })
        }
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
    if let Some(d) = &v.spec.description {
        out += &format!("description   {d}\n");
    }
    if let Some(u) = &v.spec.info_url {
        out += &format!("info url      {u}\n");
    }
    if !v.spec.tags.is_empty() {
        out += &format!("tags          {}\n", v.spec.tags.join(", "));
    }
    out += &format!(
        "limits        conns {}, leaf {}, subs {}, payload {}, data {}, imports {}, exports {}, wildcard exports {}\n",
        limit(l.conn),
        limit(l.leaf),
        limit(l.subs),
        bytes(l.payload),
        bytes(l.data),
        limit(l.imports),
        limit(l.exports),
        l.wildcards
    );
    if l.jetstream_tiers.is_empty() || !l.jetstream.to_claims().is_zero() {
        out += &format!("jetstream     {}\n", js_text(&l.jetstream));
    }
    for (tier, js) in &l.jetstream_tiers {
        out += &format!("jetstream {tier:<3} {}\n", js_text(js));
    }
    let dp = &v.spec.default_permissions;
    if *dp == Permissions::default() {
        out += "default perms none (users without permissions of their own may do anything)\n";
    } else {
        for (what, list) in [
            ("pub allow", &dp.publish.allow),
            ("pub deny", &dp.publish.deny),
            ("sub allow", &dp.subscribe.allow),
            ("sub deny", &dp.subscribe.deny),
        ] {
            if !list.is_empty() {
                let subjects: Vec<&str> = list.iter().map(|s| s.as_str()).collect();
                out += &format!("default {what:<9} {}\n", subjects.join(", "));
            }
        }
        if let Some(r) = &dp.response {
            out += &format!(
                "default resp      max {}{}\n",
                r.max,
                if r.ttl_ns > 0 {
                    format!(", ttl {}ms", r.ttl_ns / 1_000_000)
                } else {
                    String::new()
                }
            );
        }
    }
    if !v.spec.mappings.is_empty() {
        out += "mappings\n";
        let view = warden_ops::mappings::MappingsView::of_spec(&v.name, &v.public_key, &v.spec);
        out += &mappings::text(&view);
    }
    if !v.spec.revocations.is_empty() {
        out += &format!("revocations   {}\n", v.spec.revocations.len());
    }
    out += &format!("jwt           {}\n", v.jwt);
    out
}

fn js_text(js: &JetStreamLimitsSpec) -> String {
    let mut s = format!(
        "mem {}, disk {}, streams {}, consumers {}, max ack pending {}",
        warden_core::units::js_storage(js.mem_storage),
        warden_core::units::js_storage(js.disk_storage),
        warden_core::units::js_limit(js.streams),
        warden_core::units::js_limit(js.consumer),
        warden_core::units::js_limit(js.max_ack_pending)
    );
    if js.mem_max_stream_bytes > 0 {
        s += &format!(", max mem stream {}", bytes(js.mem_max_stream_bytes));
    }
    if js.disk_max_stream_bytes > 0 {
        s += &format!(", max disk stream {}", bytes(js.disk_max_stream_bytes));
    }
    if js.max_bytes_required {
        s += ", max bytes required";
    }
    if !js.enabled() {
        s += " (disabled)";
    }
    s
}
