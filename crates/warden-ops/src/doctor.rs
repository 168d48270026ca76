//! `doctor`: whether this installation can do its work, checked piece by piece, each
//! with what to do about it: the database (opens, schema current, initialised), the master
//! key (present, opens a sealed seed), the nats-server (reachable, trusting this operator
//! and its system account, with a full resolver), the outbox (backlog and its oldest row)
//! and the clock (against the nats-server's).
//!
//! Every check runs; one that cannot run because an earlier one failed says so as a
//! warning, so that the failure that matters stands out. The report is data: the surfaces
//! print it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use warden_nats::resolver::{ResolverClient, ResolverError};
use warden_nats::varz::{VARZ_PING_SUBJECT, parse_varz_trust, servers_trust};
use warden_store::{MasterKey, Store};

use crate::{Actor, Result, Scope, Warden, now};

/// What `doctor` checks and against what.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// The data directory (its `master.key`, unless `WARDEN_MASTER_KEY` is set).
    pub data_dir: PathBuf,
    /// The database URL.
    pub database_url: String,
    /// The nats-server(s) to check, as `--nats` takes them (comma-separated).
    pub nats: String,
    /// Bound of the connection and of each request to the nats-server.
    pub timeout: Duration,
    /// A clock further than this from the nats-server's is a warning.
    pub clock_tolerance: Duration,
    /// An outbox row pending longer than this is a warning.
    pub outbox_max_age: Duration,
}

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Works, but look at it (or could not be checked because of an earlier failure).
    Warn,
    /// Broken: Warden cannot do its work until it is fixed.
    Fail,
}

impl CheckStatus {
    /// `ok`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One check: what was found, and what to do about it when it is not ok.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `database`, `master_key`, `nats`, `trust`, `resolver`, `outbox` or `clock`.
    pub name: &'static str,
    /// The verdict.
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// What to do (none when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check, in the order they ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// The checks.
    pub checks: Vec<Check>,
    /// Whether none failed.
    pub ok: bool,
}

impl DoctorReport {
    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: CheckStatus::Ok,
        detail: detail.into(),
        fix: None,
    }
}

fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        status: CheckStatus::Warn,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        status: CheckStatus::Fail,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn not_checked(name: &'static str, because: &str) -> Check {
    warn(
        name,
        format!("not checked: {because}"),
        "fix the failure above first",
    )
}

/// The SQLite file a `sqlite://` URL names (`None` for other databases and in-memory ones).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Runs every check. Opening the database applies pending schema migrations (as every
/// command does); nothing else is changed, and no file is created.
pub async fn doctor(opts: &DoctorOptions, actor: Actor) -> DoctorReport {
    let mut checks = Vec::new();
    let warden = open(opts, actor, &mut checks).await;
    match &warden {
        Some(w) => nats_checks(w, opts, &mut checks).await,
        None => {
            for name in ["nats", "trust", "resolver"] {
                checks.push(not_checked(name, "Warden's database did not open"));
            }
        }
    }
    match &warden {
        Some(w) => checks.push(outbox_check(w, opts).await),
        None => checks.push(not_checked("outbox", "Warden's database did not open")),
    }
    if let Some(w) = warden {
        w.store.close().await;
    }
    let ok = checks.iter().all(|c| c.status != CheckStatus::Fail);
    // The clock check ran with the nats checks; keep it last, as listed.
    checks.sort_by_key(|c| c.name == "clock");
    DoctorReport { checks, ok }
}

