//! `warden export` and `warden import nsc`, end to end: the example organisation of
//! 11 services in 3 accounts is built with the CLI, exported as an nsc store, and
//! real nats-servers (2.9.10 and 2.15.x) loaded FROM THE EXPORTED FILES enforce
//! each service's permissions; every exported file is read back by nats-jwt and
//! verified; re-exports are byte-identical; an nsc store Warden did not make is
//! imported and served; bad input is refused without changing anything.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Home, connect};
use futures::StreamExt;
use nats_jwt::{
    Account, AccountClaims, Export, ExportType, Import, KeyKind, KeyPair, Operator, OperatorClaims,
    SigningKey, Subject, UserClaims, WeightedMapping, decode, parse_creds,
};
use serde_json::Value;
use warden_testkit::{NatsServer, NatsServerBinary};

const WAIT: Duration = Duration::from_secs(10);
const OPERATOR: &str = "thecowboyai";

/// The example's services: (account, user, own domain, related domain).
const SERVICES: [(&str, &str, &str, &str); 11] = [
    ("CORE", "organization-service", "organization", "person"),
    ("CORE", "person-service", "person", "location"),
    ("CORE", "location-service", "location", "organization"),
    ("CORE", "policy-service", "policy", "organization"),
    ("CORE", "agent-service", "agent", "person"),
    ("MEDIA", "audio-service", "audio", "video"),
    ("MEDIA", "document-service", "document", "audio"),
    ("MEDIA", "video-service", "video", "audio"),
    ("DEVELOPMENT", "git-service", "git", "nix"),
    ("DEVELOPMENT", "nix-service", "nix", "git"),
    ("DEVELOPMENT", "spaces-service", "spaces", "git"),
];

/// A home initialised for the example's operator (users named in kebab case, as the
/// seed spells them).
fn seed_home() -> Home {
    let home = Home::new();
    home.ok(&[
        "init",
        "--name",
        OPERATOR,
        "--operator-case",
        "snake",
        "--account",
        "OPS",
        "--user-case",
        "kebab",
    ]);
    home
}

/// Builds the organisation through Warden's CLI.
fn organisation() -> Home {
    let home = seed_home();
    for acc in ["CORE", "MEDIA", "DEVELOPMENT"] {
        home.ok(&["account", "add", acc]);
    }
    for (acc, user, domain, related) in SERVICES {
        let own = format!("{OPERATOR}.org.{domain}.>");
        let subs = format!("{own},{OPERATOR}.org.{related}.>");
        home.ok(&[
            "user",
            "add",
            user,
            "-a",
            acc,
            "--allow-pub",
            &own,
            "--allow-sub",
            &subs,
            "--allow-pub-response",
            "--payload",
            "1MiB",
        ]);
    }
    home
}

fn export(home: &Home, format: &str, out: &Path) -> Value {
    home.json(&[
        "export",
        "--format",
        format,
        "--out",
        out.to_str().expect("utf-8 path"),
    ])
}

