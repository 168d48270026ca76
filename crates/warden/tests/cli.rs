//! The command line without a server: bootstrap, idempotence, validation at the
//! edge (exit code 2, nothing changed), secrets on disk, describe, and the same
//! flows on PostgreSQL.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Home;
use serde_json::Value;

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn init_bootstraps_the_lifecycle_of_seed_000() {
    let home = Home::new();
    let report = home.json(&["init", "--name", "TIMETERM"]);
    assert_eq!(report["created"], true);
    assert_eq!(
        report["migrations_applied"],
        serde_json::json!(["0001_backend"])
    );

    let op = home.json(&["operator", "show"]);
    assert!(op["public_key"].as_str().unwrap().starts_with('O'));
    assert!(op["signing_key"].as_str().unwrap().starts_with('O'));
    assert_ne!(op["signing_key"], op["public_key"]);
    let accounts = home.json(&["account", "list"]);
    assert_eq!(names(&accounts), ["BACKEND", "SYS", "TIMETERM"]);
    let sys = home.json(&["account", "show", "SYS"]);
    assert_eq!(sys["public_key"], op["system_account"]);
    assert_eq!(sys["system"], true);
    assert_eq!(names(&home.json(&["user", "list", "-a", "SYS"])), ["sys"]);
    assert_eq!(
        names(&home.json(&["user", "list", "-a", "TIMETERM"])),
        ["timeterm"]
    );
    assert_eq!(
        names(&home.json(&["user", "list", "-a", "BACKEND"])),
        ["backend", "superuser", "warden"]
    );
    // The service user is confined to its own request prefix.
    let svc = home.json(&["user", "show", "warden", "-a", "BACKEND"]);
    assert_eq!(svc["spec"]["permissions"]["sub"]["allow"][0], "WARDEN.>");

    // Accounts are issued by the operator's signing key, named in the operator JWT.
    let described = home.json(&["describe", sys["jwt"].as_str().unwrap()]);
    assert_eq!(described["kind"], "account");
    assert_eq!(described["issuer"], op["signing_key"]);
    let described_op = home.json(&["describe", op["jwt"].as_str().unwrap()]);
    assert_eq!(
        described_op["claims"]["nats"]["system_account"],
        op["system_account"]
    );

    // Running init again changes nothing.
    let before = (home.json(&["status"]), home.json(&["account", "list"]));
    let again = home.json(&["init", "--name", "TIMETERM"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["migrations_applied"], serde_json::json!([]));
    let after = (home.json(&["status"]), home.json(&["account", "list"]));
    assert_eq!(before, after);

    // Another operator name is refused: one operator per database.
    home.fails(1, &["init", "--name", "OTHER"]);
}

#[test]
fn naming_policy_is_enforced_and_configurable() {
    let home = Home::new();
    let err = home.fails(2, &["init", "--name", "my-op"]);
    assert!(err.contains("SCREAMING_SNAKE_CASE"), "{err}");
    assert!(err.contains("MY_OP"), "{err}");
    assert!(
        !home.data_dir().exists(),
        "a refused init left files behind"
    );

    let relaxed = Home::new();
    relaxed.ok(&[
        "init",
        "--name",
        "TIMETERM",
        "--account-case",
        "screaming-kebab",
        "--user-case",
        "kebab",
        "--service-prefix",
        "NATS-MANAGER",
    ]);
    relaxed.ok(&["account", "add", "EMDEV-1"]);
    relaxed.ok(&["user", "add", "nats-manager", "-a", "EMDEV-1"]);
    let err = relaxed.fails(2, &["account", "add", "EMDEV_2"]);
    assert!(err.contains("SCREAMING-KEBAB-CASE"), "{err}");
}

#[test]
fn bad_input_is_a_usage_error_and_changes_nothing() {
    let home = Home::new();
    home.ok(&["init"]);
    home.ok(&["account", "add", "APP"]);
    let before = home.json(&["status"]);
    let cases: &[&[&str]] = &[
        &["account", "add", "app"],
        &["account", "add", "A/B"],
        &["account", "add", "BAD", "--conns", "lots"],
        &["account", "add", "BAD", "--conns", "-5"],
        &["user", "add", "u", "-a", "APP", "--allow-pub", "a..b"],
        &["user", "add", "u", "-a", "APP", "--allow-sub", "a.>.b"],
        &["user", "add", "u", "-a", "APP", "--allow-pub", "q queue"],
        &[
            "user",
            "add",
            "u",
            "-a",
            "APP",
            "--source-network",
            "10.0.0.0/33",
        ],
        &[
            "user",
            "add",
            "u",
            "-a",
            "APP",
            "--conn-type",
            "CARRIER_PIGEON",
        ],
        &["user", "add", "u", "-a", "APP", "--expiry", "2001-01-01"],
        &["user", "add", "u", "-a", "APP", "--expiry", "someday"],
        &["user", "add", "U", "-a", "APP"],
        &["user", "edit", "nobody", "-a", "APP"],
        &["account", "edit", "APP"],
        &["no-such-command"],
    ];
    for args in cases {
        let err = home.fails(2, args);
        assert!(err.lines().count() >= 1, "{args:?}: {err}");
    }
    // Failures that are not usage errors exit 1.
    home.fails(1, &["user", "add", "u", "-a", "NOPE"]);
    home.fails(1, &["account", "add", "APP"]);
    home.fails(2, &["account", "delete", "SYS"]);
    assert_eq!(
        before,
        home.json(&["status"]),
        "a refused command changed the database"
    );
}

#[test]
fn secrets_on_disk_are_sealed_or_0600() {
    let home = Home::new();
    home.ok(&["init"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "alice", "-a", "APP"]);
    let creds_path = home.path().join("alice.creds");
    home.ok(&["creds", "APP", "alice", "-o", creds_path.to_str().unwrap()]);
    let mode = std::fs::metadata(&creds_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "creds file mode");
    let key_mode = std::fs::metadata(home.data_dir().join("master.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600, "master key mode");

    let creds = std::fs::read_to_string(&creds_path).unwrap();
    let seed = creds
        .lines()
        .find(|l| l.starts_with("SU"))
        .expect("seed line")
        .to_string();
    // No seed anywhere in the database files, in plain text.
    for entry in std::fs::read_dir(home.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("warden.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&seed),
                "seed in plain text in {}",
                path.display()
            );
            assert!(!text.contains("SUA") || !text.contains(&seed[..20]));
        }
    }

    // describe checks the creds and never prints the seed.
    let out = home.ok(&["--json", "describe", creds_path.to_str().unwrap()]);
    assert!(!out.contains(&seed), "describe printed the seed");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "user");
    assert_eq!(v["seed_matches_subject"], true);
    assert_eq!(v["signature"], "valid");
}

#[test]
fn describe_refuses_a_tampered_token() {
    let home = Home::new();
    home.ok(&["init"]);
    let op = home.json(&["operator", "show"]);
    let jwt = op["jwt"].as_str().unwrap();
    let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
    let mut sig = parts[2].clone().into_bytes();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    parts[2] = String::from_utf8(sig).unwrap();
    let err = home.fails(1, &["describe", &parts.join(".")]);
    assert!(err.to_lowercase().contains("signature"), "{err}");
    home.fails(1, &["describe", "not-a-jwt"]);
}

#[test]
fn edits_reach_the_jwt() {
    let home = Home::new();
    home.ok(&["init"]);
    home.ok(&[
        "account",
        "add",
        "APP",
        "--js-disk-storage",
        "1G",
        "--js-mem-storage",
        "-1",
    ]);
    home.ok(&["account", "edit", "APP", "--conns", "5", "--payload", "1K"]);
    let acc = home.json(&["account", "show", "APP"]);
    let claims = home.json(&["describe", acc["jwt"].as_str().unwrap()]);
    let limits = &claims["claims"]["nats"]["limits"];
    assert_eq!(limits["conn"], 5);
    assert_eq!(limits["payload"], 1024);
    assert_eq!(limits["disk_storage"], 1 << 30);
    assert_eq!(limits["mem_storage"], -1);
    assert_eq!(limits["subs"], -1);

    home.ok(&[
        "user",
        "add",
        "svc",
        "-a",
        "APP",
        "--allow-sub",
        "svc.>",
        "--allow-pub-response=3",
        "--response-ttl",
        "2s",
        "--source-network",
        "127.0.0.1",
        "--conn-type",
        "standard,websocket",
        "--expiry",
        "30d",
        "--bearer",
        "--tag",
        "Edge,billing",
    ]);
    let user = home.json(&["user", "show", "svc", "-a", "APP"]);
    let c = home.json(&["describe", user["jwt"].as_str().unwrap()]);
    let nats = &c["claims"]["nats"];
    assert_eq!(nats["sub"]["allow"], serde_json::json!(["svc.>"]));
    assert_eq!(nats["resp"]["max"], 3);
    assert_eq!(nats["resp"]["ttl"], 2_000_000_000i64);
    assert_eq!(nats["src"], serde_json::json!(["127.0.0.1/32"]));
    assert_eq!(
        nats["allowed_connection_types"],
        serde_json::json!(["STANDARD", "WEBSOCKET"])
    );
    assert_eq!(nats["bearer_token"], true);
    assert_eq!(nats["tags"], serde_json::json!(["edge", "billing"]));
    assert!(c["claims"]["exp"].as_i64().unwrap() > 0);

    home.ok(&[
        "user",
        "edit",
        "svc",
        "-a",
        "APP",
        "--rm",
        "svc.>",
        "--rm-response-perms",
        "--bearer=false",
        "--expiry",
        "0",
        "--rm-tag",
        "EDGE",
        "--tag",
        "eu",
    ]);
    let user = home.json(&["user", "show", "svc", "-a", "APP"]);
    let c = home.json(&["describe", user["jwt"].as_str().unwrap()]);
    assert_eq!(
        c["claims"]["nats"]["tags"],
        serde_json::json!(["billing", "eu"])
    );
    assert_eq!(c["claims"]["nats"]["sub"], serde_json::json!({}));
    assert!(c["claims"]["nats"].get("resp").is_none());
    assert!(c["claims"].get("exp").is_none());

    // Revocation lands in the account JWT; deleting removes the user.
    home.ok(&["user", "revoke", "svc", "-a", "APP"]);
    let acc = home.json(&["account", "show", "APP"]);
    let claims = home.json(&["describe", acc["jwt"].as_str().unwrap()]);
    assert!(claims["claims"]["nats"]["revocations"][user["public_key"].as_str().unwrap()].is_i64());
    home.fails(1, &["user", "edit", "svc", "-a", "APP", "--allow-pub", "x"]);
    home.ok(&["user", "delete", "svc", "-a", "APP"]);
    home.fails(1, &["user", "show", "svc", "-a", "APP"]);
    home.ok(&["account", "delete", "APP"]);
    home.fails(1, &["account", "show", "APP"]);
}

#[test]
fn unreachable_database_is_one_line_without_the_password() {
    let home = Home::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["--data-dir", home.data_dir().to_str().unwrap()])
        .args([
            "--database-url",
            "postgres://warden:s3cret@127.0.0.1:1/warden",
            "status",
        ])
        .env("WARDEN_MASTER_KEY", "00".repeat(32))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn uninitialised_data_dir_says_how_to_start() {
    let home = Home::new();
    let err = home.fails(1, &["status"]);
    assert!(err.contains("warden init"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_flows_run_on_postgresql() {
    let db = warden_testkit::PgDatabase::create().await;
    let home = Home::new();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args([
                "--json",
                "--data-dir",
                home.data_dir().to_str().unwrap(),
                "--database-url",
                db.url(),
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    let report = run(&["init", "--name", "PGOP"]);
    assert_eq!(report["created"], true);
    run(&["account", "add", "APP"]);
    run(&["user", "add", "alice", "-a", "APP", "--allow-pub", "a.>"]);
    let again = run(&["init", "--name", "PGOP"]);
    assert_eq!(again["created"], false);
    let status = run(&["status"]);
    assert_eq!(status["backend"], "postgres");
    assert_eq!(status["accounts"], 4);
    let user = run(&["user", "show", "alice", "-a", "APP"]);
    assert!(user["public_key"].as_str().unwrap().starts_with('U'));
    assert!(user["jwt"].as_str().unwrap().starts_with("eyJ"));
}

#[test]
fn the_timeterm_example_migrations_apply_once() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/timeterm-migrations.json"
    );
    let home = Home::new();
    let report = home.json(&[
        "init",
        "--name",
        "TIMETERM",
        "--user-case",
        "kebab",
        "--service-prefix",
        "NATS-MANAGER",
        "--migrations",
        file,
    ]);
    assert_eq!(
        report["migrations_applied"],
        serde_json::json!(["0001_backend", "0002_emdevs"])
    );
    assert_eq!(
        names(&home.json(&["account", "list"])),
        ["BACKEND", "EMDEVS", "SYS", "TIMETERM"]
    );
    assert_eq!(
        names(&home.json(&["user", "list", "-a", "BACKEND"])),
        ["backend", "nats-manager", "superuser"]
    );
    // Numbers a spec file leaves out mean unlimited, as in nsc.
    let backend = home.json(&["user", "show", "backend", "-a", "BACKEND"]);
    let claims = home.json(&["describe", backend["jwt"].as_str().unwrap()]);
    assert_eq!(claims["claims"]["nats"]["subs"], -1);
    assert_eq!(
        claims["claims"]["nats"]["pub"]["allow"],
        serde_json::json!(["NATS-MANAGER.>"])
    );
    let emdevs = home.json(&["account", "show", "EMDEVS"]);
    assert_eq!(emdevs["spec"]["limits"]["jetstream"]["disk_storage"], -1);

    // Applying the same file again (as `migrate`) changes nothing.
    let before = home.json(&["status"]);
    let again = home.json(&["migrate", "--file", file]);
    assert_eq!(again["applied"], serde_json::json!([]));
    assert_eq!(before, home.json(&["status"]));

    // A broken migration file is refused whole.
    let bad = home.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"id":"0003_x","description":"","steps":[{"kind":"account","name":"lower"}]}]"#,
    )
    .unwrap();
    let err = home.fails(2, &["migrate", "--file", bad.to_str().unwrap()]);
    assert!(err.contains("0003_x"), "{err}");
    assert_eq!(before, home.json(&["status"]));
}

/// Runs `warden ARGS…` with its stdout a pipe whose reader is gone before anything is
/// written (as with `warden … | head -1` once `head` has its line); the exit status.
fn with_closed_stdout(home: &Home, args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(home.data_dir())
        .args(args)
        .env_remove("WARDEN_DATABASE_URL")
        .env_remove("WARDEN_MASTER_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start warden");
    drop(child.stdout.take());
    child.wait_with_output().expect("warden ends")
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "SHOP"]);
    for u in ["a", "b", "c"] {
        home.ok(&["user", "add", u, "-a", "SHOP", "--allow-pub", "shop.>"]);
    }
    for args in [
        &["user", "list", "-a", "SHOP"][..],
        &["--json", "user", "list", "-a", "SHOP"],
        &["account", "list"],
        &["user", "show", "a", "-a", "SHOP"],
        &["status"],
    ] {
        let out = with_closed_stdout(&home, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "warden {args:?} with a closed stdout: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn human_output_is_one_table_style_with_rfc3339_times() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "SHOP"]);
    home.ok(&[
        "user",
        "add",
        "a",
        "-a",
        "SHOP",
        "--allow-pub",
        "shop.>",
        "--expiry",
        "2099-01-31",
    ]);
    let list = home.ok(&["user", "list", "-a", "SHOP"]);
    // UTF8_FULL_CONDENSED draws with box characters.
    assert!(list.starts_with('┌'), "{list}");
    assert!(list.contains("2099-01-31T00:00:00Z"), "{list}");
    let accounts = home.ok(&["account", "list"]);
    assert!(accounts.starts_with('┌'), "{accounts}");
}

#[test]
fn serve_flags_are_checked_before_anything_starts() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    for bad in ["", " ", "read,everything"] {
        let stderr = home.fails(2, &["serve", "--service-scopes", bad]);
        assert!(stderr.contains("--service-scopes"), "{bad:?}: {stderr}");
    }
    let stderr = home.fails(2, &["serve", "--max-backoff", "soon"]);
    assert!(stderr.contains("--max-backoff"), "{stderr}");
}

