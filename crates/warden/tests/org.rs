//! `warden org`: the example organisation applied as accounts and users, once
//! (re-applying plans nothing and writes nothing), refused whole when invalid, and a
//! deactivated person's user refused by real nats-server processes (2.9 and 2.15)
//! while the other services keep exactly their permissions.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{Home, connect};
use futures::StreamExt;
use serde_json::Value;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

fn example() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/organization.yaml"
    ))
}

fn example_text() -> String {
    std::fs::read_to_string(example()).expect("example file")
}

/// Writes `text` to a file in the home and returns its path.
fn write(home: &Home, name: &str, text: &str) -> String {
    let path = home.path().join(name);
    std::fs::write(&path, text).expect("write spec");
    path.to_str().expect("utf-8 path").to_string()
}

/// The example with `person`'s `active` set to false.
fn deactivated(person_domain: &str) -> String {
    let needle = format!("    domain: {person_domain}\n");
    let text = example_text();
    assert!(text.contains(&needle), "example has {needle:?}");
    text.replace(&needle, &format!("{needle}    active: false\n"))
}

fn steps(plan: &Value) -> Vec<(String, String, String)> {
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_string(),
                s["kind"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn count(plan: &Value, action: &str, kind: &str) -> usize {
    steps(plan)
        .iter()
        .filter(|(a, k, _)| a == action && k == kind)
        .count()
}

#[test]
fn the_example_applies_once_and_dry_run_writes_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    let file = example();
    let file = file.to_str().unwrap();
    let before = home.json(&["status"]);

    let dry = home.json(&["org", "apply", file, "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["applied"], false);
    assert_eq!(count(&dry, "create", "account"), 3);
    assert_eq!(count(&dry, "create", "user"), 11);
    assert_eq!(home.json(&["status"]), before, "dry run wrote something");
    assert!(home.json(&["org", "show"])["organization"].is_null());

    let plan = home.json(&["org", "apply", file]);
    assert_eq!(plan["applied"], true);
    assert_eq!(steps(&plan), steps(&dry));
    assert_eq!(steps(&plan).len(), 14);
    let after = home.json(&["status"]);
    assert_eq!(after["accounts"], before["accounts"].as_i64().unwrap() + 3);
    assert_eq!(after["users"], before["users"].as_i64().unwrap() + 11);

    // The example's permissions, in the JWT itself.
    let person = home.json(&["user", "show", "person_service", "-a", "CORE"]);
    let claims = home.json(&["describe", person["jwt"].as_str().unwrap()]);
    let nats = &claims["claims"]["nats"];
    assert_eq!(
        nats["pub"]["allow"],
        serde_json::json!(["thecowboyai.org.person.>"])
    );
    assert_eq!(
        nats["sub"]["allow"],
        serde_json::json!(["thecowboyai.org.person.>", "thecowboyai.org.location.>"])
    );
    assert_eq!(nats["payload"], 1_048_576);
    assert!(nats["resp"].is_object(), "{nats}");

    // Re-applying the same file: empty plan, no writes, no ledger entries.
    let again = home.json(&["org", "apply", file]);
    assert_eq!(again["steps"], serde_json::json!([]));
    assert_eq!(again["applied"], false);
    assert_eq!(home.json(&["status"]), after);
    let text = home.ok(&["org", "apply", file]);
    assert!(text.contains("nothing to change"), "{text}");

    let show = home.json(&["org", "show"]);
    assert_eq!(show["organization"]["name"], "thecowboyai");
    let units: Vec<(&str, &str, u64)> = show["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap(),
                u["account"].as_str().unwrap(),
                u["users"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        units,
        [
            ("core", "CORE", 5),
            ("media", "MEDIA", 3),
            ("development", "DEVELOPMENT", 3)
        ]
    );
    let people = show["people"].as_array().unwrap();
    assert_eq!(people.len(), 11);
    assert!(people.iter().all(|p| p["status"] == "active"));

    // A change that touches no account or user (an e-mail) is recorded, once.
    let text = example_text().replace(
        "name: git-service\n",
        "name: git-service\n    email: git@thecowboyai.example\n",
    );
    let edited = write(&home, "email.yaml", &text);
    let recorded = home.json(&["org", "apply", &edited]);
    assert_eq!(
        (recorded["applied"].clone(), recorded["steps"].clone()),
        (Value::Bool(true), serde_json::json!([]))
    );
    let status = home.json(&["status"]);
    assert_eq!(
        status["ledger_events"],
        after["ledger_events"].as_i64().unwrap() + 1
    );
    assert_eq!(status["users"], after["users"]);
    assert_eq!(home.json(&["org", "apply", &edited])["applied"], false);
    let show = home.json(&["org", "show"]);
    let git = show["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "git-service")
        .unwrap()
        .clone();
    assert_eq!(git["email"], "git@thecowboyai.example");
    assert_eq!(git["user"], "git_service");
}

#[test]
fn an_invalid_spec_lists_every_problem_and_changes_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    home.ok(&["org", "apply", example().to_str().unwrap()]);
    let before = (home.json(&["status"]), home.json(&["org", "show"]));

    let bad = example_text()
        .replace(
            "units: [media]\n    domain: audio",
            "units: [studio]\n    domain: audio",
        )
        .replace("id: nix-service", "id: git-service")
        .replace("domain: video", "domain: video.hd")
        .replace(
            "  - id: development\n    name: Development",
            "  - id: development\n    parent: development\n    name: Development",
        )
        .replace(
            "name: agent-service\n",
            "name: agent-service\n    email: agent-at-example\n",
        )
        .replace(
            "[\"{org}.org.{domain}.>\"]\n  subscribe:",
            "[\"{org}.org..{domain}\"]\n  subscribe:",
        );
    let file = write(&home, "bad.yaml", &bad);
    let err = home.fails(2, &["org", "apply", &file]);
    for want in [
        "template.publish[0]",
        "units[2].parent",
        "people[4].email",
        "people[5].units[0]: unknown unit \"studio\"",
        "people[7].domain",
        "people[9].id: duplicate person id \"git-service\"",
        "6 problems",
        "nothing applied",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // The same problems as JSON for scripts.
    let out = home.run(&["--json", "org", "apply", &file]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("problems JSON");
    assert_eq!(doc["problems"].as_array().unwrap().len(), 6);

    // Unreadable files are usage errors too.
    let broken = write(&home, "broken.yaml", "organization: [\n");
    home.fails(2, &["org", "apply", &broken]);
    let unknown = write(
        &home,
        "unknown.json",
        r#"{"organization":{"name":"x"},"teams":[]}"#,
    );
    let err = home.fails(2, &["org", "apply", &unknown]);
    assert!(err.contains("teams"), "{err}");
    home.fails(2, &["org", "apply", "/nonexistent/org.yaml"]);

    assert_eq!(
        (home.json(&["status"]), home.json(&["org", "show"])),
        before
    );
}

#[test]
fn removing_a_unit_deletes_its_account_unless_it_holds_foreign_users() {
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    home.ok(&["org", "apply", example().to_str().unwrap()]);
    // Without the development unit and its three services.
    let text = example_text();
    let cut = text
        .find("  # Development: cim-domain-git")
        .expect("development people");
    let without = text[..cut].replace(
        "  - id: development\n    name: Development\n    type: service\n",
        "",
    );
    let file = write(&home, "smaller.yaml", &without);

    // A user added by hand to DEVELOPMENT blocks the deletion.
    home.ok(&["user", "add", "manual", "-a", "DEVELOPMENT"]);
    let before = home.json(&["status"]);
    let err = home.fails(1, &["org", "apply", &file]);
    assert!(err.contains("manual"), "{err}");
    assert_eq!(home.json(&["status"]), before);

    home.ok(&["user", "delete", "manual", "-a", "DEVELOPMENT"]);
    let plan = home.json(&["org", "apply", &file]);
    assert_eq!(
        steps(&plan),
        [(
            "delete".to_string(),
            "account".to_string(),
            "DEVELOPMENT".to_string()
        )]
    );
    home.fails(1, &["account", "show", "DEVELOPMENT"]);
    assert_eq!(
        home.json(&["org", "apply", &file])["steps"],
        serde_json::json!([])
    );
    let show = home.json(&["org", "show"]);
    assert_eq!(show["units"].as_array().unwrap().len(), 2);
    assert_eq!(show["people"].as_array().unwrap().len(), 8);

    // An account of the same name that the organisation does not manage is not taken.
    home.ok(&["account", "add", "DEVELOPMENT"]);
    let err = home.fails(1, &["org", "apply", example().to_str().unwrap()]);
    assert!(err.contains("DEVELOPMENT already exists"), "{err}");
}

async fn deactivation_is_enforced(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    home.ok(&["org", "apply", example().to_str().unwrap()]);
    let org_creds = home.ok(&["creds", "CORE", "organization_service"]);
    let old_key =
        home.json(&["user", "show", "organization_service", "-a", "CORE"])["public_key"].clone();

    // organization-service set inactive: its user is revoked, nothing else changes.
    let file = write(&home, "inactive.yaml", &deactivated("organization"));
    let plan = home.json(&["org", "apply", &file]);
    assert_eq!(
        steps(&plan),
        [(
            "revoke".to_string(),
            "user".to_string(),
            "CORE/organization_service".to_string()
        )]
    );
    assert_eq!(
        home.json(&["org", "apply", &file])["steps"],
        serde_json::json!([])
    );
    let user = home.json(&["user", "show", "organization_service", "-a", "CORE"]);
    assert!(user["revoked_at"].is_i64(), "{user}");

    let server = home.start_nats(&bin, "org");
    let url = server.url();
    let refused = connect(&url, &org_creds)
        .await
        .err()
        .unwrap_or_else(|| panic!("[{v}] revoked organization_service connected"));
    assert!(
        refused.to_lowercase().contains("authorization"),
        "[{v}] {refused}"
    );

    // person_service publishes inside its domain, reads its related domain, and is
    // refused outside them.
    let person_creds = home.ok(&["creds", "CORE", "person_service"]);
    let mut person = connect(&url, &person_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] person_service refused: {e}"));
    let mut own = person
        .client
        .subscribe("thecowboyai.org.person.created")
        .await
        .expect("subscribe");
    let _related = person
        .client
        .subscribe("thecowboyai.org.location.>")
        .await
        .expect("subscribe");
    person.client.flush().await.expect("flush");
    person
        .client
        .publish("thecowboyai.org.person.created", "alice".into())
        .await
        .expect("publish");
    person.client.flush().await.expect("flush");
    let msg = tokio::time::timeout(WAIT, own.next())
        .await
        .unwrap_or_else(|_| panic!("[{v}] message inside the domain not delivered"))
        .expect("subscription open");
    assert_eq!(&msg.payload[..], b"alice");
    assert!(
        person.errors.try_recv().is_err(),
        "[{v}] no violation expected for allowed subjects"
    );
    for subject in ["thecowboyai.org.location.moved", "thecowboyai.org.audio.x"] {
        person
            .client
            .publish(subject, "no".into())
            .await
            .expect("publish");
        person.client.flush().await.expect("flush");
        let err = person
            .next_error(WAIT)
            .await
            .unwrap_or_else(|| panic!("[{v}] publish to {subject} was not refused"));
        assert!(
            err.to_lowercase().contains("permissions violation") && err.contains(subject),
            "[{v}] {err}"
        );
    }
    let _denied = person
        .client
        .subscribe("thecowboyai.org.video.>")
        .await
        .expect("subscribe call");
    person.client.flush().await.expect("flush");
    let err = person
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("[{v}] subscribe outside the domains not refused"));
    assert!(err.to_lowercase().contains("subscription"), "[{v}] {err}");
    drop(server);

    // Reactivated: a new key, which a server with a fresh config accepts.
    let plan = home.json(&["org", "apply", example().to_str().unwrap()]);
    assert_eq!(count(&plan, "create", "user"), 1, "{plan}");
    let user = home.json(&["user", "show", "organization_service", "-a", "CORE"]);
    assert_ne!(user["public_key"], old_key);
    assert!(user["revoked_at"].is_null());
    let server = home.start_nats(&bin, "again");
    let new_creds = home.ok(&["creds", "CORE", "organization_service"]);
    connect(&server.url(), &new_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] reactivated organization_service refused: {e}"));
    assert!(
        connect(&server.url(), &org_creds).await.is_err(),
        "[{v}] the old key works again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deactivated_person_is_refused_by_nats_server_2_9() {
    deactivation_is_enforced(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deactivated_person_is_refused_by_nats_server_2_15() {
    deactivation_is_enforced(ServerLine::V2_15).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_applies_once_on_postgresql() {
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
            .expect("run warden");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON")
    };
    run(&["init", "--name", "COWBOY"]);
    let file = example();
    let file = file.to_str().unwrap();
    let plan = run(&["org", "apply", file]);
    assert_eq!(count(&plan, "create", "account"), 3);
    assert_eq!(count(&plan, "create", "user"), 11);
    let status = run(&["status"]);
    assert_eq!(status["backend"], "postgres");
    let again = run(&["org", "apply", file]);
    assert_eq!(again["steps"], serde_json::json!([]));
    assert_eq!(run(&["status"]), status);
    assert_eq!(
        run(&["org", "show"])["people"].as_array().unwrap().len(),
        11
    );
}

#[test]
fn renames_moves_removals_and_permission_changes_apply_in_place() {
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    home.ok(&["org", "apply", example().to_str().unwrap()]);
    let media_key = home.json(&["account", "show", "MEDIA"])["public_key"].clone();
    let person_key =
        home.json(&["user", "show", "person_service", "-a", "CORE"])["public_key"].clone();

    let text = example_text()
        .replace("    name: Media\n", "    name: Studio\n")
        .replace(
            "related_domains: [location]",
            "related_domains: [location, policy]",
        )
        .replace(
            "units: [media]\n    domain: video",
            "units: [core]\n    domain: video",
        );
    let cut = text.find("  - id: policy-service").unwrap();
    let end = text[cut..].find("  - id: agent-service").unwrap() + cut;
    let text = format!("{}{}", &text[..cut], &text[end..]);
    let file = write(&home, "changed.yaml", &text);

    let plan = home.json(&["org", "apply", &file]);
    let got = steps(&plan);
    let want = [
        ("update", "account", "STUDIO"),
        ("update", "permissions", "CORE/person_service"),
        ("create", "user", "CORE/video_service"),
        ("revoke", "user", "STUDIO/video_service"),
        ("revoke", "user", "CORE/policy_service"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, k, n)| (a.to_string(), k.to_string(), n.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        home.json(&["org", "apply", &file])["steps"],
        serde_json::json!([])
    );

    // Renamed in place (same key), re-issued in place (same key).
    let studio = home.json(&["account", "show", "STUDIO"]);
    assert_eq!(studio["public_key"], media_key);
    let described = home.json(&["describe", studio["jwt"].as_str().unwrap()]);
    assert_eq!(described["claims"]["name"], "STUDIO");
    let person = home.json(&["user", "show", "person_service", "-a", "CORE"]);
    assert_eq!(person["public_key"], person_key);
    assert_eq!(
        person["spec"]["permissions"]["sub"]["allow"],
        serde_json::json!([
            "thecowboyai.org.person.>",
            "thecowboyai.org.location.>",
            "thecowboyai.org.policy.>"
        ])
    );
    // The moved service has a new user; the old one and the removed one are revoked.
    assert!(home.json(&["user", "show", "video_service", "-a", "CORE"])["revoked_at"].is_null());
    assert!(home.json(&["user", "show", "video_service", "-a", "STUDIO"])["revoked_at"].is_i64());
    assert!(home.json(&["user", "show", "policy_service", "-a", "CORE"])["revoked_at"].is_i64());
    let show = home.json(&["org", "show"]);
    let policy = show["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "policy-service")
        .expect("removed person still listed")
        .clone();
    assert_eq!(
        (policy["in_spec"].clone(), policy["status"].clone()),
        (Value::Bool(false), Value::from("revoked"))
    );
    assert_eq!(home.json(&["audit", "verify"])["first_break"], Value::Null);
}

/// Two people of one unit removed in one apply: the unit's account is re-signed once,
/// its JWT revoking both keys, and both people are marked revoked.
#[test]
fn removals_in_one_unit_revoke_every_key_in_one_account_jwt() {
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    home.ok(&["org", "apply", example().to_str().unwrap()]);
    let key = |name: &str| {
        home.json(&["user", "show", name, "-a", "CORE"])["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (policy, agent) = (key("policy_service"), key("agent_service"));
    let text = example_text();
    let cut = text.find("  - id: policy-service").unwrap();
    let end = text[cut..].find("  - id: audio-service").unwrap() + cut;
    let file = write(
        &home,
        "fewer.yaml",
        &format!("{}{}", &text[..cut], &text[end..]),
    );
    let events = home.ledger().len();
    let plan = home.json(&["org", "apply", &file]);
    assert_eq!(
        steps(&plan),
        [
            ("revoke".into(), "user".into(), "CORE/agent_service".into()),
            ("revoke".into(), "user".into(), "CORE/policy_service".into()),
        ]
    );
    let core = home.json(&["account", "show", "CORE"]);
    let claims = home.json(&["describe", core["jwt"].as_str().unwrap()])["claims"].clone();
    let revoked = &claims["nats"]["revocations"];
    assert!(
        revoked[&policy].is_i64() && revoked[&agent].is_i64(),
        "{revoked}"
    );
    for name in ["policy_service", "agent_service"] {
        assert!(home.json(&["user", "show", name, "-a", "CORE"])["revoked_at"].is_i64());
    }
    // One event per revoked user and the apply's own; the chain still verifies.
    let new: Vec<String> = home.ledger()[events..]
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(new, ["user.revoke", "user.revoke", "org.apply"]);
    let show = home.json(&["org", "show"]);
    for id in ["policy-service", "agent-service"] {
        let p = show["people"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .expect("removed person still listed");
        assert_eq!(p["status"], "revoked", "{id}");
    }
    assert_eq!(home.json(&["audit", "verify"])["first_break"], Value::Null);
}

fn sharing_example() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/organization-sharing.yaml"
    ))
}

/// Units that export, import and declare roles: one plan (accounts, then their shares,
/// then users), a re-apply plans nothing, and real servers let the importing unit's
/// service call the exporting unit's private service (through the activation Warden
/// issued) and give the role's user exactly the role's template.
async fn shares_are_enforced(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    let file = sharing_example();
    let file = file.to_str().unwrap();
    let plan = home.json(&["org", "apply", file]);
    let s = steps(&plan);
    let owned = |a: &str, k: &str, n: &str| (a.to_string(), k.to_string(), n.to_string());
    assert_eq!(
        s,
        [
            owned("create", "account", "CORE"),
            owned("create", "account", "MEDIA"),
            owned("update", "shares", "CORE"),
            owned("update", "shares", "MEDIA"),
            owned("create", "user", "CORE/person_service"),
            owned("create", "user", "MEDIA/video_service"),
            owned("create", "user", "MEDIA/viewer_desk"),
        ],
        "[{v}] {plan}"
    );
    let status = home.json(&["status"]);
    let again = home.json(&["org", "apply", file]);
    assert_eq!(again["steps"], serde_json::json!([]), "[{v}] idempotent");
    assert_eq!(again["applied"], false);
    assert_eq!(home.json(&["status"]), status, "[{v}] a re-apply wrote");

    // The import carries an activation signed by MEDIA; the viewer is issued by the
    // role's scoped key with nothing of its own.
    let core = home.json(&["account", "show", "CORE"]);
    let media = home.json(&["account", "show", "MEDIA"]);
    let imports = core["spec"]["imports"].as_array().expect("imports");
    let private = imports
        .iter()
        .find(|i| i["type"] == "service")
        .expect("service import");
    let token = private["token"].as_str().expect("activation token");
    let act = home.json(&["describe", token]);
    assert_eq!(act["claims"]["iss"], media["public_key"], "{act}");
    assert_eq!(act["claims"]["sub"], core["public_key"], "{act}");
    let viewer = home.json(&["user", "show", "viewer_desk", "-a", "MEDIA"]);
    let claims = home.json(&["describe", viewer["jwt"].as_str().unwrap()]);
    let scoped: Vec<&Value> = media["spec"]["signing_keys"]
        .as_array()
        .expect("signing keys")
        .iter()
        .filter(|k| k["kind"] == "user_scope")
        .collect();
    assert_eq!(scoped.len(), 1, "{media}");
    assert_eq!(claims["claims"]["iss"], scoped[0]["key"], "{claims}");
    let nats = &claims["claims"]["nats"];
    assert!(
        nats["pub"]["allow"].is_null() && nats["sub"]["allow"].is_null() && nats["resp"].is_null(),
        "{claims}"
    );

    let server = home.start_nats(&bin, "shares");
    let url = server.url();
    let video = connect(&url, &home.ok(&["creds", "MEDIA", "video_service"]))
        .await
        .unwrap_or_else(|e| panic!("[{v}] video refused: {e}"));
    let person = connect(&url, &home.ok(&["creds", "CORE", "person_service"]))
        .await
        .unwrap_or_else(|e| panic!("[{v}] person refused: {e}"));
    let mut requests = video
        .client
        .subscribe("thecowboyai.media.transcode.>")
        .await
        .expect("subscribe");
    video.client.flush().await.expect("flush");
    let responder = video.client.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, "done".into()).await;
                let _ = responder.flush().await;
            }
        }
    });
    let answer = common::answered(&person.client, "core.transcode.file1", 3 * WAIT).await;
    assert_eq!(&answer.payload[..], b"done", "[{v}]");

    let mut viewer = connect(&url, &home.ok(&["creds", "MEDIA", "viewer_desk"]))
        .await
        .unwrap_or_else(|e| panic!("[{v}] viewer refused: {e}"));
    viewer
        .publish_delivered(
            "thecowboyai.media.view.viewer_desk.x",
            &format!("[{v}] own view"),
        )
        .await;
    viewer
        .publish_refused(
            "thecowboyai.media.view.someone.x",
            &format!("[{v}] other view"),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_shares_and_roles_are_enforced_by_nats_server_2_9() {
    shares_are_enforced(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_shares_and_roles_are_enforced_by_nats_server_2_15() {
    shares_are_enforced(ServerLine::V2_15).await;
}

/// Every file under `dir`: relative path → bytes.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("under dir")
                    .to_string_lossy()
                    .to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

/// An organisation with shares and roles, exported as an nsc store and imported into a
/// fresh Warden, loses nothing (no "not carried"), and exporting that again gives the
/// same files.
#[test]
fn an_organisation_with_shares_survives_nsc_export_and_import() {
    let home = Home::new();
    home.ok(&["init", "--name", "COWBOY"]);
    home.ok(&["org", "apply", sharing_example().to_str().unwrap()]);
    let out1 = home.path().join("export-1");
    home.json(&["export", "--format", "nsc", "--out", out1.to_str().unwrap()]);
    let other = Home::new();
    let report = other.json(&[
        "import",
        "nsc",
        "--store",
        out1.join("stores").to_str().unwrap(),
        "--keys",
        out1.join("keys").to_str().unwrap(),
    ]);
    assert_eq!(report["not_carried"], serde_json::json!([]), "{report}");
    let out2 = other.path().join("export-2");
    other.json(&["export", "--format", "nsc", "--out", out2.to_str().unwrap()]);
    let (t1, t2) = (tree(&out1), tree(&out2));
    assert_eq!(t1.keys().collect::<Vec<_>>(), t2.keys().collect::<Vec<_>>());
    for (path, bytes) in &t1 {
        assert!(t2.get(path) == Some(bytes), "{path} differs");
    }
}

/// A data directory on SQLite, or on a fresh PostgreSQL database: the same commands.
struct Target {
    home: Home,
    pg: Option<warden_testkit::PgDatabase>,
}

impl Target {
    async fn new(pg: bool) -> Target {
        let pg = if pg {
            Some(warden_testkit::PgDatabase::create().await)
        } else {
            None
        };
        Target {
            home: Home::new(),
            pg,
        }
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = Vec::new();
        if let Some(db) = &self.pg {
            full.extend(["--database-url", db.url()]);
        }
        full.extend_from_slice(args);
        full
    }

    fn ok(&self, args: &[&str]) -> String {
        self.home.ok(&self.args(args))
    }

    fn json(&self, args: &[&str]) -> Value {
        self.home.json(&self.args(args))
    }

    fn fails(&self, code: i32, args: &[&str]) -> String {
        self.home.fails(code, &self.args(args))
    }

    /// Every ledger event, oldest first.
    fn ledger(&self) -> Vec<Value> {
        self.ok(&["--json", "audit", "list", "--limit", "10000000"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("ledger line"))
            .collect()
    }
}

/// One unit of `people` Service persons (`person-00000` …), as JSON.
fn big_unit(people: usize) -> String {
    let people: Vec<Value> = (0..people)
        .map(|i| {
            serde_json::json!({
                "id": format!("p{i:05}"),
                "name": format!("person-{i:05}"),
                "roles": ["Service"],
                "units": ["staff"],
                "domain": format!("d{i:05}"),
            })
        })
        .collect();
    serde_json::json!({
        "organization": {"name": "bulk"},
        "units": [{"id": "staff", "name": "Staff"}],
        "people": people,
    })
    .to_string()
}

/// A unit of 2,500 people applied as one batch: users in plan order, one
/// `org.users.create` event per thousand naming each person, user and key (never a seed),
/// the chain intact; the same file again writes nothing; a batch that fails on its
/// last user (a name taken by a user the organisation does not manage) leaves nothing.
async fn a_large_unit_applies_as_one_batch(pg: bool) {
    const PEOPLE: usize = 2_500;
    let t = Target::new(pg).await;
    t.ok(&["init", "--name", "BULK"]);
    let file = write(&t.home, "big.json", &big_unit(PEOPLE));
    let before_events = t.ledger().len();

    let plan = t.json(&["org", "apply", &file]);
    assert_eq!(plan["applied"], true);
    let names: Vec<String> = steps(&plan).into_iter().map(|(_, _, n)| n).collect();
    let mut expected = vec!["STAFF".to_string()];
    expected.extend((0..PEOPLE).map(|i| format!("STAFF/person_{i:05}")));
    assert_eq!(names, expected, "the plan's order");

    let users = t.json(&["user", "list", "-a", "STAFF"]);
    let keys: BTreeMap<String, String> = users
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_string(),
                u["public_key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), PEOPLE);

    let events = t.ledger();
    let new: Vec<&Value> = events[before_events..].iter().collect();
    let actions: Vec<&str> = new.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "account.create",
            "org.users.create",
            "org.users.create",
            "org.users.create",
            "org.apply"
        ]
    );
    let batches: Vec<&Value> = new
        .iter()
        .copied()
        .filter(|e| e["action"] == "org.users.create")
        .collect();
    let mut listed = Vec::new();
    for (i, e) in batches.iter().enumerate() {
        let s = &e["summary"];
        assert_eq!(s["account"], "STAFF");
        assert_eq!(
            (s["part"].as_u64(), s["parts"].as_u64()),
            (Some(i as u64 + 1), Some(3))
        );
        for u in s["users"].as_array().unwrap() {
            let name = u["name"].as_str().unwrap();
            assert_eq!(u["key"].as_str(), keys.get(name).map(String::as_str), "{u}");
            assert_eq!(u["person"], format!("p{}", &name["person_".len()..]));
            let fields: Vec<&String> = u.as_object().unwrap().keys().collect();
            assert_eq!(
                fields,
                ["key", "name", "person"],
                "names and keys only: {u}"
            );
            listed.push(name.to_string());
        }
        assert_eq!(
            s["count"].as_u64(),
            Some(s["users"].as_array().unwrap().len() as u64)
        );
    }
    let in_order: Vec<String> = (0..PEOPLE).map(|i| format!("person_{i:05}")).collect();
    assert_eq!(listed, in_order, "every user, once, in plan order");
    assert!(t.json(&["audit", "verify"])["first_break"].is_null());

    // The same file again: nothing planned, nothing written.
    let status = t.json(&["status"]);
    let again = t.json(&["org", "apply", &file]);
    assert_eq!(again["steps"], serde_json::json!([]));
    assert_eq!(again["applied"], false);
    assert_eq!(t.json(&["status"]), status);

    // A bigger unit whose last person's user name is taken by a user the organisation
    // does not manage: the batch fails at its end, and nothing of it remains.
    t.ok(&["user", "add", "person_05499", "-a", "STAFF"]);
    let status = t.json(&["status"]);
    let events = t.ledger().len();
    let bigger = write(&t.home, "bigger.json", &big_unit(PEOPLE + 3_000));
    let err = t.fails(1, &["org", "apply", &bigger]);
    assert!(err.contains("person_05499"), "{err}");
    assert_eq!(t.json(&["status"]), status);
    assert_eq!(t.ledger().len(), events);
    assert_eq!(
        t.json(&["org", "show"])["people"].as_array().unwrap().len(),
        PEOPLE
    );
    assert!(t.json(&["audit", "verify"])["first_break"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_unit_applies_as_one_batch_on_sqlite() {
    a_large_unit_applies_as_one_batch(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_unit_applies_as_one_batch_on_postgresql() {
    a_large_unit_applies_as_one_batch(true).await;
}