/// Every file under `dir`: relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root");
                out.insert(
                    rel.to_string_lossy().to_string(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(dirs(&p));
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A nats-server configured from an exported nsc store only: the operator JWT file
/// and every `accounts/<A>/<A>.jwt` as the memory resolver's preload.
fn server_from_export(bin: &NatsServerBinary, store: &Path) -> NatsServer {
    let op_path = store.join(format!("{OPERATOR}.jwt"));
    let op = decode::<Operator>(&read(&op_path)).expect("operator JWT");
    let sys = op.nats.system_account.expect("system account");
    let mut preload = String::new();
    for e in std::fs::read_dir(store.join("accounts")).expect("accounts dir") {
        let dir = e.expect("entry").path();
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let jwt = read(&dir.join(format!("{name}.jwt")));
        let claims = decode::<Account>(&jwt).expect("account JWT");
        preload += &format!("  {}: \"{}\"\n", claims.sub, jwt);
    }
    let body = format!(
        "operator: \"{}\"\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n{preload}}}\n",
        op_path.display()
    );
    NatsServer::start_with_body(bin, &body).unwrap_or_else(|e| {
        panic!(
            "nats-server {} refused the exported store: {e}",
            bin.version
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_services_connect_with_exported_creds_and_the_server_enforces_their_permissions() {
    let home = organisation();
    let out = home.path().join("export");
    export(&home, "nsc", &out);
    let store = out.join("stores").join(OPERATOR);
    for bin in NatsServerBinary::all() {
        let v = bin.version.clone();
        let server = server_from_export(&bin, &store);
        let url = server.url();
        for (acc, user, domain, related) in SERVICES {
            let creds = read(
                &out.join("keys/creds")
                    .join(OPERATOR)
                    .join(acc)
                    .join(format!("{user}.creds")),
            );
            let mut c = connect(&url, &creds)
                .await
                .unwrap_or_else(|e| panic!("[{v}] {user} refused: {e}"));
            // Allowed: publish and subscribe on its own domain.
            let subject = format!("{OPERATOR}.org.{domain}.ping");
            let mut sub = c
                .client
                .subscribe(subject.clone())
                .await
                .expect("subscribe");
            c.client.flush().await.expect("flush");
            c.client
                .publish(subject.clone(), "hi".into())
                .await
                .expect("publish");
            c.client.flush().await.expect("flush");
            let msg = tokio::time::timeout(WAIT, sub.next())
                .await
                .unwrap_or_else(|_| panic!("[{v}] {user}: allowed message not delivered"))
                .expect("subscription open");
            assert_eq!(&msg.payload[..], b"hi");
            assert!(
                c.errors.try_recv().is_err(),
                "[{v}] {user}: no violation yet"
            );
            // Denied: it may subscribe to the related domain but not publish there.
            let denied = format!("{OPERATOR}.org.{related}.ping");
            c.client
                .publish(denied.clone(), "no".into())
                .await
                .expect("publish call");
            c.client.flush().await.expect("flush");
            let err = c
                .next_error(WAIT)
                .await
                .unwrap_or_else(|| panic!("[{v}] {user}: publish to {denied} was not refused"));
            let e = err.to_lowercase();
            assert!(
                e.contains("permissions violation")
                    && e.contains("publish")
                    && err.contains(&denied),
                "[{v}] {user}: {err}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_layout_modes_manifest_and_every_signature_verify() {
    let home = organisation();
    let out = home.path().join("export");
    let report = export(&home, "nsc", &out);
    assert_eq!(report["accounts"], 6, "{report}"); // OPS, SYS, BACKEND + 3 units
    let files = tree(&out);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest");

    // The manifest lists exactly the files on disk (itself excepted), sorted, 0600.
    let listed: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            assert_eq!(f["mode"], "0600", "{f}");
            f["path"].as_str().expect("path").to_string()
        })
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "manifest files are sorted");
    let on_disk: BTreeSet<String> = files
        .keys()
        .filter(|k| *k != "manifest.json")
        .cloned()
        .collect();
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), on_disk);
    for path in files.keys() {
        assert_eq!(mode(&out.join(path)), 0o600, "{path}");
    }
    for d in dirs(&out) {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }

    // Store: .nsc marker, operator self-signed, accounts trusted, users by their account.
    let store = out.join("stores").join(OPERATOR);
    assert_eq!(
        read(&store.join(".nsc")),
        format!(r#"{{"managed":false,"name":"{OPERATOR}","kind":"operator","version":"1"}}"#)
    );
    assert_eq!(
        read(&out.join("keys/.gitignore")),
        "# ignore all nk files \n**/*.nk\n# ignore all creds files\n**/*.creds\n"
    );
    let op_jwt = read(&store.join(format!("{OPERATOR}.jwt")));
    assert!(!op_jwt.ends_with('\n'), "raw token, no newline");
    let op: OperatorClaims = decode(&op_jwt).expect("operator verifies");
    assert_eq!(op.iss, op.sub);
    assert_eq!(op.name, OPERATOR);
    assert_eq!(manifest["operator"]["key"]["public_key"], op.sub.as_str());
    let stored = home
        .warden()
        .await
        .account_jwts()
        .await
        .expect("stored JWTs");
    let mut users_seen = 0;
    for (name, pk, jwt) in &stored {
        let dir = store.join("accounts").join(name);
        let file = read(&dir.join(format!("{name}.jwt")));
        assert_eq!(&file, jwt, "account {name}: the stored JWT, verbatim");
        let acc: AccountClaims = decode(&file).expect("account verifies");
        assert_eq!(&acc.sub, pk);
        assert_eq!(&acc.name, name);
        assert!(
            op.did_sign(&acc.iss, &acc.sub),
            "{name} signed by a trusted key"
        );
        for e in std::fs::read_dir(dir.join("users")).expect("users dir") {
            let p = e.expect("entry").path();
            let text = read(&p);
            assert!(!text.ends_with('\n'));
            let user: UserClaims = decode(&text).expect("user verifies");
            assert_eq!(p.file_stem().unwrap().to_string_lossy(), user.name);
            assert!(
                acc.check_user(&user).is_empty(),
                "{} issuer chain",
                user.name
            );
            // Its creds file parses, carries the same JWT and the seed of its key.
            let creds_path = out
                .join("keys/creds")
                .join(OPERATOR)
                .join(name)
                .join(format!("{}.creds", user.name));
            let creds = parse_creds(&read(&creds_path)).expect("creds parse");
            assert_eq!(creds.jwt, text);
            let seed = creds.seed.expect("seed in creds");
            let kp = KeyPair::from_seed(seed.expose()).expect("seed");
            assert_eq!(kp.public_key().as_str(), user.sub);
            users_seen += 1;
        }
    }
    assert_eq!(
        users_seen,
        11 + 5,
        "11 services + ops, sys and backend users"
    );

    // Every .nk seed matches the public key its file is named after, at keys/<K>/<XY>/.
    let mut nk = 0;
    for (path, bytes) in &files {
        if let Some(rest) = path.strip_prefix("keys/keys/") {
            let text = std::str::from_utf8(bytes).expect("ascii");
            assert_eq!(text.len(), 58, "{path}: the seed only, no newline");
            let kp = KeyPair::from_seed(text).expect("seed");
            let pk = kp.public_key().to_string();
            assert_eq!(rest, format!("{}/{}/{pk}.nk", &pk[..1], &pk[1..3]));
            nk += 1;
        }
    }
    // operator + its signing key + 6 accounts + 16 users
    assert_eq!(nk, 2 + 6 + 16);

    // Manifest: hierarchy and permissions, sorted by name.
    let accounts = manifest["accounts"].as_array().expect("accounts");
    let names: Vec<&str> = accounts
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let mut sorted_names = names.clone();
    sorted_names.sort();
    assert_eq!(names, sorted_names);
    for (acc, user, domain, related) in SERVICES {
        let a = accounts.iter().find(|a| a["name"] == acc).expect("account");
        let u = a["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == user)
            .expect("user in manifest");
        assert_eq!(
            u["permissions"]["pub"]["allow"],
            serde_json::json!([format!("{OPERATOR}.org.{domain}.>")])
        );
        assert_eq!(
            u["permissions"]["sub"]["allow"],
            serde_json::json!([
                format!("{OPERATOR}.org.{domain}.>"),
                format!("{OPERATOR}.org.{related}.>")
            ])
        );
        assert_eq!(u["permissions"]["resp"]["max"], 1);
        assert_eq!(u["payload"], 1 << 20);
        assert_eq!(u["issuer"], a["key"]["public_key"]);
        for key in ["jwt", "creds", "seed"] {
            let p = u[key].as_str().expect("path");
            assert!(files.contains_key(p), "{p}");
        }
    }

    // Flat: one creds file per user, no store or keystore.
    let flat = home.path().join("flat");
    let r = export(&home, "flat", &flat);
    assert_eq!(r["creds"], 16, "{r}");
    let ftree = tree(&flat);
    for (acc, user, _, _) in SERVICES {
        let p = format!("{acc}/{user}.creds");
        let creds = parse_creds(std::str::from_utf8(&ftree[&p]).unwrap()).expect("creds");
        assert!(creds.seed.is_some());
        assert_eq!(mode(&flat.join(&p)), 0o600);
    }
    assert!(
        ftree
            .keys()
            .all(|k| k.ends_with(".creds") || k == "manifest.json")
    );
    let fm: Value = serde_json::from_slice(&ftree["manifest.json"]).unwrap();
    assert_eq!(fm["format"], "flat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reexport_is_byte_identical_and_export_import_export_keeps_the_jwts() {
    let home = organisation();
    let out = home.path().join("export");
    export(&home, "nsc", &out);
    let first = tree(&out);
    let again = export(&home, "nsc", &out);
    assert_eq!(again["replaced_previous"], true);
    assert_eq!(again["removed"], 0);
    assert_eq!(
        tree(&out),
        first,
        "re-export of an unchanged store is byte-identical"
    );

    // A deleted user's files disappear on re-export; the rest stays as it was.
    home.ok(&["user", "delete", "spaces-service", "-a", "DEVELOPMENT"]);
    let r = export(&home, "nsc", &out);
    assert_eq!(r["removed"], 3, "{r}"); // its JWT, seed and creds
    let after = tree(&out);
    let user_jwt = format!("stores/{OPERATOR}/accounts/DEVELOPMENT/users/spaces-service.jwt");
    assert!(first.contains_key(&user_jwt) && !after.contains_key(&user_jwt));
    assert!(!out.join(&user_jwt).exists());
    let core_user = format!("stores/{OPERATOR}/accounts/CORE/users/person-service.jwt");
    assert_eq!(after[&core_user], first[&core_user]);

    // Export → import into a fresh home (SQLite) → export: the same JWTs and seeds.
    for (label, pg) in [
        ("sqlite", None),
        ("postgres", Some(warden_testkit::PgDatabase::create().await)),
    ] {
        let fresh = Home::new();
        let mut base = vec!["--json".to_string()];
        if let Some(db) = &pg {
            base.extend(["--database-url".to_string(), db.url().to_string()]);
        }
        let run = |args: &[&str]| {
            let mut full: Vec<&str> = base.iter().map(String::as_str).collect();
            full.extend_from_slice(args);
            let text = fresh.ok(&full);
            serde_json::from_str::<Value>(&text).expect("json")
        };
        let store = out.join("stores");
        let keys = out.join("keys");
        let report = run(&[
            "import",
            "nsc",
            "--store",
            store.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ]);
        assert_eq!(report["users"], 15, "[{label}] {report}");
        assert_eq!(
            report["not_carried"],
            serde_json::json!([]),
            "[{label}] {report}"
        );
        let out2 = fresh.path().join("export");
        run(&["export", "--out", out2.to_str().unwrap()]);
        let second = tree(&out2);
        let jwts = |t: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
            t.iter()
                .filter(|(k, _)| k.ends_with(".jwt") || k.ends_with(".nk") || k.ends_with(".creds"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert_eq!(
            jwts(&second),
            jwts(&after),
            "[{label}] identical JWTs, seeds, creds"
        );
        assert_eq!(second, after, "[{label}] even the manifest is identical");
        let status = run(&["status"]);
        assert_eq!(
            status["settings"]["naming"]["user"], "any",
            "[{label}] {status}"
        );
    }
}

fn subject(s: &str) -> Subject {
    Subject::new(s).expect("subject")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn write_seed(keys: &Path, kp: &KeyPair) {
    let pk = kp.public_key().to_string();
    write(
        &keys
            .join("keys")
            .join(&pk[..1])
            .join(&pk[1..3])
            .join(format!("{pk}.nk")),
        kp.seed().expose(),
    );
}

/// `jwt` with `nats.<field>` added, signed again by `signer`.
fn with_field(jwt: &str, signer: &KeyPair, field: &str, value: Value) -> String {
    use data_encoding::BASE64URL_NOPAD as B64;
    let mut parts = jwt.split('.');
    let header = parts.next().unwrap();
    let mut payload: Value =
        serde_json::from_slice(&B64.decode(parts.next().unwrap().as_bytes()).unwrap()).unwrap();
    payload["nats"][field] = value;
    let signed = format!(
        "{header}.{}",
        B64.encode(&serde_json::to_vec(&payload).unwrap())
    );
    let sig = signer.sign(signed.as_bytes());
    format!("{signed}.{}", B64.encode(&sig))
}

/// An nsc store as nsc lays it out, made with nats-jwt (not by Warden).
struct Foreign {
    store: PathBuf,
    keys: PathBuf,
    exporter: String,
    importer: String,
    signing_key: String,
    account_signing_key: String,
    alice_jwt: String,
    exporter_jwt: String,
}

fn foreign_store(root: &Path) -> Foreign {
    let op_name = "acme-ops";
    let store = root.join("stores").join(op_name);
    let keys = root.join("keys");
    std::fs::create_dir_all(keys.join("keys")).unwrap();
    let op = KeyPair::generate(KeyKind::Operator);
    let osk = KeyPair::generate(KeyKind::Operator);
    let sys = KeyPair::generate(KeyKind::Account);
    let exp = KeyPair::generate(KeyKind::Account);
    let ask = KeyPair::generate(KeyKind::Account);
    let scoped = KeyPair::generate(KeyKind::Account);
    let imp = KeyPair::generate(KeyKind::Account);
    let mut oc = OperatorClaims::new(&op.operator_public_key().unwrap(), op_name);
    oc.nats.signing_keys = vec![osk.operator_public_key().unwrap()];
    oc.nats.system_account = Some(sys.account_public_key().unwrap());
    write(
        &store.join(".nsc"),
        &format!(r#"{{"managed":false,"name":"{op_name}","kind":"operator","version":"1"}}"#),
    );
    write(
        &store.join(format!("{op_name}.jwt")),
        &oc.encode(&op).unwrap(),
    );

    let account =
        |name: &str, kp: &KeyPair, signer: &KeyPair, edit: &dyn Fn(&mut AccountClaims)| {
            let mut c = AccountClaims::new(&kp.account_public_key().unwrap(), name);
            edit(&mut c);
            let jwt = c.encode(signer).unwrap();
            write(
                &store
                    .join("accounts")
                    .join(name)
                    .join(format!("{name}.jwt")),
                &jwt,
            );
            jwt
        };
    let user = |acc: &str,
                name: &str,
                signer: &KeyPair,
                issuer_account: Option<&KeyPair>,
                edit: &dyn Fn(&mut UserClaims)| {
        let kp = KeyPair::generate(KeyKind::User);
        let mut c = UserClaims::new(&kp.user_public_key().unwrap(), name);
        c.nats.issuer_account = issuer_account.map(|a| a.account_public_key().unwrap());
        edit(&mut c);
        let jwt = c.encode(signer).unwrap();
        write(
            &store
                .join("accounts")
                .join(acc)
                .join("users")
                .join(format!("{name}.jwt")),
            &jwt,
        );
        (kp, jwt)
    };

    account("SYS", &sys, &op, &|_| {});
    let (sys_user, _) = user("SYS", "sys", &sys, None, &|_| {});
    // The exporter: signed by the operator signing key, with an account signing key,
    // a public service export and a subject mapping.
    let exporter_jwt = account("Exporter-Acct", &exp, &osk, &|c| {
        c.nats.signing_keys = vec![
            SigningKey::Plain(ask.account_public_key().unwrap()),
            SigningKey::Scoped(nats_jwt::UserScope {
                key: scoped.account_public_key().unwrap(),
                role: "reader".into(),
                template: nats_jwt::UserPermissionLimits::unlimited(),
            }),
        ];
        c.nats.exports = vec![Export::new(subject("svc.>"), ExportType::Service)];
        c.nats.mappings.insert(
            subject("old.x"),
            vec![WeightedMapping {
                subject: subject("new.x"),
                weight: None,
                cluster: None,
            }],
        );
    });
    let importer_jwt = account("importer", &imp, &op, &|c| {
        c.nats.imports = vec![Import::new(
            subject("svc.>"),
            exp.account_public_key().unwrap(),
            ExportType::Service,
        )];
    });
    // A field newer than the claim types Warden knows (2.11's message tracing).
    let importer_jwt = with_field(
        &importer_jwt,
        &op,
        "trace",
        serde_json::json!({"dest": "trace.x"}),
    );
    write(&store.join("accounts/importer/importer.jwt"), &importer_jwt);
    // alice: signed by the account signing key; bob: no seed in the keystore.
    let (alice, alice_jwt) = user("Exporter-Acct", "alice", &ask, Some(&exp), &|c| {
        c.nats.limits.permissions.subscribe.allow = vec![subject("svc.>")];
        // Replies go to the importer's reply subject, mapped (`_R_.…`) by the server.
        c.nats.limits.permissions.response =
            Some(nats_jwt::ResponsePermission { max: 1, ttl_ns: 0 });
    });
    let (_bob, _) = user("Exporter-Acct", "bob", &exp, None, &|_| {});
    // dave: signed by the scoped key, so its JWT is empty (the template applies).
    let (dave, _) = user("Exporter-Acct", "dave", &scoped, Some(&exp), &|c| {
        c.nats.limits = nats_jwt::UserPermissionLimits::default();
    });
    let (carol, _) = user("importer", "carol", &imp, None, &|_| {});
    for kp in [
        &op, &osk, &sys, &exp, &ask, &scoped, &imp, &sys_user, &alice, &carol, &dave,
    ] {
        write_seed(&keys, kp);
    }
    Foreign {
        store: root.join("stores"),
        keys,
        exporter: exp.public_key().to_string(),
        importer: imp.public_key().to_string(),
        signing_key: osk.public_key().to_string(),
        account_signing_key: ask.public_key().to_string(),
        alice_jwt,
        exporter_jwt,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_nsc_store_is_imported_reported_and_served() {
    let home = Home::new();
    let f = foreign_store(&home.path().join("nsc"));
    let report = home.json(&[
        "import",
        "nsc",
        "--store",
        f.store.to_str().unwrap(),
        "--keys",
        f.keys.to_str().unwrap(),
    ]);
    assert_eq!(report["operator"], "acme-ops");
    assert_eq!(
        report["signing_key"],
        f.signing_key.as_str(),
        "first signing key with a seed"
    );
    assert_eq!(report["users"], 5, "{report}");
    assert_eq!(report["naming"]["account"], "any");
    let problems = report["not_carried"].as_array().expect("not_carried");
    let has = |entity: &str, needle: &str| {
        problems
            .iter()
            .any(|p| p["entity"] == entity && p["issue"].as_str().unwrap().contains(needle))
    };
    assert!(
        has("user Exporter-Acct/bob", "user seed not in the keystore"),
        "{report}"
    );
    // Subject mappings are part of the account spec: carried, not reported.
    assert!(!has("account Exporter-Acct", "mappings"), "{report}");
    assert!(
        has("account importer", "unknown claim field nats.trace"),
        "{report}"
    );
    // dave, signed by the scoped key, is carried: an empty spec and the key recorded.
    assert!(
        !problems
            .iter()
            .any(|p| p["entity"] == "user Exporter-Acct/dave"),
        "{report}"
    );
    assert_eq!(problems.len(), 2, "nothing else is lost: {report}");

    // The claims survive: JWTs verbatim, specs decompiled, the signing key recorded.
    let w = home.warden().await;
    let exporter = w.account("Exporter-Acct").await.expect("exporter");
    assert_eq!(exporter.public_key, f.exporter);
    assert_eq!(exporter.jwt, f.exporter_jwt);
    assert_eq!(exporter.spec.exports[0].subject.as_str(), "svc.>");
    assert_eq!(exporter.spec.signing_keys.len(), 2);
    let importer = w.account("importer").await.expect("importer");
    assert_eq!(importer.public_key, f.importer);
    assert_eq!(importer.spec.imports[0].account.as_str(), f.exporter);
    let alice = w.user("Exporter-Acct", "alice").await.expect("alice");
    assert_eq!(alice.jwt.as_deref(), Some(f.alice_jwt.as_str()));
    assert_eq!(
        alice.spec.permissions.subscribe.allow,
        vec![subject("svc.>")]
    );
    let row = w
        .store()
        .user(&alice.public_key)
        .await
        .expect("row")
        .expect("alice row");
    assert_eq!(
        row.signing_key.as_deref(),
        Some(f.account_signing_key.as_str())
    );
    let ledger = w.store().ledger(0, 100).await.expect("ledger");
    assert!(ledger.iter().any(|e| e.action == "nsc.import"));
    drop(w);
    // bob has no seed, so no creds.
    home.fails(1, &["creds", "Exporter-Acct", "bob"]);
    // Exported again, every JWT is the one nsc's store held, byte for byte.
    let out = home.path().join("re-export");
    let r = export(&home, "nsc", &out);
    assert_eq!(
        r["users_without_seed"],
        serde_json::json!(["Exporter-Acct/bob"])
    );
    let original = tree(&f.store.join("acme-ops"));
    let exported = tree(&out.join("stores/acme-ops"));
    assert_eq!(original, exported);

    // Warden's own nats-config after the import serves the imported users, and the
    // service import from the exporter works across the two accounts.
    for bin in NatsServerBinary::all() {
        let v = bin.version.clone();
        let server = home.start_nats(&bin, &format!("imp-{v}"));
        let url = server.url();
        let alice = connect(&url, &home.ok(&["creds", "Exporter-Acct", "alice"]))
            .await
            .unwrap_or_else(|e| panic!("[{v}] alice refused: {e}"));
        let carol = connect(&url, &home.ok(&["creds", "importer", "carol"]))
            .await
            .unwrap_or_else(|e| panic!("[{v}] carol refused: {e}"));
        let mut requests = alice.client.subscribe("svc.echo").await.expect("subscribe");
        alice.client.flush().await.expect("flush");
        let responder = alice.client.clone();
        tokio::spawn(async move {
            while let Some(m) = requests.next().await {
                if let Some(reply) = m.reply {
                    let _ = responder.publish(reply, m.payload).await;
                    let _ = responder.flush().await;
                }
            }
        });
        // The importer's view of the export can lag the exporter's subscription by a
        // moment: 2.15 answers "no responders", 2.9 drops the request. Retry those two
        // cases only, each attempt bounded, all within 3 × WAIT.
        let deadline = tokio::time::Instant::now() + 3 * WAIT;
        let answer = loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                carol.client.request("svc.echo", "ping".into()),
            )
            .await;
            let last = tokio::time::Instant::now() >= deadline;
            match attempt {
                Ok(Ok(m)) => break m,
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders && !last => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) if !last => {}
                Ok(Err(e)) => panic!("[{v}] request failed: {e}"),
                Err(_) => panic!("[{v}] request timed out"),
            }
        };
        assert_eq!(&answer.payload[..], b"ping");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let home = Home::new();
    let nsc = home.path().join("nsc");
    let f = foreign_store(&nsc);
    let empty = home.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let s = f.store.to_str().unwrap();
    let k = f.keys.to_str().unwrap();
    let missing = home.path().join("missing");
    let m = missing.to_str().unwrap();
    let e = empty.to_str().unwrap();

    // Usage errors (exit 2): missing directories, not an nsc store, not a keystore.
    let err = home.fails(2, &["import", "nsc", "--store", m, "--keys", k]);
    assert!(err.contains("does not exist"), "{err}");
    let err = home.fails(2, &["import", "nsc", "--store", s, "--keys", m]);
    assert!(err.contains("does not exist"), "{err}");
    let err = home.fails(2, &["import", "nsc", "--store", e, "--keys", k]);
    assert!(err.contains("not an nsc store"), "{err}");
    let err = home.fails(2, &["import", "nsc", "--store", s, "--keys", e]);
    assert!(err.contains("not an nsc keystore"), "{err}");
    // Checked before any database is opened: none was created.
    assert!(
        !home.data_dir().join("warden.db").exists(),
        "a refused import left a database behind"
    );
    let err = home.fails(1, &["status"]);
    assert!(err.contains("no Warden database"), "{err}");

    // A store that already holds an operator: refused (exit 1), unchanged.
    home.ok(&["init", "--name", "MINE"]);
    let before = home.json(&["status"]);
    let err = home.fails(1, &["import", "nsc", "--store", s, "--keys", k]);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(home.json(&["status"]), before);

    // Export into a directory that holds something else: refused (exit 2), untouched.
    std::fs::write(empty.join("notes.txt"), "mine").unwrap();
    let err = home.fails(2, &["export", "--out", e]);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(tree(&empty).len(), 1);
    // Export from an uninitialised home: a failure (exit 1), nothing written.
    let other = Home::new();
    let target = other.path().join("x");
    other.fails(1, &["export", "--out", target.to_str().unwrap()]);
    assert!(!target.exists());

    // An nsc store without its system account: refused before anything is written.
    std::fs::remove_dir_all(f.store.join("acme-ops/accounts/SYS")).unwrap();
    let err = other.fails(2, &["import", "nsc", "--store", s, "--keys", k]);
    assert!(err.contains("system account"), "{err}");
    let status = other.json(&["status"]);
    assert_eq!(status["operator"], Value::Null, "{status}");
    assert_eq!(status["ledger_events"], 0);
}

/// `warden import nsc --store STORE --keys KEYS` in `home`, which must be refused as bad
/// input (exit 2) and leave the Warden store empty; the message.
fn import_refused(home: &Home, store: &Path, keys: &Path) -> String {
    let err = home.fails(
        2,
        &[
            "import",
            "nsc",
            "--store",
            store.to_str().expect("utf-8 path"),
            "--keys",
            keys.to_str().expect("utf-8 path"),
        ],
    );
    // A refusal found before the database is opened leaves none; one found while
    // reading the store leaves it empty.
    if home.data_dir().join("warden.db").exists() {
        let status = home.json(&["status"]);
        assert_eq!(status["operator"], Value::Null, "{status}");
        assert_eq!(status["accounts"], 0, "{status}");
        assert_eq!(status["users"], 0, "{status}");
        assert_eq!(status["ledger_events"], 0, "{status}");
    }
    err
}

/// Moves `from` to `to` and leaves a symbolic link to `to` in its place.
fn move_and_link(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::rename(from, to).unwrap();
    std::os::unix::fs::symlink(to, from).unwrap();
}

#[test]
fn an_operator_name_that_climbs_out_of_the_store_is_refused_and_nothing_is_written() {
    let home = Home::new();
    let f = foreign_store(&home.path().join("nsc"));
    let op_dir = f.store.join("acme-ops");
    // The operator JWT sits outside the store, where the marker's name leads
    // (stores/acme-ops/../../../elsewhere = the home).
    let elsewhere = home.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(op_dir.join("acme-ops.jwt"), elsewhere.join("ACME.jwt")).unwrap();
    write(
        &op_dir.join(".nsc"),
        r#"{"managed":false,"name":"../../../elsewhere/ACME","kind":"operator","version":"1"}"#,
    );
    let err = import_refused(&home, &f.store, &f.keys);
    assert!(
        err.contains("the operator name in")
            && err.contains(".nsc")
            && err.contains("\"../../../elsewhere/ACME\"")
            && err.contains("not a single file name"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
}

#[test]
fn symbolic_links_in_the_store_or_keystore_are_refused_and_nothing_is_written() {
    // Each case: a fresh store with one file or directory moved outside and linked
    // back, and the path the refusal must name.
    type Tamper = fn(&Foreign, &Path, &Path) -> String;
    let cases: [(&str, Tamper); 6] = [
        ("account JWT", |_, op, out| {
            let jwt = op.join("accounts/importer/importer.jwt");
            move_and_link(&jwt, &out.join("importer.jwt"));
            jwt.display().to_string()
        }),
        ("account directory", |_, op, out| {
            let dir = op.join("accounts/importer");
            move_and_link(&dir, &out.join("importer"));
            dir.display().to_string()
        }),
        ("user JWT", |_, op, out| {
            let jwt = op.join("accounts/importer/users/carol.jwt");
            move_and_link(&jwt, &out.join("carol.jwt"));
            jwt.display().to_string()
        }),
        ("account seed", |f, _, out| {
            let pk = &f.importer;
            let nk = f
                .keys
                .join("keys")
                .join(&pk[..1])
                .join(&pk[1..3])
                .join(format!("{pk}.nk"));
            move_and_link(&nk, &out.join("importer.nk"));
            nk.display().to_string()
        }),
        ("user creds (the fallback)", |f, op, out| {
            // carol's seed only in a creds file, and that file outside the keystore.
            let jwt = read(&op.join("accounts/importer/users/carol.jwt"));
            let pk = decode::<nats_jwt::User>(&jwt).expect("carol").sub;
            let nk = f
                .keys
                .join("keys")
                .join(&pk[..1])
                .join(&pk[1..3])
                .join(format!("{pk}.nk"));
            let seed = read(&nk);
            std::fs::remove_file(&nk).unwrap();
            let creds = f.keys.join("creds/acme-ops/importer/carol.creds");
            write(
                &creds,
                &nats_jwt::format_user_creds(&jwt, &nats_jwt::Seed::parse(seed.trim()).unwrap())
                    .unwrap(),
            );
            move_and_link(&creds, &out.join("carol.creds"));
            creds.display().to_string()
        }),
        ("operator directory in a stores root", |_, op, out| {
            move_and_link(op, &out.join("acme-ops"));
            op.display().to_string()
        }),
    ];
    for (what, tamper) in cases {
        let home = Home::new();
        let f = foreign_store(&home.path().join("nsc"));
        let outside = home.path().join("outside");
        let offending = tamper(&f, &f.store.join("acme-ops"), &outside);
        let err = import_refused(&home, &f.store, &f.keys);
        assert!(
            err.contains(&offending) && err.contains("is a symbolic link"),
            "{what}: the refusal must name {offending} and say why: {err}"
        );
        assert!(
            err.contains("reads nothing outside"),
            "{what}: the refusal must say why links are refused: {err}"
        );
    }
}

#[test]
fn an_oversized_user_jwt_is_refused_unread_and_nothing_is_written() {
    // A good store exported by Warden, then tampered with.
    let source = Home::new();
    source.ok(&["init", "--name", "ACME"]);
    source.ok(&["account", "add", "APP"]);
    source.ok(&["user", "add", "alice", "-a", "APP"]);
    let out = source.path().join("export");
    export(&source, "nsc", &out);
    let store = out.join("stores");
    let users = store.join("ACME/accounts/APP/users");
    assert!(users.join("alice.jwt").is_file(), "the export holds alice");
    // 300 MB that cost nothing to make: a sparse file.
    let huge = users.join("huge.jwt");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();

    let home = Home::new();
    let err = import_refused(&home, &store, &out.join("keys"));
    assert!(
        err.contains(&huge.display().to_string())
            && err.contains("larger than the 1 MiB an nsc file may be"),
        "{err}"
    );
    // The same store without it imports: the refusal was the file's size.
    std::fs::remove_file(&huge).unwrap();
    let report = home.json(&[
        "import",
        "nsc",
        "--store",
        store.to_str().unwrap(),
        "--keys",
        out.join("keys").to_str().unwrap(),
    ]);
    let exported = source.json(&["status"]);
    assert_eq!(report["users"], exported["users"], "{report}\n{exported}");
}

/// An account JWT under the 1 MiB file bound but over what nats-server accepts in a
/// resolver push stops the import: Warden would store an account it could never push.
#[test]
fn an_account_jwt_over_the_server_bound_is_refused_and_nothing_is_written() {
    let source = Home::new();
    source.ok(&["init", "--name", "ACME"]);
    source.ok(&["account", "add", "APP"]);
    let out = source.path().join("export");
    export(&source, "nsc", &out);
    let store = out.join("stores");
    let app = store.join("ACME/accounts/APP/APP.jwt");
    assert!(app.is_file(), "the export holds APP");
    std::fs::write(&app, "x".repeat(1_044_481)).unwrap();

    let home = Home::new();
    let err = import_refused(&home, &store, &out.join("keys"));
    assert!(
        err.contains("1044481 bytes") && err.contains("1044480"),
        "{err}"
    );
}

#[test]
fn bench_export_reports_its_figures() {
    let home = Home::new();
    let r = home.json(&["bench", "export", "--units", "3", "--users", "30"]);
    assert_eq!(r["users"], 30);
    // 30 users × (jwt + nk + creds) at least, plus accounts and the operator.
    assert!(r["files"].as_u64().unwrap() > 90, "{r}");
    assert!(r["export_seconds"].as_f64().unwrap() > 0.0);
    assert!(r["import_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn revoked_users_stay_in_the_nsc_export_as_nsc_keeps_them_and_leave_the_flat_one() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "alice", "-a", "APP"]);
    home.ok(&["user", "add", "bob", "-a", "APP"]);
    home.ok(&["user", "revoke", "bob", "-a", "APP"]);
    let out = home.path().join("export");
    export(&home, "nsc", &out);
    let files = tree(&out);
    assert!(files.contains_key("stores/ACME/accounts/APP/users/bob.jwt"));
    assert!(files.contains_key("keys/creds/ACME/APP/bob.creds"));
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let app = manifest["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "APP")
        .expect("APP");
    let user = |n: &str| {
        app["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == n)
            .cloned()
            .unwrap()
    };
    assert!(user("bob")["revoked_at"].as_i64().is_some());
    assert_eq!(user("alice")["revoked_at"], Value::Null);
    // The account JWT carries the revocation, so the server refuses bob anyway.
    let acc: AccountClaims = decode(&read(&out.join("stores/ACME/accounts/APP/APP.jwt"))).unwrap();
    let bob: UserClaims =
        decode(&read(&out.join("stores/ACME/accounts/APP/users/bob.jwt"))).unwrap();
    assert!(acc.nats.is_revoked(&bob.sub.parse().unwrap(), bob.iat));

    let flat = home.path().join("flat");
    export(&home, "flat", &flat);
    let ftree = tree(&flat);
    assert!(ftree.contains_key("APP/alice.creds"));
    assert!(
        !ftree.contains_key("APP/bob.creds"),
        "no creds for a revoked user"
    );

    // Imported back, bob is revoked in Warden too.
    let fresh = Home::new();
    fresh.json(&[
        "import",
        "nsc",
        "--store",
        out.join("stores").to_str().unwrap(),
        "--keys",
        out.join("keys").to_str().unwrap(),
    ]);
    let shown = fresh.json(&["user", "show", "bob", "-a", "APP"]);
    assert!(shown["revoked_at"].as_i64().is_some(), "{shown}");
}

/// The organisation example itself (`examples/organization.yaml`), applied with
/// `warden org apply` and exported: a nats-server loaded from the exported files
/// lets each of the 11 services publish and receive in its own domain and refuses
/// its publish into another service's domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organisation_example_applied_and_exported_is_enforced_by_nats_server() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/organization.yaml");
    let home = seed_home();
    let plan = home.json(&["org", "apply", example.to_str().expect("utf-8 path")]);
    let text = plan.to_string();
    for (acc, user, _, _) in SERVICES {
        assert!(
            text.contains(acc) && text.contains(user),
            "{acc}/{user} not in the plan"
        );
    }
    let out = home.path().join("export");
    export(&home, "nsc", &out);
    let store = out.join("stores").join(OPERATOR);
    for bin in NatsServerBinary::all() {
        let v = bin.version.clone();
        let server = server_from_export(&bin, &store);
        for (i, (acc, user, domain, _)) in SERVICES.iter().enumerate() {
            let creds = read(
                &out.join("keys/creds")
                    .join(OPERATOR)
                    .join(acc)
                    .join(format!("{user}.creds")),
            );
            let mut c = connect(&server.url(), &creds)
                .await
                .unwrap_or_else(|e| panic!("[{v}] {user} refused: {e}"));
            let own = format!("{OPERATOR}.org.{domain}.event");
            let mut sub = c.client.subscribe(own.clone()).await.expect("subscribe");
            c.client.flush().await.expect("flush");
            c.client
                .publish(own.clone(), "mine".into())
                .await
                .expect("publish");
            c.client.flush().await.expect("flush");
            let msg = tokio::time::timeout(WAIT, sub.next())
                .await
                .unwrap_or_else(|_| panic!("[{v}] {user}: message on {own} not delivered"))
                .expect("subscription open");
            assert_eq!(&msg.payload[..], b"mine");
            // Another service's domain (the next one in the list) is not this one's.
            let other = SERVICES[(i + 1) % SERVICES.len()].2;
            let denied = format!("{OPERATOR}.org.{other}.event");
            c.client
                .publish(denied.clone(), "not mine".into())
                .await
                .expect("publish call");
            c.client.flush().await.expect("flush");
            let err = c
                .next_error(WAIT)
                .await
                .unwrap_or_else(|| panic!("[{v}] {user}: publish to {denied} was not refused"));
            assert!(
                err.to_lowercase().contains("permissions violation") && err.contains(&denied),
                "[{v}] {user}: {err}"
            );
        }
    }
}
