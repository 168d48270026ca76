//! Crash safety of Warden's bulk work: `warden device add --from FILE --creds-dir DIR` and
//! `warden org apply SPEC` are killed with SIGKILL part way, then the same command is run
//! again, and the result must be exactly the intended set — every device once, with its
//! account and its one user, each creds file naming the stored user key (parsed with
//! nats-jwt); every person once, bound to one user — the outbox must still deliver
//! everything (`warden push --nats URL` to a nats-server started from `warden
//! nats-config`: 0 failed, 0 pending) and `warden audit verify` must pass. On SQLite and on
//! PostgreSQL; nats-server 2.15.1 and 2.9.10 share the four runs (one line each per
//! command) because each push creates thousands of streams or users.
//!
//! The moments of the kills are observed, not timed: "mid-transaction" is when the
//! command's transaction has written a given amount that nothing else writes (SQLite: the
//! bytes the process wrote, `wchar` of `/proc/PID/io`, i.e. WAL pages spilled before the
//! commit; PostgreSQL: the growth of the seed, account, user and ledger tables, which
//! take uncommitted rows too); "while creds files are written" is when the first `<id>.creds` appears.
//!
//! Counts: 10,000 people (the target), but 3,000 devices by default rather than 10,000. Measured in the
//! debug build on the 2-core test machine (shared with other builds): one 10,000-device add
//! takes 60–100 s (~45 s the transaction, ~17 s the files) and a push of their accounts and
//! 10,000 JetStream streams ~65 s; this test runs the transaction twice (the second run is
//! killed only at its first creds file) and pushes once, and at 4,000 devices the two
//! PostgreSQL tests already took 206 s (devices 111 s, people 95 s), over the ~3 minutes per
//! backend this file may take. `WARDEN_CRASH_DEVICES=10000` runs the full count (the SQLite
//! device test alone then took 178 s: 88 s adding, killing and re-running, 66 s pushing; the
//! PostgreSQL one converged too, but its nats-server 2.9.10, which keeps files open per
//! stream, hit "too many open files" at ~9,990 streams, so 9 stream deliveries stayed
//! queued as they should); `WARDEN_CRASH_PEOPLE` sets the number of people.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nats_jwt::{AnyClaims, KeyPair, decode_any, parse_creds};
use serde_json::{Value, json};
use warden_testkit::{NatsServer, NatsServerBinary, PgDatabase, ServerLine};

use common::connect;

/// Devices added per test unless `WARDEN_CRASH_DEVICES` says otherwise (see the module doc).
const DEFAULT_DEVICES: usize = 3_000;
/// People applied per test unless `WARDEN_CRASH_PEOPLE` says otherwise.
const DEFAULT_PEOPLE: usize = 10_000;
/// Units (accounts) the people are spread over.
const UNITS: usize = 10;
/// Longest wait for one command, or for a moment to kill it at (debug build, busy machine).
const RUN_LIMIT: Duration = Duration::from_secs(600);
/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(10);

/// How much a transaction has written when it counts as "soon after it starts writing":
/// 1 MiB through SQLite (its page cache of ~2 MiB spills into the WAL in chunks), 64 KiB of
/// PostgreSQL ledger heap (~150 events). Either is a few hundred devices or people in.
fn soon(backend: Backend) -> u64 {
    match backend {
        Backend::Sqlite => 1 << 20,
        Backend::Postgres => 64 << 10,
    }
}

