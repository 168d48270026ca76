//! `warden tool pub|sub|req`: a small NATS client (like `nsc tool`) that connects
//! with Warden-issued creds — from the store (`--account/--user`) or a creds file —
//! to check what the server allows and refuses. A script that starts a server and a
//! subscriber in the background waits on events, not on time: `--wait-for-server`
//! keeps trying while the server starts, and `sub --ready-file` appears once the
//! server has taken the subscription.

use std::path::PathBuf;
use std::time::Duration;
use warden_nats::NatsUrls;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use futures::StreamExt;
use tokio::sync::mpsc;

use warden_ops::Warden;

/// Subcommands of `warden tool`.
#[derive(Subcommand, Debug)]
#[allow(missing_docs)] // the connection flags are documented on `Conn`
pub enum ToolCmd {
    /// Publish one message.
    Pub {
        #[command(flatten)]
        conn: Conn,
        /// Subject.
        subject: String,
        /// Payload.
        #[arg(default_value = "")]
        payload: String,
    },
    /// Subscribe and print messages.
    Sub {
        #[command(flatten)]
        conn: Conn,
        /// Subject (wildcards allowed).
        subject: String,
        /// Stop after this many messages.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Give up after this long (e.g. 10s).
        #[arg(long, default_value = "10s", value_parser = secs)]
        timeout: Duration,
        /// Create FILE once subscribed (the server has taken the subscription), so a
        /// script can start the subscriber in the background and publish after it.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
    },
    /// Send a request and print the reply.
    Req {
        #[command(flatten)]
        conn: Conn,
        /// Subject.
        subject: String,
        /// Payload.
        #[arg(default_value = "")]
        payload: String,
        /// Give up after this long.
        #[arg(long, default_value = "5s", value_parser = secs)]
        timeout: Duration,
    },
}

/// How to connect.
#[derive(Args, Debug)]
pub struct Conn {
    /// Server URL.
    #[arg(
        long,
        value_name = "URL[,URL...]",
        default_value = "nats://127.0.0.1:4222",
        env = "NATS_URL"
    )]
    nats: NatsUrls,
    /// Account of the user whose creds to use (from the store).
    #[arg(short, long, requires = "user", conflicts_with = "creds")]
    account: Option<String>,
    /// User whose creds to use (from the store), in --account or else the context's
    /// account (`warden context set --account`).
    #[arg(short, long)]
    user: Option<String>,
    /// A creds file instead.
    #[arg(long, value_name = "FILE")]
    creds: Option<PathBuf>,
    /// A token to present too (an ID token, for an auth callout).
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A user name to present too (with --password; for an auth callout).
    #[arg(long, requires = "password", value_name = "NAME")]
    login: Option<String>,
    /// The password of --login (prefer the environment variable over the command line).
    #[arg(
        long,
        env = "NATS_PASSWORD",
        hide_env_values = true,
        requires = "login"
    )]
    password: Option<String>,
    /// Keep trying to connect this long while the server refuses the connection (one
    /// just started in the background); refused credentials are not retried.
    #[arg(long, value_name = "DURATION", value_parser = secs)]
    wait_for_server: Option<Duration>,
}

/// How often a connect is tried again within `--wait-for-server`.
const CONNECT_RETRY: Duration = Duration::from_millis(100);

fn secs(s: &str) -> Result<Duration, String> {
    warden_core::parse::parse_duration_ns(s)
        .map(|ns| Duration::from_nanos(ns.max(0) as u64))
        .map_err(|e| e.to_string())
}

impl ToolCmd {
    /// Fills in the account of `--user` from the context when `--account` is left out.
    pub fn with_context_account(mut self, ctx: &super::context::Context) -> ToolCmd {
        let conn = match &mut self {
            ToolCmd::Pub { conn, .. } | ToolCmd::Sub { conn, .. } | ToolCmd::Req { conn, .. } => {
                conn
            }
        };
        if conn.user.is_some() && conn.account.is_none() {
            conn.account = ctx.account.clone();
        }
        self
    }
}

