//! Directory sync against a real OpenLDAP `slapd` (started by the test on a random
//! loopback port, with the AD attributes the mapping needs): the initial sync gives the
//! expected snapshot; a change in slapd (a user modified, a user deleted, group members
//! changed) gives exactly the matching delta plan; the CLI plans the same, and its
//! LDIF export, applied to slapd with `ldapmodify`, is read back by the next sync.
//! Applied through the governance store: a sync creates the directory, a second one
//! changes nothing, a proposal confirmed in Warden is exported as LDIF that slapd
//! accepts, and the next sync agrees with Warden.
//!
//! No nats-server here: what an applied sync does to NATS users is proven in
//! `governance_api.rs` (grants reach imported members, drops shrink, deletes revoke).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::Home;
use serde_json::Value;
use warden_core::directory::DirectorySnapshot;
use warden_core::dirsync::{self, Mapping, MappingFile, Provider, plan};
use warden_ops::dirsync::{LdapSource, read_ldap};
use warden_testkit::{AD_TEST_SCHEMA, Slapd};

const SUFFIX: &str = "dc=corp,dc=example";
const JANE_GUID: &str = "f2d2a3ec-cf55-42d1-98dd-9c0c3266760c";

/// OUs, three users (Jane reports to Bob), two groups. GUIDs are binary, as in AD.
fn seed_ldif() -> String {
    let guid = |g: &str| data_encoding::BASE64.encode(&dirsync::ldif::guid_bytes(g).expect("guid"));
    format!(
        "dn: ou=Staff,{SUFFIX}\nobjectClass: organizationalUnit\nou: Staff\n\n\
         dn: ou=Groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: Groups\n\n\
         dn: cn=Bob Smith,ou=Staff,{SUFFIX}\nobjectClass: user\ncn: Bob Smith\nsn: Smith\n\
         sAMAccountName: bsmith\nobjectGUID:: {bob}\ndisplayName: Bob Smith\ntitle: Head of Platform\n\
         mail: bob@corp.example\nuserPrincipalName: bsmith@corp.example\n\n\
         dn: cn=Jane Doe,ou=Staff,{SUFFIX}\nobjectClass: user\ncn: Jane Doe\nsn: Doe\ngivenName: Jane\n\
         sAMAccountName: JDoe\nobjectGUID:: {jane}\ndisplayName: Jane Doe\ntitle: Platform Engineer\n\
         department: Platform\ncompany: Example Corp\ncountryCode: 276\nemployeeID: E-1001\n\
         telephoneNumber: +49 30 1234\nwhenCreated: 20240102030405Z\nmail: jane@corp.example\n\
         manager: cn=Bob Smith,ou=Staff,{SUFFIX}\n\n\
         dn: cn=Eve Example,ou=Staff,{SUFFIX}\nobjectClass: user\ncn: Eve Example\nsn: Example\n\
         sAMAccountName: eve\nobjectGUID:: {eve}\n\n\
         dn: cn=NATS Operators,ou=Groups,{SUFFIX}\nobjectClass: group\ncn: NATS Operators\n\
         objectGUID:: {ops}\ndescription: Runs NATS\ngroupType: -2147483646\n\
         member: cn=Jane Doe,ou=Staff,{SUFFIX}\nmember: cn=Bob Smith,ou=Staff,{SUFFIX}\n\
         managedBy: cn=Bob Smith,ou=Staff,{SUFFIX}\n\n\
         dn: cn=Sales,ou=Groups,{SUFFIX}\nobjectClass: group\ncn: Sales\nobjectGUID:: {sales}\n\
         member: cn=Eve Example,ou=Staff,{SUFFIX}\n",
        bob = guid("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
        jane = guid(JANE_GUID),
        eve = guid("22222222-3333-4444-8555-666666666666"),
        ops = guid("33333333-4444-4555-8666-777777777777"),
        sales = guid("44444444-5555-4666-8777-888888888888"),
    )
}

/// The change made upstream between two syncs.
fn change_ldif() -> String {
    format!(
        "dn: cn=Jane Doe,ou=Staff,{SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Staff Engineer\n-\n\
         replace: department\ndepartment: Core\n-\n\n\
         dn: cn=Eve Example,ou=Staff,{SUFFIX}\nchangetype: delete\n\n\
         dn: cn=NATS Operators,ou=Groups,{SUFFIX}\nchangetype: modify\ndelete: member\n\
         member: cn=Bob Smith,ou=Staff,{SUFFIX}\n-\n\n\
         dn: cn=Sales,ou=Groups,{SUFFIX}\nchangetype: modify\nreplace: member\n\
         member: cn=Bob Smith,ou=Staff,{SUFFIX}\n-\n"
    )
}

/// OpenLDAP has no AD `name` attribute: groups' display name comes from `cn`.
fn mapping() -> Mapping {
    let file: MappingFile =
        serde_json::from_str(r#"{"roles": {"display_name": "cn"}}"#).expect("mapping");
    Mapping::with_overrides(Provider::Ad, &file).expect("valid mapping")
}

fn start() -> Slapd {
    let slapd = Slapd::start(SUFFIX, AD_TEST_SCHEMA).expect("slapd starts");
    slapd.ldapmodify(&seed_ldif(), true).expect("seed entries");
    slapd
}

fn source(slapd: &Slapd) -> LdapSource {
    LdapSource::new(
        &slapd.url(),
        SUFFIX,
        Some((slapd.bind_dn(), slapd.password().to_string())),
        Duration::from_secs(10),
    )
}

/// `warden dir sync --ldap URL …` against `slapd`: bound as its root DN (the password in a
/// 0600 file under the home) with the OpenLDAP mapping file (`map.yaml`), then `extra`.
fn ldap_sync_args(home: &Home, slapd: &Slapd, url: &str, extra: &[&str]) -> Vec<String> {
    let pw = home.path().join("ldap.pw");
    std::fs::write(&pw, format!("{}\n", slapd.password())).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let map_file = home.path().join("map.yaml");
    std::fs::write(&map_file, "roles:\n  display_name: cn\n").unwrap();
    let bind = slapd.bind_dn();
    [
        "dir",
        "sync",
        "--ldap",
        url,
        "--base",
        SUFFIX,
        "--bind-dn",
        &bind,
        "--password-file",
        pw.to_str().unwrap(),
        "--mapping",
        map_file.to_str().unwrap(),
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// `&str`s of `args`, for `Home::json` and friends.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn ids(v: &[warden_core::directory::NextUser]) -> Vec<&str> {
    v.iter().map(|u| u.id.as_str()).collect()
}

#[tokio::test]
async fn slapd_initial_sync_then_delta() {
    let slapd = start();
    let map = mapping();
    let first = read_ldap(&source(&slapd), "ad", &map)
        .await
        .expect("read slapd");
    assert!(first.skipped.is_empty(), "{:#?}", first.skipped);
    let s = &first.snapshot;
    assert_eq!(ids(&s.users), ["bsmith", "eve", "jdoe"]);
    let jane = s.users.iter().find(|u| u.id == "jdoe").unwrap();
    assert_eq!(
        jane.user_id.as_deref(),
        Some(JANE_GUID),
        "binary objectGUID as GUID string"
    );
    assert_eq!(jane.name.as_deref(), Some("Jane Doe"));
    assert_eq!(jane.given_name.as_deref(), Some("Jane"));
    assert_eq!(jane.job_title.as_deref(), Some("Platform Engineer"));
    assert_eq!(jane.department.as_deref(), Some("Platform"));
    assert_eq!(jane.company_name.as_deref(), Some("Example Corp"));
    assert_eq!(jane.country.as_deref(), Some("276"));
    assert_eq!(jane.employee_id.as_deref(), Some("E-1001"));
    assert_eq!(jane.business_phones, ["+49 30 1234"]);
    assert_eq!(jane.created_date.as_deref(), Some("20240102030405Z"));
    assert_eq!(jane.user_nickname.as_deref(), Some("Jane Doe"));
    assert_eq!(jane.manager.as_deref(), Some("bsmith"));
    assert_eq!(jane.member_of, ["nats_operators"]);
    assert_eq!(
        jane.distinguished_name.as_deref(),
        Some("cn=Jane Doe,ou=Staff,dc=corp,dc=example")
    );
    let ops = s.roles.iter().find(|r| r.name == "nats_operators").unwrap();
    assert_eq!(
        ops.role_id.as_deref(),
        Some("33333333-4444-4555-8666-777777777777")
    );
    assert_eq!(ops.display_name.as_deref(), Some("NATS Operators"));
    assert_eq!(ops.description.as_deref(), Some("Runs NATS"));
    assert_eq!(ops.members, ["bsmith", "jdoe"]);
    assert_eq!(ops.owners, ["bsmith"]);
    assert_eq!(ops.group_types, ["-2147483646"]);

    // Initial sync: everything is created; the same directory again plans nothing.
    let empty = DirectorySnapshot {
        source: "ad".into(),
        ..DirectorySnapshot::default()
    };
    let p = dirsync::plan_mapped(&empty, &first);
    assert_eq!((p.create_users.len(), p.create_roles.len()), (3, 2));
    let held = dirsync::plan::apply(&empty, &p);
    let again = read_ldap(&source(&slapd), "ad", &map)
        .await
        .expect("read again");
    assert!(plan(&held, &again.snapshot).is_empty(), "idempotent");

    // Upstream changes: Jane modified, Eve deleted, members of both groups changed.
    slapd
        .ldapmodify(&change_ldif(), false)
        .expect("change slapd");
    let second = read_ldap(&source(&slapd), "ad", &map)
        .await
        .expect("read after change");
    let d = dirsync::plan_mapped(&held, &second);
    assert!(d.skipped.is_empty(), "{:#?}", d.skipped);
    assert!(d.create_users.is_empty() && d.create_roles.is_empty() && d.delete_roles.is_empty());
    assert_eq!(d.delete_users, ["eve"]);
    assert_eq!(
        ids(&d.update_users),
        ["bsmith", "jdoe"],
        "bob's groups changed, jane's fields"
    );
    let jane = &d.update_users[1];
    assert_eq!(jane.job_title.as_deref(), Some("Staff Engineer"));
    assert_eq!(jane.department.as_deref(), Some("Core"));
    assert_eq!(jane.user_id.as_deref(), Some(JANE_GUID));
    assert_eq!(d.update_users[0].member_of, ["sales"]);
    let roles: Vec<(&str, Vec<&str>)> = d
        .update_roles
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.members.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("nats_operators", vec!["jdoe"]), ("sales", vec!["bsmith"])]
    );
    assert_eq!(d.unchanged, 0);

    // The same change as an LDIF delta applied to Warden's copy gives the same plan.
    let delta = dirsync::ldif_delta(&held, &map, &change_ldif()).expect("delta");
    let dp = dirsync::plan_mapped(&held, &delta);
    assert_eq!(dp.update_users, d.update_users);
    assert_eq!(dp.delete_users, d.delete_users);
    assert_eq!(dp.update_roles, d.update_roles);
}

#[tokio::test]
async fn slapd_unreachable_or_wrong_password_is_an_error() {
    let slapd = start();
    let mut src = source(&slapd);
    src.bind = Some((slapd.bind_dn(), "wrong".into()));
    let e = read_ldap(&src, "ad", &mapping()).await.unwrap_err();
    assert!(format!("{e:#}").contains("bind as cn=admin"), "{e:#}");
    let port = warden_testkit::free_port();
    let src = LdapSource {
        url: format!("ldap://127.0.0.1:{port}/"),
        ..source(&slapd)
    };
    let e = read_ldap(&src, "ad", &mapping()).await.unwrap_err();
    assert!(format!("{e:#}").contains("cannot connect"), "{e:#}");
}

#[tokio::test]
async fn cli_plans_from_slapd_and_exports_back_to_it() {
    let slapd = start();
    let home = Home::new();
    home.ok(&["init", "--name", "DIROP"]);
    let dir = home.path();
    let snap1 = dir.join("s1.json");
    let snap2 = dir.join("s2.json");
    let url = slapd.url();
    let with = |extra: &[&str]| ldap_sync_args(&home, &slapd, &url, extra);
    let args = with(&["--dry-run", "--snapshot-out", snap1.to_str().unwrap()]);
    let out: Value = home.json(&strs(&args));
    assert_eq!(out["report"]["users_created"], 3);
    assert_eq!(out["report"]["roles_created"], 2);
    assert_eq!(out["report"]["dry_run"], true);
    assert_eq!(
        out["plan"]["create_roles"][0]["display_name"],
        "NATS Operators"
    );

    // A bad mapping file is a usage error naming the problem (exit 2).
    std::fs::write(dir.join("bad.json"), r#"{"users": {"shoe_size": "x"}}"#).unwrap();
    let err = home.fails(
        2,
        &[
            "dir",
            "sync",
            "--ldif",
            "/dev/null",
            "--mapping",
            dir.join("bad.json").to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(err.contains("users.shoe_size: unknown NEXT field"), "{err}");

    // Upstream change, then a plan against the first snapshot.
    slapd
        .ldapmodify(&change_ldif(), false)
        .expect("change slapd");
    let args = with(&[
        "--dry-run",
        "--current",
        snap1.to_str().unwrap(),
        "--snapshot-out",
        snap2.to_str().unwrap(),
    ]);
    let out: Value = home.json(&strs(&args));
    let r = &out["report"];
    assert_eq!(
        (
            r["users_created"].as_u64(),
            r["users_updated"].as_u64(),
            r["users_deleted"].as_u64()
        ),
        (Some(0), Some(2), Some(1)),
        "{out:#}"
    );
    assert_eq!(r["roles_updated"], 2);
    assert_eq!(out["plan"]["delete_users"], serde_json::json!(["eve"]));

    // Warden confirms a change; export it as LDIF, apply it to slapd, sync: it is there.
    let changes = dir.join("changes.json");
    std::fs::write(
        &changes,
        r#"[{"change": "user_field", "user": "jdoe", "field": "job_title",
             "old": ["Staff Engineer"], "new": ["Principal Engineer"]},
            {"change": "user_field", "user": "jdoe", "field": "manager", "old": ["bsmith"], "new": []}]"#,
    )
    .unwrap();
    let ldif = home.ok(&[
        "dir",
        "export",
        "--ldif",
        "--changes",
        changes.to_str().unwrap(),
        "--current",
        snap2.to_str().unwrap(),
    ]);
    assert!(
        ldif.contains("changetype: modify\nreplace: title\ntitle: Principal Engineer\n-\n"),
        "{ldif}"
    );
    slapd
        .ldapmodify(&ldif, false)
        .expect("slapd accepts Warden's LDIF");
    let args = with(&["--dry-run", "--current", snap2.to_str().unwrap()]);
    let out: Value = home.json(&strs(&args));
    let updated = out["plan"]["update_users"].as_array().unwrap();
    assert_eq!(updated.len(), 1, "{out:#}");
    assert_eq!(updated[0]["id"], "jdoe");
    assert_eq!(updated[0]["job_title"], "Principal Engineer");
    assert_eq!(updated[0]["manager"], Value::Null);
}

#[test]
fn cli_graph_export_and_usage_errors() {
    let home = Home::new();
    home.ok(&["init", "--name", "DIROP"]);
    let fx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../warden-core/tests/fixtures/dirsync"
    );
    let users1 = format!("{fx}/graph_users_1.json");
    let users2 = format!("{fx}/graph_users_2.json");
    let groups = format!("{fx}/graph_groups.json");
    let snap = home.path().join("aad.json");
    let out = home.json(&[
        "dir",
        "sync",
        "--graph-users",
        &users1,
        "--graph-users",
        &users2,
        "--graph-groups",
        &groups,
        "--dry-run",
        "--snapshot-out",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(out["report"]["source"], "aad");
    assert_eq!(out["report"]["users_created"], 3);
    assert_eq!(out["report"]["skipped"].as_array().unwrap().len(), 3);
    // Delta pages against the saved snapshot.
    let out = home.json(&[
        "dir",
        "sync",
        "--delta",
        "--graph-users",
        &format!("{fx}/graph_users_delta.json"),
        "--graph-groups",
        &format!("{fx}/graph_groups_delta.json"),
        "--current",
        snap.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(out["plan"]["delete_users"], serde_json::json!(["leeg"]));
    assert_eq!(out["plan"]["create_users"][0]["id"], "nestorw");

    let changes = home.path().join("c.json");
    std::fs::write(
        &changes,
        r#"[{"change": "add_member", "role": "salesteam", "user": "adelev"}]"#,
    )
    .unwrap();
    let batch: Value = serde_json::from_str(&home.ok(&[
        "dir",
        "export",
        "--graph",
        "--changes",
        changes.to_str().unwrap(),
        "--current",
        snap.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(batch[0]["requests"][0]["method"], "POST");
    assert_eq!(
        batch[0]["requests"][0]["url"],
        "/groups/2f7d9c1e-0000-4000-8000-000000000001/members/$ref"
    );

    // A TOML mapping file ("" stops syncing a field, TOML having no null).
    let toml_map = home.path().join("map.toml");
    std::fs::write(
        &toml_map,
        "user_id_from = [\"displayName\"]\n[users]\njob_title = \"\"\nsurname = \"givenName\"\n",
    )
    .unwrap();
    let out = home.json(&[
        "dir",
        "sync",
        "--graph-users",
        &users1,
        "--graph-groups",
        &groups,
        "--mapping",
        toml_map.to_str().unwrap(),
        "--dry-run",
    ]);
    let adele = &out["plan"]["create_users"][0];
    assert_eq!(adele["id"], "adele_vance", "{out:#}");
    assert_eq!(adele["job_title"], Value::Null);
    assert_eq!(adele["surname"], "Adele");
    std::fs::write(&toml_map, "[users]\nshoe_size = \"x\"\n").unwrap();
    let e = home.fails(
        2,
        &[
            "dir",
            "sync",
            "--graph-users",
            &users1,
            "--graph-groups",
            &groups,
            "--mapping",
            toml_map.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(e.contains("users.shoe_size: unknown NEXT field"), "{e}");

    // Usage errors: no input, unreadable file, malformed LDIF, snapshot of another source.
    home.fails(2, &["dir", "sync", "--dry-run"]);
    let e = home.fails(
        2,
        &["dir", "sync", "--ldif", "/nonexistent.ldif", "--dry-run"],
    );
    assert!(e.contains("cannot read /nonexistent.ldif"), "{e}");
    let bad = home.path().join("bad.ldif");
    std::fs::write(&bad, "dn: cn=a\nobjectGUID:: !!\n").unwrap();
    let e = home.fails(
        2,
        &["dir", "sync", "--ldif", bad.to_str().unwrap(), "--dry-run"],
    );
    assert!(e.contains("line 2") && e.contains("base64"), "{e}");
    let e = home.fails(
        2,
        &[
            "dir",
            "sync",
            "--ldif",
            bad.to_str().unwrap(),
            "--current",
            snap.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(e.contains("holds source \"aad\""), "{e}");
}

/// How the governance `dir` group takes these commands in: `#[command(flatten)]` of
/// [`warden::cli::dirsync::DirSyncCmd`] beside its own subcommands.
#[test]
fn dir_sync_commands_flatten_into_a_dir_group() {
    use clap::{Parser, Subcommand};
    use warden::cli::dirsync::DirSyncCmd;

    #[derive(Subcommand, Debug)]
    #[allow(clippy::large_enum_variant)] // parsed once per process, as cli.rs's Command
    enum DirCmd {
        /// Stands for the governance helper's `dir user …`.
        User { id: String },
        #[command(flatten)]
        Sync(DirSyncCmd),
    }
    #[derive(Parser, Debug)]
    struct Top {
        #[command(subcommand)]
        dir: DirCmd,
    }
    let t = Top::try_parse_from(["x", "sync", "--ldif", "a.ldif", "--dry-run"]).expect("parses");
    assert!(matches!(t.dir, DirCmd::Sync(DirSyncCmd::Sync(ref a)) if a.dry_run));
    let t = Top::try_parse_from(["x", "user", "jdoe"]).expect("parses");
    assert!(matches!(t.dir, DirCmd::User { ref id } if id == "jdoe"));
    let e = Top::try_parse_from(["x", "export", "--changes", "c.json", "--current", "s.json"])
        .unwrap_err();
    assert!(e.to_string().contains("--ldif"), "{e}");
}

#[tokio::test]
async fn cli_applies_a_sync_and_exports_confirmed_proposals_back_to_slapd() {
    let slapd = start();
    let home = Home::new();
    home.ok(&["init", "--name", "DIROP"]);
    let dir = home.path();
    let sync_args = ldap_sync_args(&home, &slapd, &slapd.url(), &[]);
    let sync = strs(&sync_args);

    // Applied: the directory now holds the three users and two roles.
    let out = home.json(&sync);
    let r = &out["report"];
    assert_eq!(r["dry_run"], false, "{out:#}");
    assert_eq!(
        (r["users_created"].as_u64(), r["roles_created"].as_u64()),
        (Some(3), Some(2)),
        "{out:#}"
    );
    let users = home.json(&["dir", "user", "list"]);
    let listed = users.to_string();
    for id in ["bsmith", "jdoe", "eve"] {
        assert!(
            listed.contains(&format!("\"{id}\"")),
            "{id} missing: {users}"
        );
    }
    let role = out["plan"]["create_roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["display_name"] == "NATS Operators")
        .expect("the operators group")["name"]
        .as_str()
        .unwrap()
        .to_string();

    // Idempotent: the same directory again changes nothing.
    let again = home.json(&sync);
    let r = &again["report"];
    for k in [
        "users_created",
        "users_updated",
        "users_deleted",
        "roles_created",
        "roles_updated",
        "roles_deleted",
    ] {
        assert_eq!(r[k], 0, "{k}: {again:#}");
    }
    assert_eq!(r["unchanged"], 5, "{again:#}");

    // Nothing confirmed yet: nothing to export.
    let empty = home.json(&["dir", "export", "--ldif", "--source", "ad"]);
    assert_eq!(empty["body"], "version: 1\n", "{empty}");

    // Eve asks to join the operators; a non-owner cannot confirm, the owner (Bob,
    // managedBy upstream) does.
    let p = home.json(&[
        "propose",
        "role-member",
        "add",
        "--role",
        &role,
        "--user",
        "eve",
        "--as",
        "eve",
    ]);
    let id = p["id"].as_str().unwrap().to_string();
    let e = home.fails(1, &["confirm", &id, "--as", "jdoe"]);
    assert!(e.contains("may not"), "{e}");
    let c = home.json(&["confirm", &id, "--as", "bsmith"]);
    assert_eq!(c["status"], "confirmed", "{c}");

    // Exported as LDIF (only changes closed since a time in the future: none).
    let future = home.json(&[
        "dir",
        "export",
        "--ldif",
        "--source",
        "ad",
        "--since",
        "4102444800",
    ]);
    assert_eq!(future["body"], "version: 1\n", "{future}");
    let ldif = home.ok(&["dir", "export", "--ldif", "--source", "ad"]);
    assert!(ldif.contains("changetype: modify\nadd: member\n"), "{ldif}");
    assert!(ldif.contains("Eve Example"), "{ldif}");
    slapd
        .ldapmodify(&ldif, false)
        .expect("slapd accepts Warden's LDIF");

    // The next sync sees eve in the group upstream, as Warden already has her; then it is still.
    home.json(&sync);
    let shown = home.json(&["role", "show", &role]);
    assert!(shown.to_string().contains("\"eve\""), "{shown:#}");
    let last = home.json(&sync);
    let r = &last["report"];
    for k in [
        "users_created",
        "users_updated",
        "users_deleted",
        "roles_created",
        "roles_updated",
        "roles_deleted",
    ] {
        assert_eq!(r[k], 0, "{k}: {last:#}");
    }

    // A bad --current (a snapshot of another source) is a usage error and changes nothing.
    let before = (
        home.json(&["dir", "user", "list"]),
        home.json(&["role", "show", &role]),
    );
    let bad = dir.join("other.json");
    std::fs::write(&bad, r#"{"source": "aad", "users": [], "roles": []}"#).unwrap();
    let mut args: Vec<&str> = sync.to_vec();
    args.extend(["--current", bad.to_str().unwrap()]);
    let e = home.fails(2, &args);
    assert!(e.contains("not \"ad\""), "{e}");
    assert_eq!(
        (
            home.json(&["dir", "user", "list"]),
            home.json(&["role", "show", &role]),
        ),
        before
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it; (CA PEM, server cert PEM, key PEM).
fn tls_material() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.distinguished_name
        .push(DnType::CommonName, "Warden test directory CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    server
        .distinguished_name
        .push(DnType::CommonName, "dc1.corp.example");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).expect("server cert");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// LDAP over TLS, against slapd serving a certificate from a test CA: `ldaps://` and
/// StartTLS with `--ldap-ca` read the directory (the same plan as over plain LDAP); without
/// the CA the certificate is refused (exit 1, nothing written); flags that make no sense
/// together are usage errors.
#[test]
fn ldaps_and_starttls_verify_the_directory_certificate() {
    let (ca, cert, key) = tls_material();
    let slapd = Slapd::start_with_tls(SUFFIX, AD_TEST_SCHEMA, &cert, &key).expect("slapd starts");
    slapd.ldapmodify(&seed_ldif(), true).expect("seed entries");
    let home = Home::new();
    home.ok(&["init", "--name", "DIROP"]);
    let dir = home.path();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, tls_material().0).unwrap();
    let not_pem = dir.join("not-a-cert.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let ldaps = slapd.ldaps_url().expect("ldaps URL");
    let plain = slapd.url();
    let sync = |url: &str, extra: &[&str]| {
        let mut args = extra.to_vec();
        args.push("--dry-run");
        ldap_sync_args(&home, &slapd, url, &args)
    };
    let run_json = |args: Vec<String>| home.json(&strs(&args));
    let run_fails = |code: i32, args: Vec<String>| home.fails(code, &strs(&args));
    let ca_arg = ca_file.to_str().unwrap();

    let over_ldaps = run_json(sync(&ldaps, &["--ldap-ca", ca_arg]));
    assert_eq!(over_ldaps["report"]["users_created"], 3, "{over_ldaps}");
    assert_eq!(over_ldaps["report"]["roles_created"], 2, "{over_ldaps}");
    let over_starttls = run_json(sync(&plain, &["--ldap-starttls", "--ldap-ca", ca_arg]));
    let over_plain = run_json(sync(&plain, &[]));
    assert_eq!(over_ldaps["plan"], over_plain["plan"]);
    assert_eq!(over_starttls["plan"], over_plain["plan"]);

    // A CA that did not sign the directory's certificate, and the system's roots: refused.
    let before = home.ledger().len();
    for extra in [vec!["--ldap-ca", other_ca.to_str().unwrap()], vec![]] {
        let e = run_fails(1, sync(&ldaps, &extra));
        assert!(
            e.contains("cannot connect") && e.to_lowercase().contains("certificate"),
            "{e}"
        );
    }
    let e = run_fails(
        1,
        sync(
            &plain,
            &["--ldap-starttls", "--ldap-ca", other_ca.to_str().unwrap()],
        ),
    );
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert_eq!(home.ledger().len(), before, "a refused sync wrote nothing");

    // Usage errors: StartTLS on ldaps://, a CA for plain LDAP, a CA file that is no PEM.
    run_fails(2, sync(&ldaps, &["--ldap-starttls"]));
    run_fails(2, sync(&plain, &["--ldap-ca", ca_arg]));
    let e = run_fails(2, sync(&ldaps, &["--ldap-ca", not_pem.to_str().unwrap()]));
    assert!(e.contains("--ldap-ca"), "{e}");
    run_fails(2, sync("ldapx://127.0.0.1:1/", &[]));
}
