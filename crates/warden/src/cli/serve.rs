//! `warden serve`: its flags, turned into the plain [`ServeConfig`] that `serve/`
//! composes, and the one line it prints once it listens.

use std::time::Duration;
use warden_nats::NatsUrls;

use anyhow::Result;
use clap::Args;
use warden_ops::{Scope, Warden};

use super::values::duration;
use crate::serve::ServeConfig;

/// Flags of `warden serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// NATS servers to keep in step and serve the NATS API on: one URL, or several servers of
    /// a cluster comma-separated (the connections move to another when theirs dies).
    #[arg(
        long,
        value_name = "URL[,URL...]",
        env = "WARDEN_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats: NatsUrls,
    /// HTTP API listen address (port 0 picks a free one; the address is printed).
    #[arg(long, env = "WARDEN_HTTP_LISTEN", default_value = "127.0.0.1:7480")]
    pub http: String,
    /// Longest wait between retries of a failed delivery (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub max_backoff: Duration,
    /// Outbox rows relayed per batch.
    #[arg(long, default_value_t = 1_024, hide = true)]
    pub batch: i64,
    /// Do not serve the NATS request/reply API.
    #[arg(long)]
    pub no_service: bool,
    /// Scopes the NATS request/reply service acts with (comma-separated: read, write, creds, admin).
    #[arg(long, default_value = "read,write,creds", value_parser = scopes, value_name = "SCOPES")]
    pub service_scopes: ScopeList,
    /// The rooms gateway (`/rooms`, `/chat`): on when a chat secret is set.
    #[command(flatten)]
    pub chat: super::chat::ChatArgs,
    /// How often expired governance grants are removed (and affected NATS users re-issued).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub dir_expire_every: Duration,
    /// Answer auth callout requests too (set up with `warden callout setup`; nats-server ≥ 2.10).
    #[arg(long)]
    pub callout: bool,
    /// HTTPS.
    #[command(flatten)]
    pub tls: super::tls::TlsArgs,
}

/// A parsed `--service-scopes` (one clap value holding the whole list).
#[derive(Debug, Clone)]
pub struct ScopeList(pub Vec<Scope>);

fn scopes(s: &str) -> Result<ScopeList, String> {
    warden_ops::tokens::parse_scopes(s)
        .map(ScopeList)
        .map_err(|e| e.to_string())
}

impl TryFrom<ServeArgs> for ServeConfig {
    type Error = super::UsageError;

    fn try_from(a: ServeArgs) -> Result<Self, super::UsageError> {
        Ok(ServeConfig {
            nats: a.nats.to_string(),
            http: a.http,
            max_backoff: a.max_backoff,
            batch: a.batch,
            no_service: a.no_service,
            service_scopes: a.service_scopes.0,
            chat: a.chat.settings()?,
            dir_expire_every: a.dir_expire_every,
            callout: a.callout,
            tls: a.tls.files()?,
        })
    }
}

/// Runs `warden serve`; prints `warden serve: http://ADDR (nats URL)` once it listens.
pub async fn run(w: &Warden, args: ServeArgs) -> Result<()> {
    let config = ServeConfig::try_from(args)?;
    let nats = config.nats.clone();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    crate::serve::run(w.clone(), config, |addr| {
        // A reader that has gone away is no reason to stop serving.
        let _ =
            super::write_out(format!("warden serve: {scheme}://{addr} (nats {nats})\n").as_bytes());
    })
    .await
}
