//! `warden account export …`, `warden account import …` and `warden activation …`:
//! sharing streams and services between accounts, with nsc's flags (`--service`,
//! `--private`, `--response-type`, `--latency`/`--sampling`, `--account-token-position`,
//! `--local-subject`, `--share`), and their human and JSON output.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use nats_jwt::{ExportType, ResponseType, ServiceLatency, Subject};
use warden_core::parse::{format_unix, parse_expiry};
use warden_ops::Warden;
use warden_ops::exports::{
    ActivationOptions, ExportChange, ExportEdit, ExportOptions, ImportOptions, ImportView,
};

use super::secret_out::SecretOut;
use super::values::{duration_ns, subject};
use super::{emit, print_json, table, time_or, usage, write_out};

/// `warden account export …`.
#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// Export a stream (default) or a service to other accounts (nsc `add export`).
    Add(ExportAddArgs),
    /// List an account's exports and the Warden accounts importing each.
    List {
        /// The exporting account.
        account: String,
    },
    /// Change an export, chosen by its subject (nsc `edit export`); importers follow.
    Edit(ExportEditArgs),
    /// Remove an export; Warden accounts importing it lose the import (re-signed).
    Rm {
        /// The exporting account.
        account: String,
        /// The export's subject.
        #[arg(long, value_parser = subject)]
        subject: Subject,
    },
    /// Revoke the activations of a private export issued to an account (`*`: everyone).
    RevokeActivation {
        /// The exporting account.
        account: String,
        /// The export's subject.
        #[arg(long, value_parser = subject)]
        subject: Subject,
        /// The importing account: public key, Warden account name, or `*`.
        #[arg(long)]
        target: String,
    },
}

/// Stream or service, as nsc says it: `--service`, else a stream.
#[derive(Args, Debug, Default)]
pub struct KindFlags {
    /// A service (requests in, replies back).
    #[arg(long, conflicts_with = "stream")]
    service: bool,
    /// A stream (messages flow to importers).
    #[arg(long)]
    stream: bool,
}

impl KindFlags {
    fn kind(&self) -> Option<ExportType> {
        if self.service {
            Some(ExportType::Service)
        } else if self.stream {
            Some(ExportType::Stream)
        } else {
            None
        }
    }
}

/// Flags of `warden account export add`.
#[derive(Args, Debug)]
pub struct ExportAddArgs {
    /// The exporting account.
    account: String,
    /// The exported subject.
    #[arg(long, value_parser = subject)]
    subject: Subject,
    #[command(flatten)]
    kind: KindFlags,
    /// Private: importers need an activation (`token_req`).
    #[arg(long)]
    private: bool,
    /// Export name.
    #[arg(long, short = 'n')]
    name: Option<String>,
    #[command(flatten)]
    service: ServiceFlags,
    /// Token (1-based, a `*`) that must hold the importing account's key.
    #[arg(long, value_name = "N")]
    account_token_position: Option<u32>,
    /// Description.
    #[arg(long)]
    description: Option<String>,
    /// A URL with more about the export.
    #[arg(long)]
    info_url: Option<String>,
    /// Advertise the export (a hint for tools).
    #[arg(long)]
    advertise: bool,
}

/// The service-only flags of an export.
#[derive(Args, Debug, Default)]
pub struct ServiceFlags {
    /// Services: how the service answers: singleton, stream or chunked.
    #[arg(long, value_parser = response_type, value_name = "TYPE")]
    response_type: Option<ResponseType>,
    /// Services: how long a response may take (`500ms`, `2s`).
    #[arg(long, value_parser = duration_ns, value_name = "DURATION")]
    response_threshold: Option<i64>,
    /// Services: publish latency measurements to this subject.
    #[arg(long, value_parser = subject, value_name = "SUBJECT")]
    latency: Option<Subject>,
    /// Services: percentage of requests measured (1-100), or `headers`.
    #[arg(long, requires = "latency", value_parser = sampling, value_name = "PERCENT")]
    sampling: Option<u8>,
    /// Services: message traces may cross into this account.
    #[arg(long)]
    allow_trace: bool,
}

impl ServiceFlags {
    fn latency(&self) -> Option<ServiceLatency> {
        self.latency.clone().map(|results| ServiceLatency {
            sampling: self.sampling.unwrap_or(100),
            results,
        })
    }
}

/// Flags of `warden account export edit`.
#[derive(Args, Debug)]
pub struct ExportEditArgs {
    /// The exporting account.
    account: String,
    /// The export's subject.
    #[arg(long, value_parser = subject)]
    subject: Subject,
    /// Make it private (Warden's importers get activations).
    #[arg(long, conflicts_with = "public")]
    private: bool,
    /// Make it public (activations dropped from Warden's importers).
    #[arg(long)]
    public: bool,
    /// Export name (empty clears it).
    #[arg(long, short = 'n')]
    name: Option<String>,
    #[command(flatten)]
    service: ServiceFlags,
    /// Stop latency tracking.
    #[arg(long, conflicts_with = "latency")]
    rm_latency: bool,
    /// Account token position (0 clears it).
    #[arg(long, value_name = "N")]
    account_token_position: Option<u32>,
    /// Description (empty clears it).
    #[arg(long)]
    description: Option<String>,
    /// Info URL (empty clears it).
    #[arg(long)]
    info_url: Option<String>,
    /// Advertise (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    advertise: Option<bool>,
}

