//! `warden streams`: declared JetStream streams applied to nats-server — the
//! account's JetStream admin user (`jsadmin`, created on first use through the
//! normal user path, so it is in the ledger), the plan against what the server
//! reports, and the create / update / recreate calls. Streams declared with more
//! replicas than the JetStream cluster has servers are refused before anything is
//! created. The spec and the plan are pure (`warden_core::streams`); this module is
//! their I/O.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::json;
use warden_core::spec::UserSpec;
use warden_core::streams::{
    Discard, Retention, SpecProblem, Storage, StreamAction, StreamConfig, StreamDecl, StreamPlan,
    StreamsSpec,
};

use crate::{OpsError, Record, Scope, Warden};

/// The user Warden connects as to administer an account's JetStream.
pub const JS_ADMIN_USER: &str = "jsadmin";

const TIMEOUT: Duration = Duration::from_secs(10);

/// What `apply` did (or would do, with `dry_run`).
#[derive(Clone, Debug, Serialize)]
pub struct ApplyReport {
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// One plan per declared stream, in spec order.
    pub streams: Vec<StreamPlan>,
}

/// Why a streams operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// The spec is invalid; every problem is listed.
    #[error("{} in the streams spec; nothing applied", count(.0.len()))]
    Invalid(Vec<SpecProblem>),
    /// A stream needs recreating and `--recreate` was not given.
    #[error(
        "{0}: storage or retention cannot change in place; run again with --recreate (the stream's messages are lost); nothing applied"
    )]
    NeedsRecreate(String),
    /// The account has no JetStream.
    #[error(
        "account {0} has JetStream disabled: give it limits (`warden account edit {0} --js-disk-storage … --js-mem-storage …`) and push it"
    )]
    NoJetStream(String),
    /// Warden's store refused.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// The server refused or could not be reached.
    #[error("{0}")]
    Server(String),
}

impl StreamsError {
    /// What this error means, as for every operation error (see [`crate::ErrorKind`]).
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            StreamsError::Invalid(_)
            | StreamsError::NeedsRecreate(_)
            | StreamsError::NoJetStream(_) => crate::ErrorKind::Invalid,
            StreamsError::Ops(e) => e.kind(),
            StreamsError::Server(_) => crate::ErrorKind::Unavailable,
        }
    }

    /// Whether this is the caller's mistake (exit code 2).
    pub fn is_usage(&self) -> bool {
        self.kind() == crate::ErrorKind::Invalid
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}

/// Parses a spec file's text: JSON for `.json` (or text starting with `{`), YAML otherwise.
pub fn parse_spec(path: &Path, text: &str) -> Result<StreamsSpec, String> {
    let json = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => true,
        Some(e) if e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    if json {
        serde_json::from_str(text).map_err(|e| format!("{} (JSON): {e}", path.display()))
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| format!("{} (YAML): {e}", path.display()))
    }
}

/// The server's stream configuration in the terms the plan compares.
pub fn from_server(c: &stream::Config) -> StreamConfig {
    let mut subjects = c.subjects.clone();
    subjects.sort();
    StreamConfig {
        subjects,
        retention: match c.retention {
            stream::RetentionPolicy::Limits => Retention::Limits,
            stream::RetentionPolicy::Interest => Retention::Interest,
            stream::RetentionPolicy::WorkQueue => Retention::Workqueue,
        },
        storage: match c.storage {
            stream::StorageType::File => Storage::File,
            stream::StorageType::Memory => Storage::Memory,
        },
        max_age_ns: i64::try_from(c.max_age.as_nanos()).unwrap_or(i64::MAX),
        max_bytes: c.max_bytes,
        max_msgs: c.max_messages,
        max_msg_size: i64::from(c.max_message_size),
        replicas: i64::try_from(c.num_replicas).unwrap_or(i64::MAX),
        discard: match c.discard {
            stream::DiscardPolicy::New => Discard::New,
            _ => Discard::Old,
        },
        duplicate_window_ns: Some(i64::try_from(c.duplicate_window.as_nanos()).unwrap_or(0)),
        description: c.description.clone().filter(|d| !d.is_empty()),
        no_ack: c.no_ack,
    }
}