/// The database and the master key: `Some` when both work.
async fn open(opts: &DoctorOptions, actor: Actor, checks: &mut Vec<Check>) -> Option<Warden> {
    let url = warden_store::redact_url(&opts.database_url);
    if let Some(file) = sqlite_file(&opts.database_url)
        && !file.exists()
    {
        checks.push(fail(
            "database",
            format!("no Warden database at {url}"),
            "run `warden init`, or point --data-dir / --database-url (data_dir / database_url in warden.toml) at the existing one",
        ));
        checks.push(not_checked("master_key", "there is no database"));
        return None;
    }
    let key = match MasterKey::from_env_or_file(&opts.data_dir, false) {
        Ok(key) => key,
        Err(e) => {
            checks.push(not_checked(
                "database",
                "there is no master key to open it with",
            ));
            checks.push(fail(
                "master_key",
                e.to_string(),
                format!(
                    "restore {} (mode 0600) or set WARDEN_MASTER_KEY to the key this database was created with",
                    opts.data_dir.join("master.key").display()
                ),
            ));
            return None;
        }
    };
    let store = match Store::open(&opts.database_url, key).await {
        Ok(store) => store,
        Err(warden_store::StoreError::WrongMasterKey) => {
            checks.push(ok("database", format!("{url} is reachable")));
            checks.push(fail(
                "master_key",
                "the master key does not open this database's seal check: it is not the key the database was created with",
                "use the key the database was created with (WARDEN_MASTER_KEY or <data dir>/master.key)",
            ));
            return None;
        }
        Err(e) => {
            checks.push(fail(
                "database",
                e.to_string(),
                "check that the database is running and reachable, and the URL (--database-url, WARDEN_DATABASE_URL or database_url in warden.toml)",
            ));
            checks.push(not_checked("master_key", "the database did not open"));
            return None;
        }
    };
    let w = match Warden::open(store, actor).await {
        Ok(w) => w,
        Err(e) => {
            checks.push(fail(
                "database",
                format!("{url}: {e}"),
                "the stored settings are unreadable: restore the database from a backup",
            ));
            checks.push(not_checked("master_key", "the database did not open"));
            return None;
        }
    };
    let op = match w.status().await {
        Ok(s) => s,
        Err(e) => {
            checks.push(fail(
                "database",
                format!("{url}: {e}"),
                "check the database",
            ));
            checks.push(not_checked("master_key", "the database could not be read"));
            return None;
        }
    };
    let Some(operator) = op.operator else {
        checks.push(fail(
            "database",
            format!("{url}: schema current, but no operator"),
            "run `warden init`",
        ));
        checks.push(not_checked("master_key", "the database is not initialised"));
        return None;
    };
    checks.push(ok(
        "database",
        format!(
            "{url} ({}): schema current, operator {} with {} accounts, {} JWT migrations applied",
            op.backend,
            operator.name,
            op.accounts,
            op.migrations.len()
        ),
    ));
    match w.system_user_creds().await {
        Ok(_) => checks.push(ok(
            "master_key",
            "opens the database's seal check and a sealed seed (the system user's)",
        )),
        Err(e) => {
            checks.push(fail(
                "master_key",
                format!("the system user's seed does not open: {e}"),
                "restore the database and its master key from the same backup",
            ));
            return None;
        }
    }
    Some(w)
}

