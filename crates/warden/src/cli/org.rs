//! `warden org plan|apply|show`: the flags, and the plan and organisation printed as
//! tables or JSON.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use crate::cli::UsageError;
use crate::cli::print_json;
use warden_ops::Warden;
use warden_ops::org::*;

/// `warden org …`
#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Show the plan that makes Warden match FILE, and apply it (one transaction).
    Apply {
        /// The organisation spec, YAML or JSON (by extension, else by content).
        file: PathBuf,
        /// Show the plan only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the organisation last applied: units with their accounts, people with their users.
    Show,
}

fn lower<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Runs `warden org …`.
pub async fn run(json: bool, cmd: OrgCmd, w: &Warden) -> anyhow::Result<()> {
    match cmd {
        OrgCmd::Apply { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            let spec = parse_spec(&file, &text).map_err(UsageError)?;
            // Validate here too, to list every problem on its own line.
            if let Err(e) = w.org_check(&spec) {
                if json {
                    print_json(&json!({"problems": e.problems}))?;
                }
                for p in &e.problems {
                    eprintln!("  {p}");
                }
                let n = e.problems.len();
                return Err(UsageError(format!(
                    "{} in {}; nothing applied",
                    if n == 1 {
                        "1 problem".to_string()
                    } else {
                        format!("{n} problems")
                    },
                    file.display()
                ))
                .into());
            }
            let bar = crate::cli::progress::Bar::for_output(json, 0, "applying");
            let plan = w.org_apply_with_progress(&spec, dry_run, &bar).await?;
            if json {
                return print_json(&plan);
            }
            if !plan.steps.is_empty() {
                let mut t = crate::cli::table(["action", "kind", "name", "detail"]);
                for s in &plan.steps {
                    t.add_row(vec![
                        lower(&s.action),
                        lower(&s.kind),
                        s.name.clone(),
                        s.detail.clone(),
                    ]);
                }
                outln!("{t}")?;
            }
            let n = plan.steps.len();
            if n == 0 && plan.applied {
                outln!("no account or user to change; the spec was recorded")?;
            } else if n == 0 {
                outln!("nothing to change: Warden matches {}", file.display())?;
            } else if dry_run {
                outln!("dry run: {n} changes planned, nothing written")?;
            } else {
                outln!("applied {n} changes")?;
            }
            Ok(())
        }
        OrgCmd::Show => {
            let view = w.org_show().await?;
            if json {
                return print_json(&view);
            }
            let Some(org) = &view.organization else {
                outln!("no organisation applied yet: run `warden org apply FILE`")?;
                return Ok(());
            };
            outln!(
                "organisation {}{}",
                org.name,
                org.id
                    .as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default()
            )?;
            let mut t = crate::cli::table(["unit", "type", "account", "users"]);
            for u in &view.units {
                t.add_row(vec![
                    format!("{} ({})", u.name, u.id),
                    u.unit_type.as_str().to_string(),
                    u.account.clone().unwrap_or_else(|| "-".into()),
                    u.users.to_string(),
                ]);
            }
            outln!("{t}")?;
            let mut t = crate::cli::table(["person", "roles", "user", "status"]);
            for p in &view.people {
                let roles: Vec<String> = p.roles.iter().map(|r| format!("{r:?}")).collect();
                t.add_row(vec![
                    format!(
                        "{} ({}){}",
                        p.name.as_deref().unwrap_or("-"),
                        p.id,
                        if p.in_spec { "" } else { " [removed]" }
                    ),
                    roles.join(", "),
                    match (&p.account, &p.user) {
                        (Some(a), Some(u)) => format!("{a}/{u}"),
                        _ => "-".into(),
                    },
                    p.status.clone(),
                ]);
            }
            outln!("{t}")?;
            Ok(())
        }
    }
}
