//! `warden bench governance`: importing a synthetic directory through
//! [`Warden::apply_sync_plan`] (N users, M roles of ~K members each), re-applying it
//! (idempotent: nothing changes), and the end-to-end time of a proposal — propose,
//! confirm, push the account, fetch the new creds, connect and publish on the task's
//! subject until the nats-server the bench started delivers it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures::StreamExt;
use serde::Serialize;
use warden_core::directory::{NextRole, NextUser, SyncPlan};
use warden_core::governance::{Change, ProposalKind, TaskGrants};

use crate::bench::server::BenchServer;
use warden_ops::governance::ProposalInput;

/// Flags of `warden bench governance`.
#[derive(Debug, Clone)]
pub struct GovernanceOptions {
    /// Directory users to import.
    pub users: u32,
    /// Roles to import.
    pub roles: u32,
    /// Members per role.
    pub members: u32,
    /// Proposals timed end to end.
    pub rounds: u32,
    /// nats-server binary the bench starts.
    pub nats_server: PathBuf,
}

/// Result of `warden bench governance`.
#[derive(Debug, Serialize)]
pub struct BenchGovernanceReport {
    /// Users imported.
    pub users: u32,
    /// Roles imported.
    pub roles: u32,
    /// Member relationships imported.
    pub memberships: u64,
    /// nats-server version.
    pub nats_server: String,
    /// Seconds for the first `apply_sync_plan` (one transaction).
    pub import_seconds: f64,
    /// Seconds to read Warden's snapshot of the source back.
    pub snapshot_seconds: f64,
    /// Seconds to apply the same plan again (nothing changes).
    pub reapply_seconds: f64,
    /// Proposals timed end to end.
    pub rounds: u32,
    /// Propose → confirm → push → creds → connect → publish delivered: median, ms.
    pub e2e_median_ms: f64,
    /// Fastest round, ms.
    pub e2e_min_ms: f64,
    /// Slowest round, ms.
    pub e2e_max_ms: f64,
    /// Median of the confirm alone (one transaction, re-issue included), ms.
    pub confirm_median_ms: f64,
}