async fn connect<F, Fut>(
    conn: &Conn,
    open: F,
) -> Result<(async_nats::Client, mpsc::UnboundedReceiver<String>)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Warden>>,
{
    let creds = match (&conn.creds, &conn.account, &conn.user) {
        (Some(path), _, _) => Some(zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )),
        (None, Some(a), Some(u)) => Some(open().await?.creds(a, u).await?),
        (None, None, Some(u)) => bail!(crate::cli::UsageError(format!(
            "--user {u} needs --account ACCOUNT, or a default account: warden context set --account NAME"
        ))),
        // A server whose auth callout decides everyone takes a token or a password alone.
        _ if conn.token.is_some() || conn.login.is_some() => None,
        _ => bail!(crate::cli::UsageError(
            "say whose creds to use: --account A --user U, or --creds FILE (and/or --token, --login)"
                .into()
        )),
    };
    let deadline = conn
        .wait_for_server
        .map(|w| tokio::time::Instant::now() + w);
    loop {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut opts = match &creds {
            Some(c) => async_nats::ConnectOptions::with_credentials(c).context("invalid creds")?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(t) = &conn.token {
            opts = opts.token(t.clone());
        }
        if let (Some(l), Some(p)) = (&conn.login, &conn.password) {
            opts = opts.user_and_password(l.clone(), p.clone());
        }
        let connected = opts
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .max_reconnects(Some(1))
            .connect(&conn.nats)
            .await;
        match connected {
            Ok(client) => return Ok((client, rx)),
            // Nobody listening yet (or not answering): a server still starting.
            Err(e)
                if matches!(
                    e.kind(),
                    async_nats::ConnectErrorKind::Io
                        | async_nats::ConnectErrorKind::TimedOut
                        | async_nats::ConnectErrorKind::MaxReconnects
                ) && deadline
                    .is_some_and(|d| tokio::time::Instant::now() + CONNECT_RETRY < d) =>
            {
                tokio::time::sleep(CONNECT_RETRY).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot connect to {}", conn.nats));
            }
        }
    }
}

/// After a flush, the server has processed everything sent before it; an error it
/// reported for those messages is in the channel by now or very shortly after.
async fn server_error(rx: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_millis(250), rx.recv())
        .await
        .ok()
        .flatten()
}

/// Runs a tool subcommand.
pub async fn run<F, Fut>(json: &bool, cmd: ToolCmd, open: F) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Warden>>,
{
    match cmd {
        ToolCmd::Pub {
            conn,
            subject,
            payload,
        } => {
            let (client, mut errors) = connect(&conn, open).await?;
            client
                .publish(subject.clone(), payload.into_bytes().into())
                .await?;
            client.flush().await?;
            if let Some(e) = server_error(&mut errors).await {
                bail!("server refused the publish to {subject}: {e}");
            }
            if *json {
                outln!("{}", serde_json::json!({"published": subject}))?;
            } else {
                eprintln!("published to {subject}");
            }
        }
        ToolCmd::Sub {
            conn,
            subject,
            count,
            timeout,
            ready_file,
        } => {
            // A file left by an earlier run must not say "ready" for this one.
            if let Some(f) = &ready_file {
                match std::fs::remove_file(f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => bail!("cannot remove the old {}: {e}", f.display()),
                }
            }
            let (client, mut errors) = connect(&conn, open).await?;
            let mut sub = client.subscribe(subject.clone()).await?;
            client.flush().await?;
            if let Some(e) = server_error(&mut errors).await {
                bail!("server refused the subscription to {subject}: {e}");
            }
            if !*json {
                eprintln!("listening on {subject}");
            }
            if let Some(f) = &ready_file {
                std::fs::write(f, format!("listening on {subject}\n"))
                    .with_context(|| format!("cannot write {}", f.display()))?;
            }
            for _ in 0..count {
                let msg = tokio::time::timeout(timeout, sub.next())
                    .await
                    .with_context(|| format!("no message on {subject} within {timeout:?}"))?
                    .context("subscription closed")?;
                let body = String::from_utf8_lossy(&msg.payload);
                if *json {
                    outln!(
                        "{}",
                        serde_json::json!({"subject": msg.subject.as_str(), "payload": body})
                    )?;
                } else {
                    outln!("[{}] {}", msg.subject, body)?;
                }
            }
        }
        ToolCmd::Req {
            conn,
            subject,
            payload,
            timeout,
        } => {
            let (client, _errors) = connect(&conn, open).await?;
            let reply = tokio::time::timeout(
                timeout,
                client.request(subject.clone(), payload.into_bytes().into()),
            )
            .await
            .with_context(|| format!("no reply on {subject} within {timeout:?}"))??;
            let body = String::from_utf8_lossy(&reply.payload);
            if *json {
                outln!("{}", serde_json::json!({"subject": subject, "reply": body}))?;
            } else {
                outln!("{body}")?;
            }
        }
    }
    Ok(())
}
