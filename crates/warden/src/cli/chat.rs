//! `warden chat` and the rooms gateway's flags (shared with `warden serve`): the flags,
//! turned into the plain [`ChatSettings`] that `chat/` checks and runs, and the one line
//! `warden chat` prints once it listens.

use anyhow::{Context, Result};
use clap::Args;
use warden_nats::NatsUrls;
use warden_ops::Warden;

use super::UsageError;
use crate::chat::{ChatSettings, DEFAULT_ACCOUNT, GATEWAY_USER};
use crate::serve::{GRACE, Shutdown, Tasks};

/// Flags of the rooms gateway, shared by `warden serve` and `warden chat`.
#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    /// HS256 secret of the upstream user service; repeat the flag to accept several
    /// during a rotation (a secret is taken whole: it may contain a comma). Setting one
    /// enables the rooms gateway in `warden serve`.
    #[arg(
        long = "chat-secret",
        env = "WARDEN_CHAT_HS256_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub secrets: Vec<String>,
    /// A file of HS256 secrets, one per line (blank lines and `#` comments skipped), added
    /// to any `--chat-secret`: how several secrets are given through the environment.
    #[arg(
        long = "chat-secrets-file",
        env = "WARDEN_CHAT_HS256_SECRETS_FILE",
        value_name = "FILE"
    )]
    pub secrets_file: Option<std::path::PathBuf>,
    /// Accepted token audience (`aud`); repeatable.
    #[arg(
        long = "chat-audience",
        env = "WARDEN_CHAT_AUDIENCE",
        value_delimiter = ','
    )]
    pub audiences: Vec<String>,
    /// Accepted token issuer (`iss`); repeatable.
    #[arg(
        long = "chat-issuer",
        env = "WARDEN_CHAT_ISSUER",
        value_delimiter = ','
    )]
    pub issuers: Vec<String>,
    /// Clock skew tolerated on `exp`, seconds.
    #[arg(long = "chat-leeway", default_value_t = 0)]
    pub leeway_secs: u64,
    /// Lowest `levelOnEntity` that may create rooms.
    #[arg(long = "chat-create-level", default_value_t = 100)]
    pub create_level: i64,
    /// Largest message text, bytes.
    #[arg(long = "chat-max-message-bytes", default_value_t = 4096)]
    pub max_message_bytes: usize,
    /// Frames a connection may send per second on average.
    #[arg(long = "chat-rate", default_value_t = 20)]
    pub rate_per_second: u32,
    /// Frames a connection may send in a burst.
    #[arg(long = "chat-burst", default_value_t = 40)]
    pub burst: u32,
    /// Seconds between websocket pings; a client silent for two intervals is closed.
    #[arg(long = "chat-ping-secs", default_value_t = 20)]
    pub ping_secs: u64,
    /// Bad tokens allowed on a socket before `BADAUTH` and close.
    #[arg(long = "chat-token-attempts", default_value_t = 3)]
    pub token_attempts: u32,
    /// The NATS account of the gateways (`warden serve` creates it with a `gateway` user).
    #[arg(long = "chat-account", default_value = DEFAULT_ACCOUNT)]
    pub account: String,
}

impl ChatArgs {
    /// The gateway settings the flags give; the secrets file is read here (unreadable:
    /// a usage error).
    pub fn settings(self) -> Result<ChatSettings, UsageError> {
        let mut secrets = self.secrets;
        if let Some(path) = &self.secrets_file {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    UsageError(format!("--chat-secrets-file {}: {e}", path.display()))
                })?);
            secrets.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        Ok(ChatSettings::from(ChatArgs { secrets, ..self }))
    }
}

impl From<ChatArgs> for ChatSettings {
    fn from(a: ChatArgs) -> Self {
        ChatSettings {
            secrets: a.secrets,
            audiences: a.audiences,
            issuers: a.issuers,
            leeway_secs: a.leeway_secs,
            create_level: a.create_level,
            max_message_bytes: a.max_message_bytes,
            rate_per_second: a.rate_per_second,
            burst: a.burst,
            ping_secs: a.ping_secs,
            token_attempts: a.token_attempts,
            account: a.account,
        }
    }
}