fn synthetic_plan(users: u32, roles: u32, members: u32) -> SyncPlan {
    let uid = |i: u32| format!("u{i:06}");
    let create_users = (0..users)
        .map(|i| NextUser {
            id: uid(i),
            user_id: Some(format!("guid-u-{i}")),
            name: Some(format!("User {i}")),
            email: Some(format!("u{i}@example.org")),
            // A shallow management tree: every user reports to the first of their hundred.
            manager: (i % 100 != 0).then(|| uid(i - i % 100)),
            ..Default::default()
        })
        .collect();
    let create_roles = (0..roles)
        .map(|r| NextRole {
            name: format!("role-{r:05}"),
            role_id: Some(format!("guid-r-{r}")),
            display_name: Some(format!("Role {r}")),
            members: (0..members)
                .map(|j| uid((r * members + j) % users.max(1)))
                .collect(),
            owners: vec![uid(r % users.max(1))],
            ..Default::default()
        })
        .collect();
    SyncPlan {
        source: "bench:synthetic".into(),
        create_users,
        create_roles,
        ..Default::default()
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Runs `warden bench governance`.
pub async fn bench(json: bool, args: GovernanceOptions) -> Result<()> {
    if args.users == 0 || args.rounds == 0 || args.rounds > args.users {
        return Err(crate::cli::UsageError(
            "--users and --rounds must be positive, --rounds at most --users".into(),
        )
        .into());
    }
    let dir = tempfile::Builder::new()
        .prefix("warden-bench-governance-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), None, true).await?;
    w.add_account("APP", Default::default()).await?;

    // The server: Warden's config, started and waited for (bounded).
    let mut server = BenchServer::start(&w, &args.nats_server, dir.path()).await?;
    let version = server.version.clone();
    let nats_url = server.url.clone();
    let result = async {
        let rcfg = warden_ops::relay::RelayConfig::new(nats_url.clone());
        let conns = warden_ops::relay::Connections::open(&w, &rcfg).await?;
        warden_ops::relay::drain_all(&w, &conns, &rcfg).await?;

        let plan = synthetic_plan(args.users, args.roles, args.members);
        let t = Instant::now();
        let report = w.apply_sync_plan(&plan).await?;
        let import_seconds = t.elapsed().as_secs_f64();
        if report.users_created != args.users as usize {
            return Err(anyhow!("import created {} users", report.users_created));
        }
        let t = Instant::now();
        let snap = w.directory_snapshot(&plan.source).await?;
        let snapshot_seconds = t.elapsed().as_secs_f64();
        if snap.users.len() != args.users as usize {
            return Err(anyhow!("snapshot has {} users", snap.users.len()));
        }
        let t = Instant::now();
        let again = w.apply_sync_plan(&plan).await?;
        let reapply_seconds = t.elapsed().as_secs_f64();
        if again.users_created + again.users_updated + again.roles_created + again.roles_updated
            != 0
        {
            return Err(anyhow!("re-applying the plan changed something: {again:?}"));
        }

        // The governed grant: an admin-owned task in a Warden role.
        let admin = "bench_admin";
        w.dir_user_add(
            None,
            NextUser {
                id: admin.into(),
                name: Some("Bench Admin".into()),
                ..Default::default()
            },
            true,
        )
        .await?;
        w.task_create(
            None,
            "bench-orders",
            "APP",
            TaskGrants {
                allow_pub: vec![nats_jwt::Subject::new("orders.>")?],
                allow_sub: vec![nats_jwt::Subject::new("orders.>")?],
                ..Default::default()
            },
            &[admin.to_string()],
            None,
        )
        .await?;
        w.role_create(None, "bench-sales", &[admin.to_string()], None)
            .await?;
        let p = w
            .propose(
                admin,
                ProposalInput {
                    kind: ProposalKind::RoleTask,
                    change: Change::Add,
                    object: "bench-sales".into(),
                    related: "bench-orders".into(),
                    reason: None,
                    grant_expires_at: None,
                    expires_at: None,
                },
            )
            .await?;
        w.confirm(admin, &p.id, None).await?;
        warden_ops::relay::drain_all(&w, &conns, &rcfg).await?;

        let mut e2e = Vec::new();
        let mut confirms = Vec::new();
        for k in 0..args.rounds {
            let user = format!("u{:06}", k * (args.users / args.rounds));
            let subject = format!("orders.{k}");
            let t = Instant::now();
            let p = w
                .propose(
                    &user,
                    ProposalInput {
                        kind: ProposalKind::RoleMember,
                        change: Change::Add,
                        object: "bench-sales".into(),
                        related: user.clone(),
                        reason: None,
                        grant_expires_at: None,
                        expires_at: None,
                    },
                )
                .await?;
            let tc = Instant::now();
            w.confirm(admin, &p.id, None).await?;
            confirms.push(tc.elapsed().as_secs_f64() * 1000.0);
            let d = warden_ops::relay::drain_all(&w, &conns, &rcfg).await?;
            if let Some(e) = d.first_error {
                return Err(anyhow!("push failed: {e}"));
            }
            let creds = w.creds("APP", &user).await?;
            let client = async_nats::ConnectOptions::with_credentials(&creds)?
                .connection_timeout(Duration::from_secs(5))
                .connect(&nats_url)
                .await
                .with_context(|| format!("{user} could not connect"))?;
            let mut sub = client.subscribe(subject.clone()).await?;
            client.publish(subject.clone(), "x".into()).await?;
            client.flush().await?;
            tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .map_err(|_| anyhow!("{user}: publish on {subject} not delivered"))?
                .ok_or_else(|| anyhow!("subscription closed"))?;
            e2e.push(t.elapsed().as_secs_f64() * 1000.0);
            drop(client);
        }
        let min = e2e.iter().copied().fold(f64::INFINITY, f64::min);
        let max = e2e.iter().copied().fold(0.0, f64::max);
        anyhow::Ok(BenchGovernanceReport {
            users: args.users,
            roles: args.roles,
            memberships: u64::from(args.roles) * u64::from(args.members),
            nats_server: version.clone(),
            import_seconds,
            snapshot_seconds,
            reapply_seconds,
            rounds: args.rounds,
            e2e_median_ms: median(&mut e2e),
            e2e_min_ms: min,
            e2e_max_ms: max,
            confirm_median_ms: median(&mut confirms),
        })
    }
    .await;
    server.stop();
    w.close().await;
    let out = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "import of {} users and {} roles ({} memberships): {:.2} s; snapshot {:.2} s; re-apply (no change) {:.2} s\n\
         proposal end to end with {} ({} rounds): median {:.1} ms (min {:.1}, max {:.1}); confirm alone median {:.1} ms",
        out.users,
        out.roles,
        out.memberships,
        out.import_seconds,
        out.snapshot_seconds,
        out.reapply_seconds,
        out.nats_server,
        out.rounds,
        out.e2e_median_ms,
        out.e2e_min_ms,
        out.e2e_max_ms,
        out.confirm_median_ms
    );
    Ok(())
}
