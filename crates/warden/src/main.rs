//! `warden`: the command-line entry point. Parses flags, runs the command, and maps
//! errors to exit codes: 2 for usage errors (bad flags or input), 1 for failures.

use std::process::ExitCode;

use clap::Parser;
use warden::cli::{self, Cli, UsageError};

/// The log filter: `WARDEN_LOG` (tracing's env-filter syntax), `warn` by default. The
/// websocket libraries log every frame they receive at trace level, and a rooms client's
/// first frame is its token: they are held at debug whatever `WARDEN_LOG` asks. (The NATS
/// client traces protocol lines without payloads and redacts CONNECT secrets, so an auth
/// callout request's password or token stays out of its trace; the callout tests check.)
fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A directive raises a target's level as well as lowering it: add the caps only
    // when something asks for trace, or they would turn debug logging on.
    if filter.max_level_hint() != Some(tracing::level_filters::LevelFilter::TRACE) {
        return filter;
    }
    [
        "tungstenite=debug",
        "tokio_tungstenite=debug",
        "tokio_websockets=debug",
    ]
    .into_iter()
    .filter_map(|d| d.parse().ok())
    .fold(filter, |f, d| f.add_directive(d))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(cli::run(cli));
    // Blocking work still running (a hostname lookup for an unreachable NATS, say) must
    // not hold the exit once the command has finished: `serve` promises to stop within
    // 2 s of a signal.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            if is_usage(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<UsageError>().is_some()
            || e.downcast_ref::<warden_ops::OpsError>()
                .is_some_and(|e| cli::exit_code(e.kind()) == 2)
    })
}

/// The error and its causes on one line, without repeating a cause that the
/// message already contains.
fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace('\n', " ")
}