/// Creds files are new 0600 files renamed into place: a symlink at `-o` is replaced, not
/// followed (the file it pointed to is untouched), and a file someone else left there
/// (mode 666) is replaced by ours, not written into.
#[test]
fn creds_files_never_go_through_a_symlink_or_into_someone_elses_file() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "alice", "-a", "APP"]);

    let victim = home.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let link = home.path().join("link.creds");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    home.ok(&["creds", "APP", "alice", "-o", link.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link was replaced by a file"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&link)
            .unwrap()
            .contains("NATS USER JWT")
    );

    let planted = home.path().join("alice.creds");
    std::fs::write(&planted, "planted").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = std::fs::metadata(&planted).unwrap().ino();
    home.ok(&["creds", "APP", "alice", "-o", planted.to_str().unwrap()]);
    let after = std::fs::metadata(&planted).unwrap();
    assert_ne!(
        after.ino(),
        before,
        "a new file, not the planted one rewritten"
    );
    assert_eq!(after.permissions().mode() & 0o777, 0o600);

    // A device is refused (a rename would replace it); `-o -` is standard output.
    let err = home.fails(2, &["creds", "APP", "alice", "-o", "/dev/null"]);
    assert!(err.contains("not a regular file"), "{err}");
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    let out = home.ok(&["creds", "APP", "alice", "-o", "-"]);
    assert!(out.contains("NATS USER JWT"), "{out}");
}