/// The nats-server: reachable, trusting this operator and system account, with a full
/// resolver; and the clock against its own.
async fn nats_checks(w: &Warden, opts: &DoctorOptions, checks: &mut Vec<Check>) {
    let url = opts.nats.as_str();
    let not_reached = |checks: &mut Vec<Check>| {
        for name in ["trust", "resolver", "clock"] {
            checks.push(not_checked(name, "no nats-server answered"));
        }
    };
    let (op_key, signing_key, sys_key) = match trusted_keys(w).await {
        Ok(keys) => keys,
        Err(e) => {
            checks.push(fail(
                "nats",
                format!("cannot read the operator: {e}"),
                "check the database",
            ));
            not_reached(checks);
            return;
        }
    };
    let creds = match w.system_user_creds().await {
        Ok(c) => c,
        Err(e) => {
            checks.push(fail("nats", e.to_string(), "check the database"));
            not_reached(checks);
            return;
        }
    };
    let client = match ResolverClient::connect(url, &creds, opts.timeout).await {
        Ok(c) => c,
        Err(ResolverError::Connect { reason, .. })
            if reason.to_ascii_lowercase().contains("authorization") =>
        {
            checks.push(ok("nats", format!("{url} is reachable")));
            checks.push(fail(
                "trust",
                format!(
                    "nats-server at {url} refused Warden's system user ({reason}): it does not trust this operator {op_key} (or does not take {sys_key} as its system account)"
                ),
                "render its configuration with `warden nats-config` (which names this operator, its system account and a full resolver) and restart it",
            ));
            checks.push(not_checked("resolver", "the nats-server refused Warden"));
            checks.push(not_checked("clock", "the nats-server refused Warden"));
            return;
        }
        Err(e) => {
            let reason = match e {
                ResolverError::Connect { reason, .. } => reason,
                other => other.to_string(),
            };
            checks.push(fail(
                "nats",
                format!("nats-server at {url} is not reachable: {reason}"),
                "start the nats-server, or give its URL (--nats, WARDEN_NATS_URL or nats in warden.toml)",
            ));
            not_reached(checks);
            return;
        }
    };
    let server = client.connected_server();
    checks.push(ok(
        "nats",
        format!(
            "{url}: connected to {} (nats-server {}) as the system user",
            server.name, server.version
        ),
    ));

    // The clock, from the first answer to one varz request: the time between the server
    // writing `now` and reading it here is one round trip.
    let asked = std::time::Instant::now();
    let clock = match client
        .client()
        .request(VARZ_PING_SUBJECT, "{}".into())
        .await
    {
        Ok(msg) => {
            let rtt = asked.elapsed();
            let local = time::OffsetDateTime::now_utc();
            match parse_varz_trust(&msg.payload) {
                Ok(t) => clock_check(&t.name, &t.now, local, rtt, opts.clock_tolerance),
                Err(e) => warn(
                    "clock",
                    format!("not checked: {e}"),
                    "check the nats-server",
                ),
            }
        }
        Err(e) => warn(
            "clock",
            format!("not checked: no answer on {VARZ_PING_SUBJECT}: {e}"),
            "see the trust check",
        ),
    };

    // Trust: every server that hears the system account's varz request.
    match servers_trust(client.client(), opts.timeout, 1).await {
        Ok(servers) if servers.is_empty() => checks.push(fail(
            "trust",
            format!(
                "no server at {url} answered {VARZ_PING_SUBJECT}: the server's system account is not Warden's ({sys_key})"
            ),
            "render its configuration with `warden nats-config` (system_account names Warden's) and restart it",
        )),
        Ok(servers) => {
            let mut problems = Vec::new();
            for s in &servers {
                let who = format!("{} ({})", s.name, s.version);
                if !s.operators.iter().any(|o| o.public_key == op_key) {
                    problems.push(format!("{who} does not trust this operator {op_key}"));
                } else if !s.trusts(&op_key, &signing_key) {
                    problems.push(format!(
                        "{who} trusts this operator but not its signing key {signing_key} (restart it after `warden operator signing-key rotate`)"
                    ));
                }
                if !s.system_account.is_empty() && s.system_account != sys_key {
                    problems.push(format!(
                        "{who} has system account {}, not Warden's {sys_key}",
                        s.system_account
                    ));
                }
            }
            if problems.is_empty() {
                let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
                checks.push(ok(
                    "trust",
                    format!(
                        "{} trust{} operator {op_key} and system account {sys_key}",
                        names.join(", "),
                        if servers.len() == 1 { "s" } else { "" }
                    ),
                ));
            } else {
                checks.push(fail(
                    "trust",
                    problems.join("; "),
                    "render its configuration with `warden nats-config` and restart it",
                ));
            }
        }
        Err(e) => checks.push(fail(
            "trust",
            format!("{url}: {e}"),
            "render its configuration with `warden nats-config` and restart it",
        )),
    }

    // A full resolver answers LIST; a memory or URL resolver does not, and a cache
    // resolver holds only what it was asked for.
    checks.push(match client.list().await {
        Ok(keys) => ok(
            "resolver",
            format!(
                "answers {}: holds {} account JWTs",
                warden_nats::resolver::LIST_SUBJECT,
                keys.len()
            ),
        ),
        Err(e) => fail(
            "resolver",
            format!(
                "{url}: {e}: Warden pushes accounts to a full resolver (`resolver {{ type: full }}`)"
            ),
            "render its configuration with `warden nats-config` (a full resolver) and restart it",
        ),
    });
    checks.push(clock);
}