fn nanos(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

/// The async-nats configuration of a declaration.
pub fn to_server(d: &StreamDecl) -> stream::Config {
    let c = &d.config;
    stream::Config {
        name: d.name.clone(),
        subjects: c.subjects.clone(),
        retention: match c.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
            Retention::Interest => stream::RetentionPolicy::Interest,
            Retention::Workqueue => stream::RetentionPolicy::WorkQueue,
        },
        storage: match c.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        max_age: nanos(c.max_age_ns),
        max_bytes: c.max_bytes,
        max_messages: c.max_msgs,
        max_message_size: i32::try_from(c.max_msg_size).unwrap_or(i32::MAX),
        num_replicas: usize::try_from(c.replicas).unwrap_or(1),
        discard: match c.discard {
            Discard::Old => stream::DiscardPolicy::Old,
            Discard::New => stream::DiscardPolicy::New,
        },
        duplicate_window: nanos(c.duplicate_window_ns.unwrap_or(0)),
        description: c.description.clone(),
        no_ack: c.no_ack,
        ..Default::default()
    }
}

fn server(e: impl std::fmt::Display) -> StreamsError {
    StreamsError::Server(format!("{e}"))
}

impl Warden {
    /// Connects to `nats_url` as the account's JetStream admin user, creating that
    /// user (`$JS.API.>` and its inbox, nothing else) on first use. Refuses an
    /// account without JetStream. Needs `write` and `creds`: the connection it returns may
    /// do anything in the account's JetStream.
    pub async fn jetstream_admin(
        &self,
        account: &str,
        nats_url: &str,
    ) -> Result<jetstream::Context, StreamsError> {
        self.need(Scope::Write, "the JetStream admin user")?;
        self.need(Scope::Creds, "connecting as the JetStream admin user")?;
        let w = self.trusted();
        let acc = w.account(account).await?;
        // Flat limits, or tiers (`R3` for a replicated tenant's or fleet hub's streams).
        if !acc.spec.limits.jetstream_enabled() {
            return Err(StreamsError::NoJetStream(acc.name));
        }
        let user = match w.user(&acc.name, JS_ADMIN_USER).await {
            Ok(u) => u.name,
            Err(OpsError::NotFound(_)) => {
                let mut spec = UserSpec::default();
                let subject = |s: &str| {
                    nats_jwt::subject::Subject::new(s).map_err(|e| server(format!("{s}: {e}")))
                };
                spec.permissions.publish.allow = vec![subject("$JS.API.>")?];
                spec.permissions.subscribe.allow = vec![subject("_INBOX.>")?];
                w.add_user(&acc.name, JS_ADMIN_USER, spec).await?.name
            }
            Err(e) => return Err(e.into()),
        };
        let creds = w.creds_of(&acc.name, &user).await?;
        let client = async_nats::ConnectOptions::with_credentials(&creds)
            .map_err(server)?
            .name("warden-streams")
            .connection_timeout(TIMEOUT)
            .request_timeout(Some(TIMEOUT))
            .max_reconnects(Some(1))
            .retain_servers_order()
            .connect(warden_nats::servers(nats_url))
            .await
            .map_err(|e| {
                server(format!(
                    "cannot connect to {nats_url} as {}/{user}: {e}",
                    acc.name
                ))
            })?;
        Ok(jetstream::new(client))
    }

    /// The streams of an account as the server reports them, by name.
    pub async fn server_streams(
        &self,
        js: &jetstream::Context,
        account: &str,
    ) -> Result<Vec<stream::Info>, StreamsError> {
        self.need(Scope::Read, "reading an account's streams")?;
        let list: Vec<stream::Info> = js.streams().try_collect().await.map_err(|e| {
            let text = e.to_string();
            if text.contains("not enabled") {
                StreamsError::NoJetStream(account.to_string())
            } else {
                server(format!("listing the streams of {account}: {text}"))
            }
        })?;
        let mut list = list;
        list.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        Ok(list)
    }

    /// Refuses declared streams with more replicas than the servers at `nats_url` can
    /// place (one per server of the JetStream cluster; 1 without a cluster), each one a
    /// problem at `streams[i].replicas`, before anything is created. A spec of R1
    /// streams asks nothing. The cluster's size is asked over the system account
    /// ([`warden_nats::jsz`]): an account's own users cannot learn it, and the server's
    /// own refusal ("no suitable peers for placement", "replicas > 1 not supported in
    /// non-clustered mode") would come only after the streams before it were created.
    async fn check_replicas(
        &self,
        decls: &[StreamDecl],
        nats_url: &str,
    ) -> Result<(), StreamsError> {
        if decls.iter().all(|d| d.config.replicas <= 1) {
            return Ok(());
        }
        self.need(
            Scope::Creds,
            "asking the servers about their JetStream cluster",
        )?;
        let creds = self.trusted().system_user_creds().await?;
        let client = warden_nats::ResolverClient::connect(nats_url, &creds, TIMEOUT)
            .await
            .map_err(|e| {
                server(format!(
                    "asking {nats_url} about its JetStream cluster: {e}"
                ))
            })?;
        let here = warden_nats::jsz::jetstream_placement(client.client(), TIMEOUT)
            .await
            .map_err(|e| {
                server(format!(
                    "asking {nats_url} about its JetStream cluster: {e}"
                ))
            })?;
        let max = i64::try_from(here.max_replicas()).unwrap_or(i64::MAX);
        let problems: Vec<SpecProblem> = decls
            .iter()
            .enumerate()
            .filter(|(_, d)| d.config.replicas > max)
            .map(|(i, d)| SpecProblem {
                at: format!("streams[{i}].replicas"),
                message: format!(
                    "stream {} of {} asks for {} replicas, but {nats_url} is {}: at most {max} (one per server)",
                    d.name,
                    d.account,
                    d.config.replicas,
                    here.describe(),
                ),
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StreamsError::Invalid(problems))
        }
    }