/// An output Warden cannot write is found before the operation: nothing is created, so
/// the same command with a good `-o` simply works (it used to create the user, fail to
/// write, and then say "already exists"). `-o -` is standard output.
#[test]
fn an_output_that_cannot_be_written_fails_before_anything_is_created() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["tenant", "add", "acme"]);
    let users = |home: &Home| home.json(&["tenant", "show", "acme"])["users"].clone();
    assert_eq!(users(&home), serde_json::json!([]));

    // A device is no place for creds (as root, a rename would replace /dev/null itself).
    let err = home.fails(
        2,
        &["tenant", "user", "add", "acme", "syslog", "-o", "/dev/null"],
    );
    assert!(err.contains("not a regular file"), "{err}");
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    assert_eq!(users(&home), serde_json::json!([]));
    // A directory neither.
    let dir = home.path().to_str().unwrap().to_string();
    let err = home.fails(2, &["tenant", "user", "add", "acme", "syslog", "-o", &dir]);
    assert!(err.contains("is a directory"), "{err}");
    // A directory that does not exist: a failure, still before anything is created.
    let missing = home.path().join("missing").join("syslog.creds");
    let err = home.fails(
        1,
        &[
            "tenant",
            "user",
            "add",
            "acme",
            "syslog",
            "-o",
            missing.to_str().unwrap(),
        ],
    );
    assert!(err.contains("cannot write"), "{err}");
    assert_eq!(users(&home), serde_json::json!([]));

    // The same command, to standard output, now works.
    let creds = home.ok(&["tenant", "user", "add", "acme", "syslog", "-o", "-"]);
    assert!(creds.contains("NATS USER JWT"), "{creds}");
    assert!(creds.contains("NKEY SEED"), "{creds}");
    assert_eq!(users(&home), serde_json::json!(["syslog"]));
    let again = home.ok(&["tenant", "creds", "acme", "syslog", "-o", "-"]);
    assert!(again.contains("NATS USER JWT"), "{again}");

    // leaf-config prepares both of its files before it may create its user.
    let err = home.fails(
        2,
        &[
            "tenant",
            "leaf-config",
            "acme",
            "--hub",
            "nats-leaf://127.0.0.1:7422",
            "-o",
            "/dev/null",
        ],
    );
    assert!(err.contains("cannot write"), "{err}");
    assert_eq!(users(&home), serde_json::json!(["syslog"]));
}
