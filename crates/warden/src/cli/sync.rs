//! `warden push` and `warden sync --check|--fix`: delivering Warden's accounts to
//! nats-server and comparing (or repairing) what each server's resolver holds.
//!
//! `sync` reads every server given in `--nats` on a connection of its own, so a server
//! of a cluster that missed an update is named instead of hidden behind a peer that
//! answered first; see `Warden::cluster_drift_check` for what that can and cannot see.

use anyhow::{Result, bail};
use warden_nats::NatsUrls;
use warden_ops::Warden;
use warden_ops::drift::{ClusterDriftReport, ServerDriftReport, SyncState};

use super::{Global, emit, table};

/// The servers to talk to: `--nats` (or `WARDEN_NATS_URL`), else those the running or
/// last `warden serve` on this database was given; never a guessed default.
pub(crate) async fn servers(w: &Warden, nats: Option<NatsUrls>) -> Result<NatsUrls> {
    if let Some(n) = nats {
        return Ok(n);
    }
    match w.serve_presence().await? {
        Some(p) => NatsUrls::parse(&p.nats).map_err(|e| {
            super::usage(format!(
                "the NATS URL `warden serve` noted is unusable ({e}): pass --nats URL"
            ))
        }),
        None => Err(super::usage(
            "no NATS server given: pass --nats URL[,URL…] or set WARDEN_NATS_URL (`warden serve` notes the servers it was given, and they are used once it has run)",
        )),
    }
}

/// `warden push [ACCOUNT | --all]`: the outbox now, or the current JWT of one account or
/// of all.
pub(crate) async fn push(
    g: &Global,
    w: &Warden,
    account: Option<String>,
    all: bool,
    nats: &NatsUrls,
) -> Result<()> {
    let nats = nats.to_string();
    if account.is_none() && !all {
        let report = w.push_outbox(&nats).await?;
        emit(g, &report, || {
            format!(
                "delivered {} pending changes ({} accounts pushed, {} deleted, {} events), {} failed\n",
                report.delivered,
                report.accounts_pushed,
                report.accounts_deleted,
                report.events_published,
                report.failed
            )
        })?;
        if let Some(e) = report.first_error {
            bail!(
                "{} deliveries failed (they stay queued): {e}",
                report.failed
            );
        }
        return Ok(());
    }
    let link = warden_ops::drift::ResolverLink::bulk(nats.clone());
    let bar = super::progress::Bar::for_output(g.json, 0, "pushing accounts");
    let rows = w
        .push_accounts_with(&link, account.as_deref(), &bar)
        .await?;
    let failures = rows.iter().filter(|r| !r.ok).count();
    emit(g, &rows, || {
        // One line per account only for one account or a failure; a bulk push ends
        // in a summary, as `nsc push --all` does.
        let mut out = String::new();
        for r in rows.iter().filter(|r| account.is_some() || !r.ok) {
            out += &format!(
                "{} {}: {}\n",
                r.account,
                if r.ok { "pushed" } else { "FAILED" },
                r.reply
            );
        }
        if account.is_none() {
            out += &format!(
                "pushed {} to {nats}: {} ok, {failures} failed\n",
                warden_core::units::plural(rows.len(), "account", "accounts"),
                rows.len() - failures,
            );
        }
        out
    })?;
    if failures > 0 {
        bail!("{failures} of {} pushes failed", rows.len());
    }
    Ok(())
}

/// `warden sync --check` (exit 1 on drift) or `--fix`, over every server given.
pub(crate) async fn run(g: &Global, w: &Warden, fix: bool, nats: &NatsUrls) -> Result<()> {
    if fix {
        return repair(g, w, nats).await;
    }
    let report = w.cluster_drift_check(nats).await?;
    emit(g, &check_json(&report), || check_table(&report))?;
    if !report.in_step() {
        let lagging: Vec<String> = report
            .servers
            .iter()
            .filter(|s| !s.in_step())
            .map(|s| match &s.error {
                Some(_) => format!("{} unreadable", server_label(s)),
                None => format!(
                    "{}: {} missing, {} stale, {} unknown",
                    server_label(s),
                    s.report.missing.len(),
                    s.report.stale.len(),
                    s.report.unknown.len()
                ),
            })
            .collect();
        bail!(
            "drift on {} of {} servers ({}); repair with `warden sync --fix`",
            lagging.len(),
            report.servers.len(),
            lagging.join("; ")
        );
    }
    Ok(())
}

