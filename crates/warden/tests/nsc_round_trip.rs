//! nsc export → import → export without loss, for an operator that uses the whole
//! account model: several operator signing keys, accounts signed by them, a private
//! service export imported with an activation token, a public stream export imported
//! under a local subject, a revoked activation, plain and scoped account signing keys
//! (a role whose template uses `{{name()}}` and `{{tag(…)}}`), users signed by the
//! identity key, a plain key and a scoped key, a bearer user, a revoked user, subject
//! mappings with weights and a cluster, JetStream tiers, default permissions, account
//! tags and an info URL.
//!
//! The store is made with nats-jwt directly (as nsc would lay it out), imported into a
//! fresh Warden, exported; that export is imported into a second fresh Warden and
//! exported again: both exports are the same files, byte for byte (JWTs, seeds, creds,
//! manifest). Real nats-servers (2.9.10 and 2.15.x) configured by the imported Warden
//! let every kind of user connect and answer the private service across accounts.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Home, answered, connect};
use futures::StreamExt;
use nats_jwt::{
    ActivationClaims, Export, ExportType, Import, KeyKind, KeyPair, OperatorClaims, ResponseType,
    SigningKey, Subject, UserClaims, UserPermissionLimits, UserScope, WeightedMapping,
};
use serde_json::Value;
use warden_testkit::NatsServerBinary;

const OP: &str = "round-op";
const WAIT: Duration = Duration::from_secs(10);