fn count(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{var}={v:?}: {e}")),
        _ => default,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A data directory and its database (SQLite inside it, or a throwaway PostgreSQL
/// database), and the `warden` binary run against them.
struct Db {
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
    /// Watches the `ledger` heap on PostgreSQL.
    pg_conn: Option<sqlx::PgConnection>,
}

/// What a finished command printed.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// When to kill a command.
enum Moment {
    /// Its transaction has written at least this many bytes (see the module doc).
    Written(u64),
    /// The first `*.creds` file has appeared in this directory.
    FirstCreds(PathBuf),
}

impl Db {
    async fn new(backend: Backend) -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let (pg, pg_conn) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                use sqlx::Connection;
                let pg = PgDatabase::create().await;
                let conn = sqlx::PgConnection::connect(pg.url())
                    .await
                    .expect("connect to the test database");
                (Some(pg), Some(conn))
            }
        };
        let db = Db { dir, pg, pg_conn };
        db.ok(&["init", "--name", "CRASH"]);
        db
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// `warden --data-dir D [--database-url URL] ARGS…`, stdout and stderr to files (so a
    /// killed or long command never blocks on a full pipe).
    fn spawn(&self, args: &[&str], tag: &str) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.arg("--data-dir").arg(self.data_dir());
        if let Some(pg) = &self.pg {
            cmd.args(["--database-url", pg.url()]);
        }
        let out = std::fs::File::create(self.path().join(format!("{tag}.out"))).expect("out");
        let err = std::fs::File::create(self.path().join(format!("{tag}.err"))).expect("err");
        cmd.args(args)
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env_remove("WARDEN_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start warden")
    }

    fn output_of(&self, tag: &str, status: ExitStatus) -> Ran {
        let read = |ext: &str| {
            std::fs::read_to_string(self.path().join(format!("{tag}.{ext}"))).unwrap_or_default()
        };
        Ran {
            status,
            stdout: read("out"),
            stderr: read("err"),
        }
    }

    /// Runs a command to its end (at most [`RUN_LIMIT`]).
    fn run(&self, args: &[&str]) -> Ran {
        let tag = "cmd";
        let mut child = self.spawn(args, tag);
        let status = wait_bounded(&mut child, args);
        self.output_of(tag, status)
    }

    /// Runs and requires success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            r.status.success(),
            "warden {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            r.status,
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs with `--json`, requires success, parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let text = self.ok(&full);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("warden {args:?}: bad JSON ({e})"))
    }

    /// How much the running command `pid` (SQLite) or any transaction (PostgreSQL: the
    /// tables bulk work fills — seeds, accounts, users, ledger — with their TOAST and
    /// indexes, which hold uncommitted rows too; a bulk device add writes one ledger
    /// event per thousand devices, so the ledger alone barely grows) has written.
    async fn written(&mut self, pid: u32) -> u64 {
        match &mut self.pg_conn {
            None => {
                // The process may have just exited: then it counts as nothing more.
                let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
                io.lines()
                    .find_map(|l| l.strip_prefix("wchar:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            }
            Some(conn) => {
                let size: i64 = sqlx::query_scalar(
                    "SELECT (pg_total_relation_size('nkeys') + pg_total_relation_size('accounts') \
                     + pg_total_relation_size('users') + pg_total_relation_size('ledger'))::BIGINT",
                )
                .fetch_one(conn)
                .await
                .expect("table sizes");
                u64::try_from(size).unwrap_or(0)
            }
        }
    }

    /// Starts `args`, waits for `moment` (at most [`RUN_LIMIT`]) and kills the command with
    /// SIGKILL. Panics if the command ends first: the moment was never seen.
    async fn kill_at(&mut self, args: &[&str], moment: Moment, what: &str) {
        let base = match self.pg_conn {
            Some(_) => self.written(0).await,
            None => 0,
        };
        let tag = "killed";
        let mut child = self.spawn(args, tag);
        let pid = child.id();
        let started = Instant::now();
        loop {
            let reached = match &moment {
                Moment::Written(bytes) => self.written(pid).await.saturating_sub(base) >= *bytes,
                Moment::FirstCreds(dir) => !creds_files(dir).is_empty(),
            };
            if reached {
                break;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                let r = self.output_of(tag, status);
                panic!(
                    "{what}: warden {args:?} ended ({status}) before the moment to kill it\nstdout: {}\nstderr: {}",
                    r.stdout, r.stderr
                );
            }
            assert!(
                started.elapsed() < RUN_LIMIT,
                "{what}: moment not reached within {RUN_LIMIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait for the killed command");
        assert_eq!(
            status.signal(),
            Some(9),
            "{what}: warden {args:?} ended by itself ({status}) instead of being killed"
        );
        eprintln!("{what}: killed after {:?}", started.elapsed());
    }

    /// The store, opened as the CLI opens it (same database, same master key).
    async fn store(&self) -> warden_store::Store {
        let dir = self.data_dir();
        let url = match &self.pg {
            Some(pg) => pg.url().to_string(),
            None => format!("sqlite://{}/warden.db", dir.display()),
        };
        let key = warden_store::MasterKey::from_env_or_file(&dir, false).expect("master key");
        warden_store::Store::open(&url, key)
            .await
            .expect("open store")
    }

    /// Starts a nats-server from `warden nats-config` (full resolver, JetStream on, a free
    /// loopback port). Rendered before the bulk work, so every account the work adds can
    /// reach the server only through the outbox.
    fn start_nats(&self, line: ServerLine) -> NatsServer {
        let bin = NatsServerBinary::get(line);
        let listen = format!("127.0.0.1:{}", warden_testkit::free_port());
        let conf = self.path().join("nats.conf");
        let resolver = self.path().join("resolver");
        let js = self.path().join("js");
        self.ok(&[
            "nats-config",
            "--listen",
            &listen,
            "--resolver-dir",
            resolver.to_str().expect("utf-8 path"),
            "--jetstream",
            js.to_str().expect("utf-8 path"),
            "-o",
            conf.to_str().expect("utf-8 path"),
        ]);
        let config = std::fs::read_to_string(&conf).expect("rendered config");
        let dir = self.path().join("nats-server");
        std::fs::create_dir_all(&dir).expect("server dir");
        NatsServer::start(&bin, &dir, &config)
            .unwrap_or_else(|e| panic!("nats-server {} refused Warden's config: {e}", bin.version))
    }

    /// `warden push --nats URL`: everything delivered, nothing failed, nothing pending.
    fn push_all(&self, url: &str, what: &str) -> Value {
        let r = self.run(&["--json", "push", "--nats", url]);
        assert!(
            r.status.success(),
            "{what}: push failed ({}):\nstdout: {}\nstderr: {}",
            r.status,
            r.stdout,
            r.stderr
        );
        let report: Value = serde_json::from_str(&r.stdout).expect("push report");
        assert_eq!(report["failed"], 0, "{what}: {report}");
        let status = self.json(&["status"]);
        assert_eq!(status["outbox_pending"], 0, "{what}: {status}");
        report
    }

    /// `warden audit verify` passes and counts `events`.
    fn audit_verifies(&self, what: &str) {
        let r = self.run(&["--json", "audit", "verify"]);
        assert!(
            r.status.success(),
            "{what}: audit verify failed ({}):\nstdout: {}\nstderr: {}",
            r.status,
            r.stdout,
            r.stderr
        );
        let v: Value = serde_json::from_str(&r.stdout).expect("verify report");
        assert!(v["first_break"].is_null(), "{what}: {v}");
    }

    /// Every ledger event's action, counted.
    fn ledger_actions(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for line in self
            .ok(&["--json", "audit", "list", "--limit", "10000000"])
            .lines()
        {
            let e: Value = serde_json::from_str(line).expect("ledger line");
            let action = e["action"].as_str().expect("action").to_string();
            *counts.entry(action).or_insert(0) += 1;
        }
        counts
    }
}

/// Waits for a child, at most [`RUN_LIMIT`] (then kills it and fails).
fn wait_bounded(child: &mut Child, args: &[&str]) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("warden {args:?} still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// The `<id>.creds` files of a creds directory, by id.
fn creds_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let id = name.strip_suffix(".creds")?;
            (!id.starts_with('.')).then(|| (id.to_string(), e.path()))
        })
        .collect()
}

/// Anything else in a creds directory: names of files that are not `<id>.creds`.
fn other_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("creds dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with(".creds") || n.starts_with('.'))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

async fn bulk_device_add_survives_kills(backend: Backend, line: ServerLine) {
    let n = count("WARDEN_CRASH_DEVICES", DEFAULT_DEVICES);
    let what = format!("device add ({backend:?}, {n} devices)");
    let mut db = Db::new(backend).await;
    let server = db.start_nats(line);
    let ids: Vec<String> = (0..n).map(|i| format!("dev-{i:05}")).collect();
    let file = db.path().join("devices.csv");
    std::fs::write(
        &file,
        format!("id,site\n{}\n", {
            let rows: Vec<String> = ids.iter().map(|id| format!("{id},plant-7")).collect();
            rows.join("\n")
        }),
    )
    .expect("device file");
    let creds = db.path().join("creds");
    let args = [
        "device",
        "add",
        "--from",
        file.to_str().expect("utf-8 path"),
        "--creds-dir",
        creds.to_str().expect("utf-8 path"),
    ];
    let t0 = Instant::now();

    // 1. Killed inside the transaction, a few hundred devices in: nothing of it may be
    //    visible afterwards.
    db.kill_at(
        &args,
        Moment::Written(soon(backend)),
        &format!("{what}, mid-transaction"),
    )
    .await;
    let listed = db.json(&["device", "list"]);
    assert_eq!(
        listed,
        json!([]),
        "{what}: a killed transaction left devices"
    );
    assert!(
        creds_files(&creds).is_empty(),
        "{what}: creds files of uncommitted devices"
    );
    db.audit_verifies(&format!("{what}, after the mid-transaction kill"));

    // 2. Killed once the transaction committed and creds files started to appear: every
    //    device is there, only some files are.
    db.kill_at(
        &args,
        Moment::FirstCreds(creds.clone()),
        &format!("{what}, writing creds files"),
    )
    .await;
    let written = creds_files(&creds).len();
    assert!(
        written < n,
        "{what}: all {n} files were written before the kill"
    );
    assert_eq!(
        db.json(&["device", "list"]).as_array().expect("list").len(),
        n,
        "{what}: the committed devices"
    );
    eprintln!("{what}: {written} creds files written before the kill");

    // 3. The same command again: nothing added, the missing files written.
    let out = db.json(&args);
    assert_eq!(out["added"], json!([]), "{what}: a re-run added devices");
    assert_eq!(
        out["skipped"].as_array().expect("skipped").len(),
        n,
        "{what}"
    );
    // And once more: it changes nothing at all.
    let status = db.json(&["status"]);
    let again = db.json(&args);
    assert_eq!(again["added"], json!([]));
    assert_eq!(
        db.json(&["status"]),
        status,
        "{what}: a third run changed the store"
    );
    eprintln!("{what}: add, kills and re-runs took {:?}", t0.elapsed());

    check_fleet(&db, &ids, &creds, &what).await;

    // The outbox still delivers everything, and the devices' creds work on the server.
    let t1 = Instant::now();
    let report = db.push_all(&server.url(), &what);
    eprintln!("{what}: push {report} took {:?}", t1.elapsed());
    assert!(
        report["accounts_pushed"].as_u64().expect("accounts_pushed") > n as u64,
        "{what}: {report}"
    );
    assert_eq!(report["streams_created"], n, "{what}: {report}");
    let files = creds_files(&creds);
    for id in [&ids[0], &ids[n / 2], &ids[n - 1]] {
        let text = std::fs::read_to_string(&files[id.as_str()]).expect("creds file");
        connect(&server.url(), &text)
            .await
            .unwrap_or_else(|e| panic!("{what}: device {id} refused by {}: {e}", server.version()));
    }
    db.audit_verifies(&what);
    // The bulk add records `device.add_batch` events that list every device once.
    let mut logged: Vec<String> = Vec::new();
    for line in db
        .ok(&["--json", "audit", "list", "--limit", "10000000"])
        .lines()
    {
        let e: Value = serde_json::from_str(line).expect("ledger line");
        if e["action"] == "device.add_batch" {
            let devices = e["summary"]["devices"].as_array().expect("devices");
            logged.extend(
                devices
                    .iter()
                    .map(|d| d["id"].as_str().expect("id").to_string()),
            );
        }
    }
    logged.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(
        logged, want,
        "{what}: the batch events list every device once"
    );
}

/// Exactly the intended fleet: every id once, its account and one user, its creds file
/// holding that user (JWT subject and seed) issued by that account.
async fn check_fleet(db: &Db, ids: &[String], creds: &Path, what: &str) {
    let listed = db.json(&["device", "list"]);
    let listed = listed.as_array().expect("device list");
    let got: Vec<&str> = listed
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    let want: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        got, want,
        "{what}: the devices are not exactly the file's ids"
    );

    let store = db.store().await;
    let files = creds_files(creds);
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        want,
        "{what}: the creds files are not exactly one per device"
    );
    // A kill while a file was being written leaves that file's hidden temporary
    // (`.<id>.creds.XXXX.tmp`), never a half-written `<id>.creds`; the re-run sweeps it.
    let others = other_files(creds);
    assert!(
        others.is_empty(),
        "{what}: unexpected files in the creds directory: {others:?}"
    );

    let mut user_keys = BTreeSet::new();
    let mut account_keys = BTreeSet::new();
    for d in listed {
        let id = d["id"].as_str().expect("id");
        let account_key = d["account_key"].as_str().expect("account_key");
        let user_key = d["user_key"].as_str().expect("user_key");
        assert!(
            user_keys.insert(user_key.to_string()),
            "{what}: {id}: shared user key"
        );
        assert!(
            account_keys.insert(account_key.to_string()),
            "{what}: {id}: shared account key"
        );
        let acc = store
            .account(account_key)
            .await
            .expect("account")
            .unwrap_or_else(|| panic!("{what}: device {id} has no account"));
        assert_eq!(acc.name, format!("EMDEV-{id}"), "{what}");
        let claims = decode_any(&acc.jwt).expect("account JWT");
        assert_eq!(claims.subject(), account_key, "{what}: {id}");
        let users = store.users(account_key).await.expect("users");
        assert_eq!(
            users.len(),
            1,
            "{what}: device {id} has {} users",
            users.len()
        );
        assert_eq!(users[0].public_key, user_key, "{what}: {id}");
        assert!(users[0].revoked_at.is_none(), "{what}: {id}");

        let path = &files[id];
        let mode = std::fs::metadata(path)
            .expect("creds file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{what}: {id}.creds mode {mode:o}");
        let text = std::fs::read_to_string(path).expect("creds file");
        let parsed = parse_creds(&text).unwrap_or_else(|e| panic!("{what}: {id}.creds: {e}"));
        let AnyClaims::User(user) = decode_any(&parsed.jwt).expect("creds JWT") else {
            panic!("{what}: {id}.creds holds no user JWT");
        };
        assert_eq!(
            user.sub, user_key,
            "{what}: {id}.creds is not the stored user"
        );
        assert_eq!(
            user.iss, account_key,
            "{what}: {id}.creds not issued by its account"
        );
        let seed = parsed.seed.expect("creds seed");
        let kp = KeyPair::from_seed(seed.expose()).expect("creds seed");
        assert_eq!(
            kp.public_key().to_string(),
            user_key,
            "{what}: {id}.creds seed is not the user's"
        );
    }

    // No device account without its device (the names are unique, so count them).
    let op = db.json(&["status"])["operator"]["public_key"]
        .as_str()
        .expect("operator key")
        .to_string();
    let device_accounts = store
        .accounts(&op)
        .await
        .expect("accounts")
        .into_iter()
        .filter(|a| a.name.starts_with("EMDEV-"))
        .count();
    assert_eq!(device_accounts, ids.len(), "{what}: device accounts");
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_device_add_killed_mid_transaction_and_mid_files_converges_on_sqlite() {
    bulk_device_add_survives_kills(Backend::Sqlite, ServerLine::V2_15).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_device_add_killed_mid_transaction_and_mid_files_converges_on_postgresql() {
    bulk_device_add_survives_kills(Backend::Postgres, ServerLine::V2_9).await;
}

// ---------------------------------------------------------------------------------------
// Organisations
// ---------------------------------------------------------------------------------------

/// A spec of `people` Service people spread over [`UNITS`] units, each with its own domain.
fn org_spec(people: usize) -> Value {
    let units: Vec<Value> = (0..UNITS)
        .map(|u| json!({"id": format!("unit-{u}"), "name": format!("Unit {u}"), "type": "service"}))
        .collect();
    let people: Vec<Value> = (0..people)
        .map(|i| {
            json!({
                "id": format!("person-{i:05}"),
                "name": format!("person-{i:05}"),
                "email": format!("person-{i:05}@crash.example"),
                "roles": ["Service"],
                "units": [format!("unit-{}", i % UNITS)],
                "domain": format!("d{i:05}"),
            })
        })
        .collect();
    json!({"organization": {"name": "crashco"}, "units": units, "people": people})
}

async fn org_apply_survives_kills(backend: Backend, line: ServerLine) {
    let p = count("WARDEN_CRASH_PEOPLE", DEFAULT_PEOPLE);
    let what = format!("org apply ({backend:?}, {p} people)");
    let mut db = Db::new(backend).await;
    let server = db.start_nats(line);
    let file = db.path().join("org.json");
    std::fs::write(&file, org_spec(p).to_string()).expect("spec file");
    let args = ["org", "apply", file.to_str().expect("utf-8 path")];
    let before = db.json(&["status"]);
    let ledger_before = db.ledger_actions();
    let t0 = Instant::now();

    // Killed twice inside its one transaction: soon after it starts writing (a few hundred
    // people in, see [`soon`]), and about half way (an apply of 10,000 people writes ~40 MB
    // through SQLite's WAL and ~5 MB of ledger heap on PostgreSQL; the bounds below are
    // about half of that). Nothing of either may be visible.
    let late = match backend {
        Backend::Sqlite => 2_000 * p as u64,
        Backend::Postgres => 250 * p as u64,
    };
    let moments = [
        (
            Moment::Written(soon(backend)),
            "soon after it starts writing",
        ),
        (Moment::Written(late), "about half way"),
    ];
    for (moment, when) in moments {
        db.kill_at(&args, moment, &format!("{what}, killed {when}"))
            .await;
        let show = db.json(&["org", "show"]);
        assert!(
            show["organization"].is_null() && show["people"] == json!([]),
            "{what}: a killed apply ({when}) left an organisation: {}",
            show["organization"]
        );
        assert_eq!(db.json(&["status"]), before, "{what}: killed {when}");
        db.audit_verifies(&format!("{what}, killed {when}"));
    }

    // The same command again applies everything, once.
    let plan = db.json(&args);
    assert_eq!(plan["applied"], true, "{what}");
    let steps = plan["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), UNITS + p, "{what}: steps");
    assert!(steps.iter().all(|s| s["action"] == "create"), "{what}");
    // And once more: nothing left to do.
    let status = db.json(&["status"]);
    let again = db.json(&args);
    assert_eq!(again["steps"], json!([]), "{what}: a re-run still plans");
    assert_eq!(again["applied"], false, "{what}");
    assert_eq!(
        db.json(&["status"]),
        status,
        "{what}: a re-run changed the store"
    );
    eprintln!("{what}: kills and re-runs took {:?}", t0.elapsed());
    let count_of = |v: &Value, k: &str| v[k].as_u64().expect("count");
    assert_eq!(
        count_of(&status, "accounts") - count_of(&before, "accounts"),
        UNITS as u64,
        "{what}"
    );
    assert_eq!(
        count_of(&status, "users") - count_of(&before, "users"),
        p as u64,
        "{what}"
    );

    check_org(&db, p, &what).await;

    let t1 = Instant::now();
    let report = db.push_all(&server.url(), &what);
    eprintln!("{what}: push {report} took {:?}", t1.elapsed());
    assert!(
        report["accounts_pushed"].as_u64().expect("accounts_pushed") >= UNITS as u64,
        "{what}: {report}"
    );
    for i in [0, p / 2, p - 1] {
        let unit = format!("UNIT_{}", i % UNITS);
        let user = format!("person_{i:05}");
        let text = db.ok(&["creds", &unit, &user]);
        connect(&server.url(), &text)
            .await
            .unwrap_or_else(|e| panic!("{what}: {user} refused by {}: {e}", server.version()));
    }
    db.audit_verifies(&what);
    // The ledger holds the apply once: an event per account it created, and the users in
    // `org.users.create` batch events that name each user once.
    let actions = db.ledger_actions();
    let added =
        |a: &str| actions.get(a).copied().unwrap_or(0) - ledger_before.get(a).copied().unwrap_or(0);
    assert_eq!(added("org.apply"), 1, "{what}: {actions:?}");
    assert_eq!(added("account.create"), UNITS, "{what}: {actions:?}");
    assert_eq!(added("user.create"), 0, "{what}: {actions:?}");
    let mut logged: Vec<String> = Vec::new();
    for line in db
        .ok(&["--json", "audit", "list", "--limit", "10000000"])
        .lines()
    {
        let e: Value = serde_json::from_str(line).expect("ledger line");
        if e["action"] == "org.users.create" {
            let users = e["summary"]["users"].as_array().expect("users");
            logged.extend(
                users
                    .iter()
                    .map(|u| u["name"].as_str().expect("name").to_string()),
            );
        }
    }
    logged.sort();
    let mut want: Vec<String> = (0..p).map(|i| format!("person_{i:05}")).collect();
    want.sort();
    assert_eq!(
        logged, want,
        "{what}: the batch events name every user once"
    );
}

/// Exactly the intended organisation: every person once, active, bound to its own user
/// in its unit's account, and each unit's account holding exactly its people.
async fn check_org(db: &Db, p: usize, what: &str) {
    let show = db.json(&["org", "show"]);
    let people = show["people"].as_array().expect("people");
    assert_eq!(people.len(), p, "{what}: people shown");
    let mut keys = BTreeSet::new();
    for (i, person) in people.iter().enumerate() {
        let id = format!("person-{i:05}");
        assert_eq!(person["id"], id.as_str(), "{what}");
        assert_eq!(person["status"], "active", "{what}: {id}");
        assert_eq!(
            person["account"],
            format!("UNIT_{}", i % UNITS),
            "{what}: {id}"
        );
        assert_eq!(person["user"], format!("person_{i:05}"), "{what}: {id}");
        let key = person["public_key"].as_str().expect("public key");
        assert!(keys.insert(key.to_string()), "{what}: {id} shares a user");
    }
    let units = show["units"].as_array().expect("units");
    assert_eq!(units.len(), UNITS, "{what}");
    let store = db.store().await;
    for u in units {
        let key = u["public_key"].as_str().expect("unit account");
        let users = store.users(key).await.expect("users");
        let want = (0..p)
            .filter(|i| format!("unit-{}", i % UNITS) == u["id"].as_str().expect("unit id"))
            .count();
        assert_eq!(users.len(), want, "{what}: users of {}", u["account"]);
        assert!(
            users
                .iter()
                .all(|r| keys.contains(&r.public_key) && r.revoked_at.is_none()),
            "{what}: {} holds a user no person is bound to",
            u["account"]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn org_apply_killed_mid_transaction_converges_on_sqlite() {
    org_apply_survives_kills(Backend::Sqlite, ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn org_apply_killed_mid_transaction_converges_on_postgresql() {
    org_apply_survives_kills(Backend::Postgres, ServerLine::V2_15).await;
}