/// `warden account import …`.
#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Import another Warden account's export (nsc `add import`); a private export's
    /// activation is issued and embedded.
    Add(ImportAddArgs),
    /// List an account's imports.
    List {
        /// The importing account.
        account: String,
    },
    /// Remove an import, chosen by its subject as exported (or its local subject).
    Rm {
        /// The importing account.
        account: String,
        /// The exporter's subject (as in `import list`), or the local subject.
        #[arg(long, value_parser = subject)]
        subject: Subject,
        /// The exporting account, when several export that subject to this one.
        #[arg(long)]
        from: Option<String>,
    },
}

/// Flags of `warden account import add`.
#[derive(Args, Debug)]
pub struct ImportAddArgs {
    /// The importing account.
    account: String,
    /// The exporting account (Warden account name or public key).
    #[arg(long)]
    from: String,
    /// The subject as exported (the export's, or one it covers).
    #[arg(long, value_parser = subject)]
    subject: Subject,
    /// The subject in the importing account (`$1`… name the `*` tokens of --subject).
    #[arg(long, value_parser = subject)]
    local_subject: Option<Subject>,
    #[command(flatten)]
    kind: KindFlags,
    /// Import name.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Services: share this account's information for latency tracking.
    #[arg(long)]
    share: bool,
    /// Streams: let message traces continue into this account.
    #[arg(long)]
    allow_trace: bool,
}

/// `warden activation …`.
#[derive(Subcommand, Debug)]
pub enum ActivationCmd {
    /// Issue an activation of a private export for an account (nsc `generate activation`).
    Create {
        /// The exporting account.
        account: String,
        /// The subject granted (the export's, or one it covers).
        #[arg(long, value_parser = subject)]
        subject: Subject,
        /// The importing account: public key (`A…`) or Warden account name.
        #[arg(long)]
        target: String,
        /// Expiry: `30m`, `2h`, `7d`, `yyyy-mm-dd`, `@unix` (none by default).
        #[arg(long, value_name = "WHEN")]
        expiry: Option<String>,
        /// Output file (written 0600); stdout when absent.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn response_type(s: &str) -> Result<ResponseType, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "singleton" => Ok(ResponseType::Singleton),
        "stream" => Ok(ResponseType::Stream),
        "chunked" => Ok(ResponseType::Chunked),
        _ => Err(format!(
            "{s:?} is not a response type (singleton, stream or chunked)"
        )),
    }
}

fn sampling(s: &str) -> Result<u8, String> {
    let t = s.trim().trim_end_matches('%');
    if t.eq_ignore_ascii_case("headers") {
        return Ok(0);
    }
    match t.parse::<u8>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a sampling rate (1-100, or headers)")),
    }
}

fn kind_name(k: ExportType) -> &'static str {
    match k {
        ExportType::Stream => "stream",
        ExportType::Service => "service",
    }
}

fn change_text(verb: &str, c: &ExportChange) -> String {
    let mut out = format!(
        "{} export {} of account {} {verb}{}\n",
        kind_name(c.export.export_type),
        c.export.subject,
        c.account,
        if c.export.token_req { " (private)" } else { "" }
    );
    for r in &c.imports_removed {
        out += &format!("  import removed: {r}\n");
    }
    for a in &c.activations_issued {
        out += &format!("  activation issued to {a}\n");
    }
    for a in &c.activations_dropped {
        out += &format!("  activation dropped from {a}\n");
    }
    if !c.importers_resigned.is_empty() {
        out += &format!(
            "  importers re-signed: {} (push with `warden push`)\n",
            c.importers_resigned.join(", ")
        );
    }
    out
}

