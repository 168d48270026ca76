//! The configuration file of a Warden service (`/etc/warden/warden.toml`, or the file named
//! by `--config FILE` / `WARDEN_CONFIG`): the settings `serve`, `chat`, `callout run` and
//! `doctor` would otherwise take from flags or `WARDEN_*` variables, kept in one place.
//!
//! Precedence is flags > environment > file > defaults. The file is read before clap parses
//! the command line, and each key sets the `WARDEN_*` variable its flag already reads unless
//! the environment has it: clap then puts a flag above that variable and the variable above
//! the built-in default, as for any other variable. The file adds no setting of its own.
//!
//! The default file is read by the commands a service runs (`serve`, `chat`, `callout run`,
//! `doctor`), and only when it exists; a file named with `--config` or `WARDEN_CONFIG` is read
//! by every command and must exist. Unknown keys and values of the wrong type are usage
//! errors (exit 2) naming the key and the file: a misspelt setting is never silently ignored.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap::parser::ValueSource;

use super::Cli;

/// The file read when none is named.
pub const DEFAULT_PATH: &str = "/etc/warden/warden.toml";

/// One key of the file and the variable it sets.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key in the file.
    pub name: &'static str,
    /// The environment variable it sets (the one its flag reads).
    pub env: &'static str,
    /// Whether the value may be an array of strings (joined with commas, as the flag takes them).
    pub list: bool,
}

/// Every key the file may hold (docs/packaging.md describes each).
pub const KEYS: &[Key] = &[
    key("nats", "WARDEN_NATS_URL", true),
    key("http", "WARDEN_HTTP_LISTEN", false),
    key("database_url", "WARDEN_DATABASE_URL", false),
    key("data_dir", "WARDEN_DATA_DIR", false),
    key("log", "WARDEN_LOG", false),
    key("log_format", "WARDEN_LOG_FORMAT", false),
    key("chat_http", "WARDEN_CHAT_HTTP_LISTEN", false),
    key("chat_secrets_file", "WARDEN_CHAT_HS256_SECRETS_FILE", false),
    key("chat_audience", "WARDEN_CHAT_AUDIENCE", true),
    key("chat_issuer", "WARDEN_CHAT_ISSUER", true),
    key("tls_cert", "WARDEN_TLS_CERT", false),
    key("tls_key", "WARDEN_TLS_KEY", false),
    key("tls_client_ca", "WARDEN_TLS_CLIENT_CA", false),
];

const fn key(name: &'static str, env: &'static str, list: bool) -> Key {
    Key { name, env, list }
}

/// What is wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named with `--config` / `WARDEN_CONFIG` does not exist.
    #[error("configuration file {path}: not found (named by {by})")]
    Missing {
        /// The file.
        path: PathBuf,
        /// `--config` or `WARDEN_CONFIG`.
        by: &'static str,
    },
    /// The file exists but cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML.
    #[error("configuration file {path}: not valid TOML: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A key Warden does not know.
    #[error("configuration file {path}: unknown key `{key}` (known keys: {known})")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The keys the file may hold.
        known: String,
    },
    /// A value of the wrong type, or empty.
    #[error("configuration file {path}: key `{key}`: {expected}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What the value must be.
        expected: String,
    },
}

impl ConfigError {
    /// The exit code: a file that cannot be read is a failure (1), anything wrong with
    /// what was asked for or written in it a usage error (2).
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Read { .. } => 1,
            _ => 2,
        }
    }
}

/// The variables the file at `path` with text `text` sets, in the order of [`KEYS`]:
/// `(variable, value)`. Nothing is applied here.
pub fn settings(path: &Path, text: &str) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Syntax {
                path: path.to_path_buf(),
                reason: e.to_string().trim().replace('\n', " "),
            })?;
    let bad = |key: &str, expected: String| ConfigError::BadValue {
        path: path.to_path_buf(),
        key: key.to_string(),
        expected,
    };
    let mut out = Vec::new();
    for (name, item) in doc.iter() {
        let Some(k) = KEYS.iter().find(|k| k.name == name) else {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key: name.to_string(),
                known: KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
            });
        };
        let expected = if k.list {
            "expected a string or an array of strings"
        } else {
            "expected a string"
        };
        let value = match item.as_value() {
            Some(toml_edit::Value::String(s)) => s.value().trim().to_string(),
            Some(toml_edit::Value::Array(a)) if k.list => {
                let mut parts = Vec::new();
                for v in a.iter() {
                    match v.as_str().map(str::trim) {
                        Some(s) if !s.is_empty() && !s.contains(',') => parts.push(s.to_string()),
                        Some(s) if s.contains(',') => {
                            return Err(bad(name, format!("{s:?}: one value per array entry")));
                        }
                        _ => return Err(bad(name, format!("{expected} (not empty)"))),
                    }
                }
                parts.join(",")
            }
            _ => return Err(bad(name, expected.to_string())),
        };
        if value.is_empty() {
            return Err(bad(name, format!("{expected} (not empty)")));
        }
        out.push((k.env, value));
    }
    out.sort_by_key(|(env, _)| KEYS.iter().position(|k| k.env == *env));
    Ok(out)
}