    /// Validates `spec`, plans every stream against the server and (unless
    /// `dry_run`) carries the plan out. Nothing changes when the spec is invalid or
    /// a stream needs recreating without `recreate`.
    pub async fn apply_streams(
        &self,
        spec: &StreamsSpec,
        nats_url: &str,
        dry_run: bool,
        recreate: bool,
    ) -> Result<ApplyReport, StreamsError> {
        self.need(Scope::Write, "applying streams")?;
        let decls = warden_core::streams::validate(spec).map_err(StreamsError::Invalid)?;
        let mut problems = Vec::new();
        for (i, d) in decls.iter().enumerate() {
            if let Err(e @ OpsError::NotFound(_)) = self.trusted().account(&d.account).await {
                problems.push(SpecProblem {
                    at: format!("streams[{i}].account"),
                    message: e.to_string(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(StreamsError::Invalid(problems));
        }
        self.check_replicas(&decls, nats_url).await?;
        // Plan everything first, so a refusal leaves the server untouched.
        let mut work = Vec::new();
        for (account, list) in warden_core::streams::by_account(&decls) {
            let js = self.trusted().jetstream_admin(&account, nats_url).await?;
            let current = self.trusted().server_streams(&js, &account).await?;
            for d in list {
                let cur = current
                    .iter()
                    .find(|i| i.config.name == d.name)
                    .map(|i| from_server(&i.config));
                let p = warden_core::streams::plan(d, cur.as_ref());
                work.push((js.clone(), d.clone(), p));
            }
        }
        if !recreate
            && let Some((_, _, p)) = work
                .iter()
                .find(|(_, _, p)| p.action == StreamAction::Recreate)
        {
            return Err(StreamsError::NeedsRecreate(format!(
                "stream {} of {}",
                p.stream, p.account
            )));
        }
        let mut order: Vec<usize> = (0..work.len()).collect();
        // Report in spec order (work is grouped by account).
        order.sort_by_key(|&i| {
            decls
                .iter()
                .position(|d| d.name == work[i].1.name && d.account == work[i].1.account)
        });
        let mut plans = Vec::new();
        for i in order {
            let (js, d, p) = &work[i];
            if !dry_run {
                let what = format!("stream {} of {}", d.name, d.account);
                match p.action {
                    StreamAction::Unchanged => {}
                    StreamAction::Create => {
                        js.create_stream(to_server(d))
                            .await
                            .map_err(|e| server(format!("creating {what}: {e}")))?;
                    }
                    StreamAction::Update => {
                        js.update_stream(to_server(d))
                            .await
                            .map_err(|e| server(format!("updating {what}: {e}")))?;
                    }
                    StreamAction::Recreate => {
                        js.delete_stream(&d.name)
                            .await
                            .map_err(|e| server(format!("deleting {what}: {e}")))?;
                        js.create_stream(to_server(d))
                            .await
                            .map_err(|e| server(format!("creating {what} again: {e}")))?;
                    }
                }
                if p.action != StreamAction::Unchanged {
                    let action = match p.action {
                        StreamAction::Create => "stream.create",
                        StreamAction::Update => "stream.update",
                        _ => "stream.recreate",
                    };
                    let mut tx = self.store().begin().await.map_err(OpsError::from)?;
                    tx.record(self.event(
                        action,
                        "stream",
                        &format!("{}/{}", d.account, d.name),
                        json!({"config": d.config, "changes": p.changes, "nats": nats_url}),
                    ))
                    .await?;
                    tx.commit().await.map_err(OpsError::from)?;
                }
            }
            plans.push(p.clone());
        }
        Ok(ApplyReport {
            dry_run,
            streams: plans,
        })
    }
}