/// Runs `warden account export …`.
pub async fn run_export(json: bool, w: &Warden, cmd: ExportCmd) -> Result<()> {
    match cmd {
        ExportCmd::Add(a) => {
            let opts = ExportOptions {
                subject: a.subject,
                export_type: a.kind.kind().unwrap_or(ExportType::Stream),
                private: a.private,
                name: a.name,
                response_type: a.service.response_type,
                response_threshold_ns: a.service.response_threshold,
                latency: a.service.latency(),
                account_token_position: a.account_token_position,
                description: a.description,
                info_url: a.info_url,
                advertise: a.advertise,
                allow_trace: a.service.allow_trace,
            };
            let c = w.add_export(&a.account, &opts).await?;
            emit(json, &c, || change_text("added", &c))
        }
        ExportCmd::List { account } => {
            let list = w.list_exports(&account).await?;
            emit(json, &list, || {
                let mut t = table(["subject", "type", "access", "name", "importers"]);
                for v in &list {
                    let e = &v.export;
                    t.add_row(vec![
                        e.subject.to_string(),
                        kind_name(e.export_type).to_string(),
                        if e.token_req {
                            format!("private ({} revoked)", e.revocations.len())
                        } else {
                            "public".into()
                        },
                        e.name.clone().unwrap_or_default(),
                        v.importers
                            .iter()
                            .map(|i| i.account.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]);
                }
                format!("{t}\n")
            })
        }
        ExportCmd::Edit(a) => {
            let edit = ExportEdit {
                private: if a.private {
                    Some(true)
                } else if a.public {
                    Some(false)
                } else {
                    None
                },
                name: a.name,
                response_type: a.service.response_type,
                response_threshold_ns: a.service.response_threshold,
                latency: a.service.latency(),
                no_latency: a.rm_latency,
                account_token_position: a.account_token_position,
                description: a.description,
                info_url: a.info_url,
                advertise: a.advertise,
                allow_trace: a.service.allow_trace.then_some(true),
            };
            let c = w.edit_export(&a.account, &a.subject, &edit).await?;
            emit(json, &c, || change_text("updated", &c))
        }
        ExportCmd::Rm { account, subject } => {
            let c = w.remove_export(&account, &subject).await?;
            emit(json, &c, || change_text("removed", &c))
        }
        ExportCmd::RevokeActivation {
            account,
            subject,
            target,
        } => {
            let r = w.revoke_activation(&account, &subject, &target).await?;
            emit(json, &r, || {
                let mut out = format!(
                    "activations of {} export {} for {} issued up to {} revoked\n",
                    r.exporter,
                    r.subject,
                    r.target_account.as_deref().unwrap_or(&r.target),
                    format_unix(r.revoked_at)
                );
                if !r.importers_resigned.is_empty() {
                    out += &format!(
                        "  re-signed: {} (push with `warden push`)\n",
                        r.importers_resigned.join(", ")
                    );
                }
                out
            })
        }
    }
}

fn import_row(v: &ImportView) -> Vec<String> {
    let i = &v.import;
    vec![
        i.subject.to_string(),
        i.local_namespace().to_string(),
        kind_name(i.import_type).to_string(),
        v.from.clone().unwrap_or_else(|| i.account.to_string()),
        match (&i.token, v.activation_expires_at) {
            (None, _) => "-".into(),
            (Some(_), exp) => format!("yes (expires {})", time_or(exp, "never")),
        },
    ]
}

/// Runs `warden account import …`.
pub async fn run_import(json: bool, w: &Warden, cmd: ImportCmd) -> Result<()> {
    match cmd {
        ImportCmd::Add(a) => {
            let opts = ImportOptions {
                from: a.from,
                subject: a.subject,
                local_subject: a.local_subject,
                import_type: a.kind.kind(),
                name: a.name,
                share: a.share,
                allow_trace: a.allow_trace,
            };
            let v = w.add_import(&a.account, &opts).await?;
            emit(json, &v, || {
                format!(
                    "account {} imports {} {} from {} as {}{}\n",
                    v.account,
                    kind_name(v.import.import_type),
                    v.import.subject,
                    v.from.as_deref().unwrap_or(v.import.account.as_str()),
                    v.import.local_namespace(),
                    if v.import.token.is_some() {
                        " (activation embedded)"
                    } else {
                        ""
                    }
                )
            })
        }
        ImportCmd::List { account } => {
            let list = w.list_imports(&account).await?;
            emit(json, &list, || {
                let mut t = table(["subject", "local subject", "type", "from", "activation"]);
                for v in &list {
                    t.add_row(import_row(v));
                }
                format!("{t}\n")
            })
        }
        ImportCmd::Rm {
            account,
            subject,
            from,
        } => {
            let v = w.remove_import(&account, &subject, from.as_deref()).await?;
            emit(json, &v, || {
                format!(
                    "import {} of account {} removed\n",
                    v.import.subject, v.account
                )
            })
        }
    }
}

/// Runs `warden activation …`.
pub async fn run_activation(json: bool, w: &Warden, cmd: ActivationCmd) -> Result<()> {
    match cmd {
        ActivationCmd::Create {
            account,
            subject,
            target,
            expiry,
            output,
        } => {
            let expires_at = match expiry.as_deref() {
                None => None,
                Some(s) => parse_expiry(s, warden_ops::now())
                    .map_err(|e| usage(format!("--expiry: {e}")))?,
            };
            let output = SecretOut::prepare(output.as_deref())?;
            let v = w
                .create_activation(
                    &account,
                    &ActivationOptions {
                        subject,
                        target,
                        expires_at,
                    },
                )
                .await?;
            match output {
                Some(SecretOut::File(file)) => {
                    let path = file.path().to_path_buf();
                    SecretOut::File(file).write(
                        format!("{}\n", v.jwt).as_bytes(),
                        "run `warden activation create` again for another copy",
                    )?;
                    if json {
                        print_json(&serde_json::json!({"activation": v, "file": path}))
                    } else {
                        eprintln!(
                            "activation of {} {} for {} written to {}",
                            v.exporter,
                            v.subject,
                            v.target,
                            path.display()
                        );
                        Ok(())
                    }
                }
                Some(SecretOut::Stdout) | None => {
                    if json {
                        print_json(&v)
                    } else {
                        write_out(format!("{}\n", v.jwt).as_bytes())
                    }
                }
            }
        }
    }
}