fn subject(s: &str) -> Subject {
    Subject::new(s).expect("subject")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
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

struct Store {
    store: PathBuf,
    keys: PathBuf,
}

/// The nsc store described in the module docs.
fn whole_model_store(root: &Path) -> Store {
    let store = root.join("stores").join(OP);
    let keys = root.join("keys");
    std::fs::create_dir_all(keys.join("keys")).expect("keys");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let op = KeyPair::generate(KeyKind::Operator);
    let osk1 = KeyPair::generate(KeyKind::Operator);
    let osk2 = KeyPair::generate(KeyKind::Operator);
    let osk3 = KeyPair::generate(KeyKind::Operator);
    let sys = KeyPair::generate(KeyKind::Account);
    let svc = KeyPair::generate(KeyKind::Account);
    let app = KeyPair::generate(KeyKind::Account);
    let old = KeyPair::generate(KeyKind::Account);
    let plain = KeyPair::generate(KeyKind::Account);
    let scoped = KeyPair::generate(KeyKind::Account);
    let mut seeds = vec![
        op.clone(),
        osk1.clone(),
        osk2.clone(),
        osk3.clone(),
        sys.clone(),
        svc.clone(),
        app.clone(),
        old.clone(),
        plain.clone(),
        scoped.clone(),
    ];
    let mut oc = OperatorClaims::new(&op.operator_public_key().expect("op"), OP);
    oc.nats.signing_keys = [&osk1, &osk2, &osk3]
        .iter()
        .map(|k| k.operator_public_key().expect("osk"))
        .collect();
    oc.nats.system_account = Some(sys.account_public_key().expect("sys"));
    write(
        &store.join(".nsc"),
        &format!(r#"{{"managed":false,"name":"{OP}","kind":"operator","version":"1"}}"#),
    );
    write(
        &store.join(format!("{OP}.jwt")),
        &oc.encode(&op).expect("op jwt"),
    );

    let acc_path = |name: &str| {
        store
            .join("accounts")
            .join(name)
            .join(format!("{name}.jwt"))
    };
    let mut user = |acc: &str,
                    name: &str,
                    signer: &KeyPair,
                    issuer_account: Option<&KeyPair>,
                    edit: &dyn Fn(&mut UserClaims)| {
        let kp = KeyPair::generate(KeyKind::User);
        let mut c = UserClaims::new(&kp.user_public_key().expect("user"), name);
        c.nats.issuer_account = issuer_account.map(|a| a.account_public_key().expect("acc"));
        edit(&mut c);
        write(
            &store
                .join("accounts")
                .join(acc)
                .join("users")
                .join(format!("{name}.jwt")),
            &c.encode(signer).expect("user jwt"),
        );
        seeds.push(kp.clone());
        kp
    };

    // SYS, signed by the first operator signing key.
    let mut c = nats_jwt::AccountClaims::new(&sys.account_public_key().expect("sys"), "SYS");
    write(&acc_path("SYS"), &c.encode(&osk1).expect("sys jwt"));
    user("SYS", "sys", &sys, None, &|_| {});

    // The users of SVC first: the account revokes one of them.
    user("SVC", "responder", &svc, None, &|c| {
        c.nats.limits.permissions.subscribe.allow = vec![subject("svc.private.>")];
        c.nats.limits.permissions.response =
            Some(nats_jwt::ResponsePermission { max: 1, ttl_ns: 0 });
        c.nats.limits.permissions.publish.allow = vec![subject("events.>")];
    });
    user("SVC", "alice", &plain, Some(&svc), &|c| {
        c.nats.limits.permissions.publish.allow = vec![subject("alice.>")];
        c.nats.limits.subs = 10;
    });
    user("SVC", "worker", &scoped, Some(&svc), &|c| {
        c.nats.limits = UserPermissionLimits::default();
        c.nats.tags = vec!["team:blue".into()];
    });
    user("SVC", "bearer", &svc, None, &|c| {
        c.nats.limits.bearer_token = true;
    });
    let gone = user("SVC", "gone", &svc, None, &|_| {});

    // OLD's activation is issued, then revoked on the export.
    let mut old_act = ActivationClaims::new(
        &old.account_public_key().expect("old"),
        subject("svc.private.>"),
        ExportType::Service,
    );
    let old_token = old_act.encode(&svc).expect("old activation");
    let mut app_act = ActivationClaims::new(
        &app.account_public_key().expect("app"),
        subject("svc.private.>"),
        ExportType::Service,
    );
    app_act.nats.issuer_account = Some(svc.account_public_key().expect("svc"));
    let app_token = app_act.encode(&plain).expect("app activation");

    let mut c = nats_jwt::AccountClaims::new(&svc.account_public_key().expect("svc"), "SVC");
    let mut private = Export::new(subject("svc.private.>"), ExportType::Service);
    private.name = Some("private-service".into());
    private.token_req = true;
    private.response_type = Some(ResponseType::Singleton);
    private
        .revocations
        .insert(old.public_key().to_string(), now + 1);
    let mut public = Export::new(subject("events.>"), ExportType::Stream);
    public.name = Some("events".into());
    public.description = Some("what happens".into());
    c.nats.exports = vec![private, public];
    let mut template = UserPermissionLimits::default();
    template.permissions.publish.allow = vec![
        subject("work.{{name()}}.>"),
        subject("team.{{tag(team)}}.>"),
        subject("_INBOX.>"),
    ];
    template.permissions.subscribe.allow = vec![subject("work.{{name()}}.>"), subject("_INBOX.>")];
    template.subs = -1;
    template.data = -1;
    template.payload = -1;
    c.nats.signing_keys = vec![
        SigningKey::Plain(plain.account_public_key().expect("plain")),
        SigningKey::Scoped(UserScope {
            key: scoped.account_public_key().expect("scoped"),
            role: "worker".into(),
            template,
        }),
    ];
    c.nats.mappings.insert(
        subject("split"),
        vec![
            WeightedMapping {
                subject: subject("split.a"),
                weight: Some(60),
                cluster: None,
            },
            WeightedMapping {
                subject: subject("split.b"),
                weight: Some(40),
                cluster: None,
            },
        ],
    );
    c.nats.mappings.insert(
        subject("geo"),
        vec![WeightedMapping {
            subject: subject("geo.east"),
            weight: Some(100),
            cluster: Some("east".into()),
        }],
    );
    c.nats.limits.jetstream = nats_jwt::JetStreamLimits::default();
    let mut r1 = nats_jwt::JetStreamLimits::unlimited();
    r1.streams = 10;
    c.nats.limits.tiered_limits.insert("R1".into(), r1.clone());
    r1.streams = 3;
    c.nats.limits.tiered_limits.insert("R3".into(), r1);
    c.nats.default_permissions.publish.deny = vec![subject("secret.>")];
    c.nats.tags = vec!["env:test".into(), "team:core".into()];
    c.nats.info_url = Some("https://example.org/svc".into());
    c.nats.description = Some("the service account".into());
    c.nats
        .revocations
        .insert(gone.public_key().to_string(), now + 1);
    write(&acc_path("SVC"), &c.encode(&osk2).expect("svc jwt"));

    // APP imports the private service (with its activation) and the public stream.
    let mut c = nats_jwt::AccountClaims::new(&app.account_public_key().expect("app"), "APP");
    let mut svc_import = Import::new(
        subject("svc.private.>"),
        svc.account_public_key().expect("svc"),
        ExportType::Service,
    );
    svc_import.name = Some("private-service".into());
    svc_import.token = Some(app_token);
    let mut stream_import = Import::new(
        subject("events.>"),
        svc.account_public_key().expect("svc"),
        ExportType::Stream,
    );
    stream_import.name = Some("events".into());
    stream_import.local_subject = Some(subject("svc-events.>"));
    c.nats.imports = vec![svc_import, stream_import];
    write(&acc_path("APP"), &c.encode(&osk3).expect("app jwt"));
    user("APP", "client", &app, None, &|c| {
        c.nats.limits.permissions.subscribe.allow =
            vec![subject("_INBOX.>"), subject("svc-events.>")];
        c.nats.limits.permissions.publish.allow = vec![subject("svc.private.>")];
    });

    // OLD holds an activation the exporter revoked.
    let mut c = nats_jwt::AccountClaims::new(&old.account_public_key().expect("old"), "OLD");
    let mut revoked_import = Import::new(
        subject("svc.private.>"),
        svc.account_public_key().expect("svc"),
        ExportType::Service,
    );
    revoked_import.token = Some(old_token);
    c.nats.imports = vec![revoked_import];
    write(&acc_path("OLD"), &c.encode(&osk2).expect("old jwt"));
    user("OLD", "stale", &old, None, &|_| {});

    for kp in &seeds {
        write_seed(&keys, kp);
    }
    Store {
        store: root.join("stores"),
        keys,
    }
}

fn import(home: &Home, store: &Path, keys: &Path) -> Value {
    home.json(&[
        "import",
        "nsc",
        "--store",
        store.to_str().expect("utf-8"),
        "--keys",
        keys.to_str().expect("utf-8"),
    ])
}

fn export(home: &Home, out: &Path) -> Value {
    home.json(&[
        "export",
        "--format",
        "nsc",
        "--out",
        out.to_str().expect("utf-8"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_account_model_survives_export_import_export_byte_for_byte() {
    let first = Home::new();
    let s = whole_model_store(&first.path().join("nsc"));
    let report = import(&first, &s.store, &s.keys);
    assert_eq!(report["users"], 8, "{report}");
    assert_eq!(
        report["not_carried"],
        serde_json::json!([]),
        "nothing of the account model is lost: {report}"
    );
    let out1 = first.path().join("export-1");
    export(&first, &out1);

    // The scoped user keeps its signing key and an empty spec (the template applies).
    let w = first.warden().await;
    let worker = w.user("SVC", "worker").await.expect("worker");
    let row = w
        .store()
        .user(&worker.public_key)
        .await
        .expect("row")
        .expect("worker row");
    assert!(row.signing_key.is_some(), "scoped key recorded");
    assert!(worker.spec.permissions.is_empty());
    assert_eq!(worker.spec.tags, vec!["team:blue".to_string()]);
    let svc = w.account("SVC").await.expect("svc");
    assert_eq!(svc.spec.mappings.len(), 2);
    assert_eq!(svc.spec.limits.jetstream_tiers.len(), 2);
    assert_eq!(svc.spec.tags.len(), 2);
    drop(w);

    let second = Home::new();
    let report2 = import(&second, &out1.join("stores"), &out1.join("keys"));
    assert_eq!(report2["not_carried"], serde_json::json!([]), "{report2}");
    let out2 = second.path().join("export-2");
    export(&second, &out2);
    let (t1, t2) = (tree(&out1), tree(&out2));
    assert_eq!(
        t1.keys().collect::<Vec<_>>(),
        t2.keys().collect::<Vec<_>>(),
        "same files"
    );
    for (path, bytes) in &t1 {
        assert!(
            t2.get(path) == Some(bytes),
            "{path} differs between the two exports"
        );
    }
    // The nsc store's JWTs are the original ones, byte for byte.
    let original = tree(&s.store.join(OP));
    let exported = tree(&out1.join("stores").join(OP));
    assert_eq!(original, exported);

    // Served: every kind of user connects, the private service answers across
    // accounts, the public stream reaches the importer under its local subject.
    let queued = second.json(&["status"])["outbox_pending"]
        .as_i64()
        .unwrap_or(0);
    assert!(queued > 0, "the import queued its ledger events");
    for bin in NatsServerBinary::all() {
        let v = bin.version.clone();
        let server = second.start_nats(&bin, &format!("rt-{v}"));
        // The rendered config preloads every stored account JWT; `warden push` delivers
        // them too (and what the import queued), though an nsc store has no Warden
        // service user: the change stream is then not published, nothing fails.
        let url = server.url();
        let pushed = second.push(&url);
        assert_eq!(pushed["events_published"], 0, "[{v}] {pushed}");
        assert_eq!(
            second.json(&["status"])["outbox_pending"],
            0,
            "[{v}] nothing left undelivered"
        );
        let creds = |acc: &str, user: &str| second.ok(&["creds", acc, user]);
        let responder = connect(&url, &creds("SVC", "responder"))
            .await
            .unwrap_or_else(|e| panic!("[{v}] responder refused: {e}"));
        for (acc, user) in [("SVC", "alice"), ("SVC", "worker"), ("SVC", "bearer")] {
            connect(&url, &creds(acc, user))
                .await
                .unwrap_or_else(|e| panic!("[{v}] {acc}/{user} refused: {e}"));
        }
        let client = connect(&url, &creds("APP", "client"))
            .await
            .unwrap_or_else(|e| panic!("[{v}] client refused: {e}"));
        let mut requests = responder
            .client
            .subscribe("svc.private.echo")
            .await
            .expect("subscribe");
        responder.client.flush().await.expect("flush");
        let r = responder.client.clone();
        tokio::spawn(async move {
            while let Some(m) = requests.next().await {
                if let Some(reply) = m.reply {
                    let _ = r.publish(reply, "pong".into()).await;
                    let _ = r.flush().await;
                }
            }
        });
        let answer = answered(&client.client, "svc.private.echo", 3 * WAIT).await;
        assert_eq!(&answer.payload[..], b"pong", "[{v}]");

        // The public stream reaches the importer under its local subject. Interest
        // crosses the import on the server's schedule: publish until one arrives.
        let mut events = client
            .client
            .subscribe("svc-events.>")
            .await
            .expect("subscribe events");
        client.client.flush().await.expect("flush");
        let deadline = tokio::time::Instant::now() + 3 * WAIT;
        let event = loop {
            responder
                .client
                .publish("events.started", "up".into())
                .await
                .expect("publish event");
            responder.client.flush().await.expect("flush");
            match tokio::time::timeout(Duration::from_millis(500), events.next()).await {
                Ok(Some(m)) => break m,
                _ => assert!(
                    tokio::time::Instant::now() < deadline,
                    "[{v}] the stream import delivered nothing"
                ),
            }
        };
        assert_eq!(event.subject.as_str(), "svc-events.started", "[{v}]");

        // The revoked user is refused; the account whose activation was revoked has
        // no import (its request finds no responders).
        assert!(
            connect(&url, &creds("SVC", "gone")).await.is_err(),
            "[{v}] revoked user connected"
        );
        let stale = connect(&url, &creds("OLD", "stale"))
            .await
            .unwrap_or_else(|e| panic!("[{v}] stale refused: {e}"));
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            stale.client.request("svc.private.echo", "x".into()),
        )
        .await;
        assert!(
            !matches!(r, Ok(Ok(_))),
            "[{v}] a revoked activation still reaches the service"
        );
    }
}