async fn repair(g: &Global, w: &Warden, nats: &NatsUrls) -> Result<()> {
    let repair = w.cluster_drift_fix(nats).await?;
    let errors: Vec<String> = repair
        .servers
        .iter()
        .flat_map(|s| s.errors.iter().cloned())
        .collect();
    let value = serde_json::json!({
        "in_step": repair.in_step,
        "pushed": repair.servers.iter().map(|s| s.pushed).sum::<usize>(),
        "deleted": repair.servers.iter().map(|s| s.deleted).sum::<usize>(),
        "errors": errors,
        "servers": repair.servers,
        "after": check_json(&repair.after),
    });
    emit(g, &value, || {
        let mut t = table(["server", "url", "pushed", "deleted", "errors"]);
        for s in &repair.servers {
            t.add_row([
                name_or_dash(&s.server_name),
                s.url.clone(),
                s.pushed.to_string(),
                s.deleted.to_string(),
                if s.errors.is_empty() {
                    "-".to_string()
                } else {
                    s.errors.join("\n")
                },
            ]);
        }
        format!(
            "{t}\n{}\n",
            if repair.in_step {
                "every server is now in step with Warden"
            } else {
                "still drifting"
            }
        )
    })?;
    if !repair.in_step {
        let mut why = errors;
        for s in repair.after.servers.iter().filter(|s| !s.in_step()) {
            why.push(format!("{} still drifting", server_label(s)));
        }
        bail!("sync did not converge: {}", why.join("; "));
    }
    Ok(())
}

/// `--json` of a check: the verdict, the keys drifting on any server (as a single server's
/// check always had them), and each server with its own lists and accounts.
fn check_json(report: &ClusterDriftReport) -> serde_json::Value {
    let servers: Vec<serde_json::Value> = report
        .servers
        .iter()
        .map(|s| {
            serde_json::json!({
                "url": s.url,
                "server_name": s.server_name,
                "server_id": s.server_id,
                "version": s.version,
                "in_step": s.in_step(),
                "error": s.error,
                "missing": s.report.missing,
                "stale": s.report.stale,
                "newer_on_server": s.report.newer_on_server,
                "unattributed": s.unattributed,
                "unknown": s.report.unknown,
                "accounts": s.report.accounts,
            })
        })
        .collect();
    serde_json::json!({
        "in_step": report.in_step(),
        "missing": report.union(|r| &r.missing),
        "stale": report.union(|r| &r.stale),
        "unknown": report.union(|r| &r.unknown),
        "servers": servers,
        "not_compared": report.not_compared,
    })
}

/// One table: a row per drifting account per server (accounts by name), one row for a
/// server in step or unreadable; then the servers the cluster announced but nobody gave.
fn check_table(report: &ClusterDriftReport) -> String {
    let mut t = table(["server", "url", "account", "public key", "state"]);
    for s in &report.servers {
        let server = name_or_dash(&s.server_name);
        if let Some(e) = &s.error {
            t.add_row([
                server,
                s.url.clone(),
                "-".into(),
                "-".into(),
                format!("unreadable: {e}"),
            ]);
            continue;
        }
        if s.report.in_step() {
            t.add_row([
                server,
                s.url.clone(),
                format!("all {}", s.report.accounts.len()),
                "-".into(),
                SyncState::InSync.label().into(),
            ]);
            continue;
        }
        for a in s
            .report
            .accounts
            .iter()
            .filter(|a| a.state != SyncState::InSync)
        {
            t.add_row([
                server.clone(),
                s.url.clone(),
                a.name.clone(),
                a.public_key.clone(),
                a.state.label().into(),
            ]);
        }
        for k in &s.report.unknown {
            t.add_row([
                server.clone(),
                s.url.clone(),
                "(not in Warden)".into(),
                k.clone(),
                "unknown".into(),
            ]);
        }
    }
    let mut out = format!("{t}\n");
    if !report.not_compared.is_empty() {
        out += &format!(
            "not compared (announced by the cluster, not given in --nats): {}\n",
            report.not_compared.join(", ")
        );
    }
    out
}

fn server_label(s: &ServerDriftReport) -> String {
    if s.server_name.is_empty() {
        s.url.clone()
    } else {
        format!("{} ({})", s.server_name, s.url)
    }
}

fn name_or_dash(name: &str) -> String {
    if name.is_empty() {
        "-".into()
    } else {
        name.to_string()
    }
}