/// Flags of `warden chat`.
#[derive(Args, Debug, Clone)]
pub struct ChatCmdArgs {
    /// NATS servers the gateways share (several of a cluster: comma-separated).
    #[arg(
        long,
        value_name = "URL[,URL...]",
        env = "WARDEN_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats: NatsUrls,
    /// HTTP listen address (port 0 picks a free one; the address is printed).
    #[arg(
        long,
        env = "WARDEN_CHAT_HTTP_LISTEN",
        default_value = "127.0.0.1:7481"
    )]
    pub http: String,
    /// Creds file of the gateway user (`warden creds CHAT gateway -o FILE`); by default
    /// they are read from the store.
    #[arg(long, value_name = "FILE")]
    pub creds: Option<std::path::PathBuf>,
    /// Gateway settings.
    #[command(flatten)]
    pub chat: ChatArgs,
    /// HTTPS.
    #[command(flatten)]
    pub tls: super::tls::TlsArgs,
}

/// `warden chat`: the gateway alone (same store, same NATS as the others) until SIGTERM or
/// SIGINT, then stopped within [`crate::serve::GRACE`]; prints `warden chat: http://ADDR
/// (nats URL)` once it listens.
pub async fn run(w: &Warden, args: ChatCmdArgs) -> Result<()> {
    let settings = args.chat.settings()?;
    let tls_files = args.tls.files()?;
    if !settings.enabled() {
        return Err(UsageError(
            "no token secret: set --chat-secret, --chat-secrets-file or WARDEN_CHAT_HS256_SECRET"
                .into(),
        )
        .into());
    }
    // Bad settings are usage errors, found before anything starts.
    settings.check()?;
    // Listened to from here: a signal while starting is a clean stop too.
    let shutdown = Shutdown::on_signals().context("cannot listen for SIGTERM and SIGINT")?;
    let start = async {
        let creds = match &args.creds {
            Some(path) => zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            ),
            None => w
                .creds(&settings.account, GATEWAY_USER)
                .await
                .with_context(|| {
                    format!(
                        "the chat gateway user {}/{GATEWAY_USER} (start `warden serve` with a chat secret once, or pass --creds)",
                        settings.account
                    )
                })?,
        };
        let state = crate::chat::start(
            w,
            &settings,
            &args.nats.to_string(),
            &creds,
            shutdown.receiver(),
        )
        .await?;
        let tcp = tokio::net::TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("cannot listen on {}", args.http))?;
        let listener = match &tls_files {
            Some(files) => {
                let tls = crate::http::tls::Reloadable::new(files.clone())?;
                tls.reload_on_sighup()
                    .context("cannot listen for SIGHUP (TLS certificate reloads)")?;
                crate::http::Listening::Tls(crate::http::tls::TlsListener::new(tcp, tls)?)
            }
            None => crate::http::Listening::Plain(tcp),
        };
        anyhow::Ok((state, listener))
    };
    let (state, listener) = tokio::select! {
        started = start => started?,
        () = shutdown.triggered() => return Ok(()),
    };
    let addr = listener.local_addr()?;
    super::write_out(
        format!(
            "warden chat: {}://{addr} (nats {})\n",
            listener.scheme(),
            args.nats
        )
        .as_bytes(),
    )?;
    let mut tasks = Tasks::default();
    let server = crate::chat::serve(listener, state, shutdown.triggered());
    tasks.spawn("rooms gateway", async move { Ok(server.await?) });
    shutdown.triggered().await;
    tasks.finish_by(tokio::time::Instant::now() + GRACE).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ChatArgs;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        chat: ChatArgs,
    }

    #[test]
    fn secrets_are_taken_whole_repeated_or_from_a_file() {
        // A secret may hold a comma: it is one secret, not two.
        let t = T::try_parse_from(["t", "--chat-secret", "abc,def-0123456789abcdef"]).unwrap();
        let s = t.chat.settings().unwrap();
        assert_eq!(s.secrets, ["abc,def-0123456789abcdef"]);
        // Several secrets: the flag repeated, and a file (one per line, comments skipped).
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets");
        std::fs::write(
            &file,
            "# rotation\nnew-0123456789abcdef\n\n old,with,commas \n",
        )
        .unwrap();
        let t = T::try_parse_from([
            "t",
            "--chat-secret",
            "one-0123456789abcdef",
            "--chat-secret",
            "two-0123456789abcdef",
            "--chat-secrets-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        let s = t.chat.settings().unwrap();
        assert_eq!(
            s.secrets,
            [
                "one-0123456789abcdef",
                "two-0123456789abcdef",
                "new-0123456789abcdef",
                "old,with,commas"
            ]
        );
        // An unreadable file is a usage error naming the flag.
        let t = T::try_parse_from(["t", "--chat-secrets-file", "/nonexistent/secrets"]).unwrap();
        let e = t.chat.settings().unwrap_err();
        assert!(e.to_string().contains("--chat-secrets-file"), "{e}");
    }
}
