//! The command line's conventions, as a user of `nsc` and `nats` expects them: failures
//! with `--json` are JSON on standard error carrying the same stable code the HTTP API
//! gives (and clap's own usage errors too); one name per flag across commands (nsc's:
//! `--js-disk-storage`, `--js-consumer`, `--subscriptions`, `--expiry`) with the old
//! spellings kept as hidden aliases; `describe` says when a file does not exist and shows
//! times as RFC 3339 and the issuer by name.

mod common;

use common::Home;
use serde_json::Value;

/// `warden ARGS` must fail with `code`; its standard error parsed as JSON.
fn json_failure(home: &Home, code: i32, args: &[&str]) -> Value {
    let stderr = home.fails(code, args);
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON on stderr: {stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn json_failures_carry_the_stable_code() {
    let home = Home::new();
    home.ok(&["init", "--name", "CONV"]);
    let missing = json_failure(&home, 1, &["--json", "account", "show", "NOPE"]);
    assert_eq!(missing["error"]["code"], "not_found", "{missing}");
    assert!(
        missing["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("NOPE")),
        "{missing}"
    );
    let blank = json_failure(
        &home,
        2,
        &[
            "--json",
            "user",
            "add",
            "u",
            "-a",
            "CONV",
            "--allow-pub",
            " ",
        ],
    );
    assert_eq!(blank["error"]["code"], "invalid", "{blank}");
    // clap's usage errors too, on one line, without the usage text.
    let parse = json_failure(&home, 2, &["--json", "account", "add"]);
    assert_eq!(parse["error"]["code"], "invalid", "{parse}");
    let message = parse["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("<NAME>") && !message.contains("Usage:"),
        "{message}"
    );
    // Without --json the same failure is one human line.
    let human = home.fails(1, &["account", "show", "NOPE"]);
    assert!(human.trim_end().starts_with("error: "), "{human}");
    assert!(!human.contains('{'), "{human}");
}

#[test]
fn one_flag_name_everywhere_old_spellings_hidden() {
    let home = Home::new();
    home.ok(&["init", "--name", "CONV"]);
    // Tenants take the account's JetStream flags, with sizes.
    home.ok(&[
        "tenant",
        "add",
        "acme",
        "--js-disk-storage",
        "1G",
        "--js-consumer",
        "8",
    ]);
    let t = home.json(&["tenant", "show", "acme"]);
    let text = t.to_string();
    assert!(text.contains("1073741824"), "{t}");
    // The old spelling still works and means the same.
    home.ok(&[
        "tenant",
        "edit",
        "acme",
        "--js-disk",
        "2G",
        "--js-consumers",
        "9",
    ]);
    let t = home.json(&["tenant", "show", "acme"]).to_string();
    assert!(t.contains("2147483648"), "{t}");
    // Users: --subscriptions as accounts have it; --subs kept.
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "a", "-a", "APP", "--subscriptions", "10"]);
    home.ok(&["user", "add", "b", "-a", "APP", "--subs", "10"]);
    for (name, help) in [
        ("tenant add", home.ok(&["tenant", "add", "--help"])),
        ("user add", home.ok(&["user", "add", "--help"])),
        ("token create", home.ok(&["token", "create", "--help"])),
    ] {
        for old in [
            "--js-disk ",
            "--js-mem ",
            "--js-consumers",
            "--subs ",
            "--expires",
        ] {
            assert!(!help.contains(old), "{name} --help shows the old {old}");
        }
    }
    let help = home.ok(&["tenant", "add", "--help"]);
    assert!(help.contains("--js-disk-storage") && help.contains("--js-consumer"));
    let help = home.ok(&["token", "create", "--help"]);
    assert!(help.contains("--expiry"), "{help}");
    home.ok(&[
        "token",
        "create",
        "--name",
        "ci",
        "--scope",
        "read",
        "--expires",
        "30d",
    ]);
    home.ok(&[
        "token", "create", "--name", "cd", "--scope", "read", "--expiry", "30d",
    ]);
}

#[test]
fn describe_names_what_it_reads() {
    let home = Home::new();
    home.ok(&["init", "--name", "CONV"]);
    home.ok(&["account", "add", "SHOP"]);
    home.ok(&["user", "add", "u", "-a", "SHOP", "--expiry", "7d"]);
    let creds = home.path().join("u.creds");
    home.ok(&["creds", "SHOP", "u", "-o", creds.to_str().unwrap()]);
    let out = home.ok(&["describe", creds.to_str().unwrap()]);
    assert!(out.contains("(account SHOP)"), "{out}");
    let issued = out
        .lines()
        .find_map(|l| l.strip_prefix("issued"))
        .unwrap_or_else(|| panic!("{out}"))
        .trim();
    assert!(
        time::OffsetDateTime::parse(issued, &time::format_description::well_known::Rfc3339).is_ok(),
        "{issued}"
    );
    let expires = out
        .lines()
        .find_map(|l| l.strip_prefix("expires"))
        .unwrap()
        .trim();
    assert!(expires.ends_with('Z'), "{expires}");
    let json = home.json(&["describe", creds.to_str().unwrap()]);
    assert_eq!(json["issuer_name"], "account SHOP", "{json}");
    // A missing file is said to be one, not "invalid JWT".
    let missing = home.path().join("nope.creds");
    let err = home.fails(1, &["describe", missing.to_str().unwrap()]);
    assert!(err.contains("no such file"), "{err}");
    let err = home.fails(1, &["describe", "creds/ghost.creds"]);
    assert!(err.contains("no such file"), "{err}");
}

/// `push`, `sync` and `user revoke` know whether a `serve` runs and where: without
/// `--nats` they use the servers `serve` was given (never a guessed 127.0.0.1:4222), and
/// a revocation says who delivers it. A bulk push ends in a summary, not a line per
/// account.
async fn commands_follow_serve(line: warden_testkit::ServerLine) {
    let bin = warden_testkit::NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init", "--name", "CONV"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "u", "-a", "APP"]);
    // No serve has run and no --nats: said so, exit 2, nothing tried.
    let err = home.fails(2, &["sync", "--check"]);
    assert!(err.contains("no NATS server given"), "{err}");
    let revoked = home.ok(&["user", "revoke", "u", "-a", "APP"]);
    assert!(
        revoked.contains("no `warden serve` is running"),
        "{revoked}"
    );

    let server = home.start_nats(&bin, "conv");
    let url = server.url();
    let serve = common::Serve::start(&home, &url);
    home.wait_delivered();
    home.ok(&["user", "add", "v", "-a", "APP"]);
    let revoked = home.ok(&["user", "revoke", "v", "-a", "APP"]);
    assert!(
        revoked.contains("the running `warden serve` pushes") && revoked.contains(&url),
        "{revoked}"
    );
    home.wait_delivered();
    // sync without --nats talks to serve's server.
    let check = home.json(&["sync", "--check"]);
    assert_eq!(check["in_step"], true, "{check}");
    assert_eq!(check["servers"][0]["url"], url.as_str(), "{check}");
    // A bulk push: one summary line.
    let out = home.ok(&["push", "--all"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("pushed ") && lines[0].ends_with(" ok, 0 failed"),
        "{out}"
    );
    drop(serve);
    // Once serve has stopped, its servers are still the default; revocations say
    // nobody delivers them once its note is stale (not waited for here).
    let check = home.json(&["sync", "--check"]);
    assert_eq!(check["in_step"], true, "{check}");
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_follow_serve_2_9() {
    commands_follow_serve(warden_testkit::ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_follow_serve_2_15() {
    commands_follow_serve(warden_testkit::ServerLine::V2_15).await;
}

/// `warden context set --account` gives commands their account when `-a` is left out,
/// as `nsc env -a` does; `status` shows it; without either the error says how to give one.
#[test]
fn context_account_is_used_when_a_is_left_out() {
    let home = Home::new();
    home.ok(&["init", "--name", "CONV"]);
    home.ok(&["account", "add", "SHOP"]);
    let err = home.fails(2, &["user", "add", "alice"]);
    assert!(err.contains("warden context set --account"), "{err}");
    // Only an account that exists.
    home.fails(1, &["context", "set", "--account", "NOPE"]);
    assert_eq!(home.json(&["context", "show"])["account"], Value::Null);
    home.ok(&["context", "set", "--account", "SHOP"]);
    home.ok(&["user", "add", "alice", "--allow-pub", "orders.>"]);
    let shown = home.json(&["user", "show", "alice"]);
    assert_eq!(shown["account"], "SHOP", "{shown}");
    // -a still wins.
    home.ok(&["account", "add", "OTHER"]);
    home.ok(&["user", "add", "bob", "-a", "OTHER"]);
    assert_eq!(
        home.json(&["user", "show", "bob", "-a", "OTHER"])["account"],
        "OTHER"
    );
    let status = home.json(&["status"]);
    assert_eq!(status["context_account"], "SHOP", "{status}");
    assert!(home.ok(&["status"]).contains("context      account SHOP"));
    // `tool --user` and `streams list` take it too: with it, tool goes on to connect
    // (nothing listens on port 1, so it fails there) and streams reads SHOP (which has no
    // JetStream); without it, both stop at a usage error saying how to set one.
    let nowhere = "nats://127.0.0.1:1";
    let tool = ["tool", "pub", "--nats", nowhere, "-u", "alice", "s", "x"];
    let streams = ["streams", "list", "--nats", nowhere];
    let err = home.fails(1, &tool);
    assert!(!err.contains("context set"), "{err}");
    let err = home.fails(2, &streams);
    assert!(err.contains("account SHOP has JetStream disabled"), "{err}");
    home.ok(&["context", "clear"]);
    home.fails(2, &["user", "list"]);
    for args in [&tool[..], &streams[..]] {
        let err = home.fails(2, args);
        assert!(
            err.contains("warden context set --account"),
            "{args:?}: {err}"
        );
    }
}

/// Human output reads as an operator expects: sizes in binary units, JetStream counts
/// nats-server does not enforce as `unlimited`, times as RFC 3339.
#[test]
fn human_output_has_units_and_times() {
    let home = Home::new();
    home.ok(&["init", "--name", "CONV"]);
    home.ok(&["account", "add", "SHOP", "--js-disk-storage", "1G"]);
    let show = home.ok(&["account", "show", "SHOP"]);
    let js = show.lines().find(|l| l.starts_with("jetstream")).unwrap();
    assert!(js.contains("disk 1 GiB"), "{js}");
    assert!(js.contains("streams unlimited"), "{js}");
    assert!(!js.contains("1073741824"), "{js}");
    home.ok(&["tenant", "add", "acme", "--payload", "64K"]);
    let t = home.ok(&["tenant", "show", "acme"]);
    assert!(t.contains("payload 64 KiB"), "{t}");
    let created = t
        .lines()
        .find_map(|l| l.strip_prefix("created"))
        .unwrap()
        .trim();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
}