/// The operator's identity and signing keys and the system account's key.
async fn trusted_keys(w: &Warden) -> Result<(String, String, String)> {
    let op = w
        .store
        .operator()
        .await?
        .ok_or(crate::OpsError::NotInitialised)?;
    Ok((op.public_key, op.signing_key, op.system_account))
}

/// The clock compared with a server's `now` read `rtt` after asking, at `local`.
fn clock_check(
    server: &str,
    server_now: &str,
    local: time::OffsetDateTime,
    rtt: Duration,
    tolerance: Duration,
) -> Check {
    let Ok(theirs) =
        time::OffsetDateTime::parse(server_now, &time::format_description::well_known::Rfc3339)
    else {
        return warn(
            "clock",
            format!("not checked: {server} sent no readable time ({server_now:?})"),
            "check the nats-server",
        );
    };
    // The server wrote its time somewhere within the round trip: half of it is the best guess.
    let skew = (local - time::Duration::try_from(rtt / 2).unwrap_or_default()) - theirs;
    let off = Duration::from_secs_f64(skew.as_seconds_f64().abs());
    let ahead = if skew.is_positive() {
        "ahead of"
    } else {
        "behind"
    };
    let detail = format!(
        "{} ms {ahead} {server} ({} ms round trip)",
        off.as_millis(),
        rtt.as_millis()
    );
    if off > tolerance {
        warn(
            "clock",
            detail,
            format!(
                "more than {} s apart: JWT issue and expiry times are judged by the nats-server's clock; synchronise both with NTP",
                tolerance.as_secs()
            ),
        )
    } else {
        ok("clock", detail)
    }
}

async fn outbox_check(w: &Warden, opts: &DoctorOptions) -> Check {
    match w.outbox_backlog().await {
        Err(e) => fail("outbox", e.to_string(), "check the database"),
        Ok((0, _, _)) => ok("outbox", "empty: every change reached NATS"),
        Ok((pending, oldest, last_error)) => {
            let age = oldest.map(|t| (now() - t).max(0)).unwrap_or_default();
            let detail = format!(
                "{pending} changes pending, the oldest {age} s old{}",
                last_error
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            );
            if age as u64 > opts.outbox_max_age.as_secs() {
                warn(
                    "outbox",
                    detail,
                    "`warden serve` delivers them: check that it runs and reaches the nats-server (or run `warden push`)",
                )
            } else {
                ok("outbox", detail)
            }
        }
    }
}

impl Warden {
    /// The outbox backlog: rows pending, when the oldest was written (unix seconds), and
    /// the last error of the oldest failing row.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<i64>, Option<String>)> {
        self.need(Scope::Read, "reading the outbox")?;
        let state = self.outbox_state().await?;
        let oldest = self
            .store
            .pending_outbox(i64::MAX, 1)
            .await?
            .first()
            .map(|r| r.created_at);
        Ok((state.pending, oldest, state.last_error.map(|(_, e)| e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_within_tolerance_is_ok_beyond_is_a_warning() {
        let local = time::OffsetDateTime::parse(
            "2025-01-01T12:00:10Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let t = Duration::from_secs(3);
        let rtt = Duration::from_millis(2);
        let c = clock_check("n1", "2025-01-01T12:00:09.5Z", local, rtt, t);
        assert_eq!(c.status, CheckStatus::Ok, "{c:?}");
        assert!(c.detail.contains("ahead of n1"), "{}", c.detail);
        let c = clock_check("n1", "2025-01-01T12:00:20.123456789Z", local, rtt, t);
        assert_eq!(c.status, CheckStatus::Warn, "{c:?}");
        assert!(c.detail.contains("behind n1"), "{}", c.detail);
        let c = clock_check("n1", "yesterday", local, rtt, t);
        assert_eq!(c.status, CheckStatus::Warn);
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/warden/warden.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/warden/warden.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }
}