/// Which file this command line reads: the one it names (`--config`, `WARDEN_CONFIG`),
/// else the default file for the commands a service runs, else none. `Some((path, by))`,
/// `by` naming who named it (`None` for the default).
fn which_file(args: &[OsString]) -> Option<(PathBuf, Option<&'static str>)> {
    // A parse that tolerates errors (a missing value, an unknown flag): the real parse
    // afterwards reports them. Only the file and the command are read here.
    let matches = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?;
    if let Some(path) = matches.get_one::<PathBuf>("config") {
        let by = match matches.value_source("config") {
            Some(ValueSource::EnvVariable) => "WARDEN_CONFIG",
            _ => "--config",
        };
        return Some((path.clone(), Some(by)));
    }
    let service = match matches.subcommand() {
        Some(("serve" | "chat" | "doctor", _)) => true,
        Some(("callout", sub)) => sub.subcommand_name() == Some("run"),
        _ => false,
    };
    service.then(|| (PathBuf::from(DEFAULT_PATH), None))
}

/// Reads the file this command line names or implies and returns the variables it sets
/// that the environment does not have yet (`env` tells whether a variable is set).
pub fn resolve(
    args: &[OsString],
    env: impl Fn(&str) -> bool,
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let Some((path, by)) = which_file(args) else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match by {
                // The default file is optional: flags and variables may say everything.
                None => Ok(Vec::new()),
                Some(by) => Err(ConfigError::Missing { path, by }),
            };
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    Ok(settings(&path, &text)?
        .into_iter()
        .filter(|(var, _)| !env(var))
        .collect())
}

/// Applies the configuration file to this process's environment, before the command line
/// is parsed (`main` calls it first). `Some(exit code)` when the file is wrong: the error
/// has been printed and the command must not run.
pub fn apply() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match resolve(&args, |var| std::env::var_os(var).is_some()) {
        Ok(vars) => {
            for (var, value) in vars {
                // SAFETY: `main` calls this first, before the async runtime or any other
                // thread exists, so nothing reads the environment concurrently.
                unsafe { std::env::set_var(var, value) };
            }
            None
        }
        Err(e) => {
            eprintln!("error: {e}");
            Some(ExitCode::from(e.exit_code()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> &'static Path {
        Path::new("/etc/warden/warden.toml")
    }

    #[test]
    fn keys_set_their_variables() {
        let text = r#"
            # a comment
            nats = ["nats://a:4222", "nats://b:4222"]
            http = "0.0.0.0:7480"
            data_dir = "/var/lib/warden"
            chat_audience = "rooms"
        "#;
        let s = settings(file(), text).unwrap();
        assert_eq!(
            s,
            [
                ("WARDEN_NATS_URL", "nats://a:4222,nats://b:4222".to_string()),
                ("WARDEN_HTTP_LISTEN", "0.0.0.0:7480".to_string()),
                ("WARDEN_DATA_DIR", "/var/lib/warden".to_string()),
                ("WARDEN_CHAT_AUDIENCE", "rooms".to_string()),
            ]
        );
        assert!(settings(file(), "").unwrap().is_empty());
    }

    #[test]
    fn mistakes_name_the_key_and_the_file() {
        for (text, needle) in [
            ("htpp = \"x\"", "unknown key `htpp`"),
            ("[serve]\nhttp = \"x\"", "unknown key `serve`"),
            ("http = 7480", "key `http`: expected a string"),
            ("http = [\"a\"]", "key `http`: expected a string"),
            ("nats = [1]", "key `nats`"),
            ("nats = [\"a,b\"]", "key `nats`"),
            ("data_dir = \" \"", "key `data_dir`"),
            ("http = ", "not valid TOML"),
        ] {
            let e = settings(file(), text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert!(msg.contains("/etc/warden/warden.toml"), "{msg}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn the_environment_wins_and_only_service_commands_read_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "http = \"127.0.0.1:1\"\nnats = \"nats://x:1\"\n").unwrap();
        let args = |a: &[&str]| -> Vec<OsString> {
            std::iter::once("warden")
                .chain(a.iter().copied())
                .map(OsString::from)
                .collect()
        };
        let p = path.to_str().unwrap();
        let got = resolve(&args(&["--config", p, "serve"]), |v| v == "WARDEN_NATS_URL").unwrap();
        assert_eq!(got, [("WARDEN_HTTP_LISTEN", "127.0.0.1:1".to_string())]);
        // Named: read by any command, and must exist.
        assert_eq!(
            resolve(&args(&["status", "--config", p]), |_| false)
                .unwrap()
                .len(),
            2
        );
        let missing = dir.path().join("none.toml");
        let e = resolve(
            &args(&["serve", "--config", missing.to_str().unwrap()]),
            |_| false,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Missing { .. }), "{e}");
        assert_eq!(e.exit_code(), 2);
        // The default file is read only by the commands a service runs.
        assert_eq!(which_file(&args(&["status"])), None);
        assert_eq!(which_file(&args(&["callout", "explain", "x"])), None);
        for cmd in [&["serve"][..], &["chat"], &["doctor"], &["callout", "run"]] {
            assert_eq!(
                which_file(&args(cmd)),
                Some((PathBuf::from(DEFAULT_PATH), None)),
                "{cmd:?}"
            );
        }
    }
}
