//! `warden`: the command-line entry point. Parses flags, runs the command, and maps
//! errors to exit codes: 2 for usage errors (bad flags or input), 1 for failures.

use std::process::ExitCode;

use clap::Parser;
use warden::cli::{self, Cli};

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

/// Installs the logger: stderr, filtered by [`log_filter`], as text (coloured only when
/// stderr is a terminal, so files and pipes get no escape codes) or as JSON lines.
fn init_logging(format: cli::LogFormat) {
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        cli::LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn main() -> ExitCode {
    if let Some(code) = cli::config_file::apply() {
        return code;
    }
    let json = cli::json_requested(&std::env::args_os().collect::<Vec<_>>());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version are printed as clap prints them; a usage error with `--json`
        // is the same JSON as any other failure (exit code 2).
        Err(e) if json && e.use_stderr() => {
            // clap's text without its usage and help hints, on one line.
            let text = e.render().to_string();
            let first = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let failure = cli::Failure {
                exit: 2,
                code: warden_ops::ErrorKind::Invalid.code(),
                message: first.trim_start_matches("error: ").to_string(),
            };
            eprintln!("{}", failure.render(true));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    init_logging(cli.log_format());
    if cli.is_chat_gateway() {
        // Before the runtime starts any thread.
        warden::chat::one_allocator_arena();
    }
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
            let failure = cli::Failure::of(&err);
            eprintln!("{}", failure.render(json));
            ExitCode::from(failure.exit)
        }
    }
}
