//! Auth callout end to end on a real nats-server 2.15.1 that Warden configured:
//! directory users connect with the callout account's sentinel creds plus an OIDC ID
//! token (keys and JWKS made here) or their LDAP password (a real slapd), and get
//! exactly their task grants, enforced by the server; bad tokens, wrong passwords and
//! users without grants are refused; a grant removed by a confirmed proposal is gone at
//! the next connect; sealing (xkey) on and off; two responders, one killed; no
//! responder at all; and nats-server 2.9.10, which has no auth callout, refused clearly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Client, Home};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, Slapd};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "nats";

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// A test identity provider: an ES256 and an Ed25519 key, and the JWKS publishing both.
struct Idp {
    ec: rcgen::KeyPair,
    ed: rcgen::KeyPair,
}

#[derive(Clone, Copy)]
enum Alg {
    Es256,
    EdDsa,
}

impl Idp {
    fn new() -> Idp {
        Idp {
            ec: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key"),
            ed: rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key"),
        }
    }

    fn jwks(&self) -> Value {
        // An uncompressed P-256 point: 0x04 || x || y.
        let point = self.ec.public_key_raw();
        json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig",
             "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA", "use": "sig",
             "x": b64(self.ed.public_key_raw())},
        ]})
    }

    /// An ID token for `sub`, valid from `nbf` to `exp` (unix seconds).
    fn token(&self, alg: Alg, claims: Value) -> String {
        let (header, key) = match alg {
            Alg::Es256 => {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                h.kid = Some("ec-1".into());
                let k = jsonwebtoken::EncodingKey::from_ec_der(&self.ec.serialize_der());
                (h, k)
            }
            Alg::EdDsa => {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
                h.kid = Some("ed-1".into());
                let k = jsonwebtoken::EncodingKey::from_ed_der(&self.ed.serialize_der());
                (h, k)
            }
        };
        jsonwebtoken::encode(&header, &claims, &key).expect("sign ID token")
    }

    fn valid(&self, alg: Alg, sub: &str) -> String {
        let now = unix_now();
        self.token(
            alg,
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 600}),
        )
    }
}

/// The directory: `admin` (system administrator), `ada` in role `sales` (task `orders`
/// in APP), `carol` in `sales` and `ops` (task `ops` in OPS), `bob` with no grants.
fn directory(home: &Home) {
    home.ok(&["init", "--name", "CALLOUTOP"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["account", "add", "OPS"]);
    home.ok(&["dir", "user", "add", "admin", "--name", "Ada Admin"]);
    for (id, name) in [("ada", "Ada Lovelace"), ("bob", "Bob"), ("carol", "Carol")] {
        home.ok(&["dir", "user", "add", id, "--name", name, "--as", "admin"]);
    }
    for (task, account, subject, deny) in [
        ("orders", "APP", "orders.>", Some("orders.secret")),
        ("ops", "OPS", "ops.>", None),
    ] {
        let mut args = vec![
            "task",
            "create",
            task,
            "--account",
            account,
            "--allow-pub",
            subject,
            "--allow-sub",
            subject,
            "--owner",
            "admin",
            "--as",
            "admin",
        ];
        if let Some(d) = deny {
            args.extend(["--deny-pub", d]);
        }
        home.ok(&args);
    }
    for (role, task) in [("sales", "orders"), ("ops", "ops")] {
        home.ok(&["role", "create", role, "--owner", "admin", "--as", "admin"]);
        let p = home.json(&[
            "propose",
            "role-task",
            "add",
            "--role",
            role,
            "--task",
            task,
            "--as",
            "admin",
        ]);
        home.ok(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
    }
    for (role, user) in [("sales", "ada"), ("sales", "carol"), ("ops", "carol")] {
        let p = home.json(&[
            "propose",
            "role-member",
            "add",
            "--role",
            role,
            "--user",
            user,
            "--as",
            "admin",
        ]);
        home.ok(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
    }
}

/// What a callout client presents besides the sentinel creds.
enum Presented<'a> {
    Nothing,
    Token(&'a str),
    Password(&'a str, &'a str),
}

/// Connects with the sentinel creds and `presented`; the refusal text on refusal.
async fn connect_as(url: &str, sentinel: &str, presented: Presented<'_>) -> Result<Client, String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut opts = async_nats::ConnectOptions::with_credentials(sentinel)
        .map_err(|e| format!("bad creds: {e}"))?
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(Some(0));
    opts = match presented {
        Presented::Nothing => opts,
        Presented::Token(t) => opts.token(t.to_string()),
        Presented::Password(u, p) => opts.user_and_password(u.to_string(), p.to_string()),
    };
    match tokio::time::timeout(Duration::from_secs(10), opts.connect(url)).await {
        Ok(Ok(client)) => Ok(Client { client, errors: rx }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

/// Requires a refusal, and that the server logged why (its log carries the reason
/// Warden's response gave); `why` is a fragment of that reason.
async fn refused(
    server: &NatsServer,
    url: &str,
    sentinel: &str,
    presented: Presented<'_>,
    why: &str,
    what: &str,
) {
    match connect_as(url, sentinel, presented).await {
        Ok(_) => panic!("{what}: admitted"),
        Err(e) => assert!(e.to_lowercase().contains("authorization"), "{what}: {e}"),
    }
    assert!(
        server.wait_for_log(why, Duration::from_secs(10)),
        "{what}: the server log does not say {why:?}:\n{}",
        server.log()
    );
}

/// A `warden callout run` child (logging at trace level into a file), killed on drop.
struct Responder {
    child: Child,
    log: std::path::PathBuf,
}

impl Responder {
    fn start(home: &Home, url: &str) -> Responder {
        Responder::start_with(home, &["--nats", url])
    }

    /// `warden callout run ARGS… --summary-every 1s`, once it says it answers.
    fn start_with(home: &Home, args: &[&str]) -> Responder {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = home.path().join(format!("responder-{n}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--data-dir")
            .arg(home.data_dir())
            .args(["callout", "run", "--summary-every", "1s"])
            .args(args)
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env("WARDEN_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("responder log file"))
            .spawn()
            .expect("start warden callout run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("warden callout run said it answers");
        assert!(line.starts_with("warden callout: answering on"), "{line}");
        Responder { child, log }
    }

    /// What it logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait (bounded) for a clean exit.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "callout run exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("callout run did not stop on SIGTERM");
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Connects until admitted (the responder's subscription reaches the server on its own
/// schedule), within a bound.
async fn admitted(url: &str, sentinel: &str, token: &str, what: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect_as(url, sentinel, Presented::Token(token)).await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "{what}: never admitted: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn decisions(home: &Home) -> Vec<Value> {
    home.ledger()
        .into_iter()
        .filter(|e| e["action"] == "callout.decisions")
        .collect()
}

/// Sets up the callout with an OIDC authenticator on a fresh directory and starts a
/// 2.15 server with the callout account pushed: (home, server, sentinel creds, idp).
async fn oidc_world(xkey: bool) -> (Home, NatsServer, String, Idp) {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    directory(&home);
    let mut setup = vec![
        "callout",
        "setup",
        "--allowed-account",
        "APP",
        "--allowed-account",
        "OPS",
    ];
    if xkey {
        setup.push("--xkey");
    }
    let v = home.json(&setup);
    assert_eq!(v["account"], "AUTH", "{v}");
    assert_eq!(v["xkey"].is_string(), xkey, "{v}");
    assert_eq!(v["allowed_accounts"], json!(["APP", "OPS"]), "{v}");

    let idp = Idp::new();
    let jwks = home.path().join("jwks.json");
    std::fs::write(&jwks, idp.jwks().to_string()).expect("write JWKS");
    let a = home.json(&[
        "callout",
        "auth",
        "add",
        "oidc",
        "idp",
        "--jwks",
        jwks.to_str().unwrap(),
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
    ]);
    assert_eq!(a["kind"], "oidc", "{a}");
    home.ok(&[
        "callout",
        "sentinel",
        "-o",
        home.path().join("sentinel.creds").to_str().unwrap(),
    ]);
    let sentinel = home.creds_file("sentinel.creds");

    // The callout account's JWT carries the authorization block the server enforces.
    let jwt = home.ok(&["jwt", "AUTH", "callout"]);
    assert!(jwt.starts_with("eyJ"), "{jwt}");
    let server = home.start_nats(&bin, "callout");
    home.push(&server.url());
    (home, server, sentinel, idp)
}

async fn oidc_scenario(xkey: bool) {
    let (home, server, sentinel, idp) = oidc_world(xkey).await;
    let url = server.url();
    let status = home.json(&["callout", "status"]);
    let shown = home.json(&["account", "show", "AUTH"]);
    let claims = nats_jwt::decode::<nats_jwt::Account>(shown["jwt"].as_str().unwrap())
        .expect("the callout account's JWT decodes");
    let auth = &claims.nats.authorization;
    assert_eq!(
        auth.auth_users,
        vec![status["responder_key"].as_str().unwrap().to_string()]
    );
    let keys: Vec<String> = ["APP", "OPS"]
        .iter()
        .map(|a| {
            home.json(&["account", "show", a])["public_key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(auth.allowed_accounts, keys);
    assert_eq!(auth.xkey.is_some(), xkey);
    assert_eq!(auth.xkey.as_deref(), status["xkey"].as_str());
    let responder = Responder::start(&home, &url);

    // Ada, with a valid token from either key, gets exactly her grants in APP.
    let ada = idp.valid(Alg::Es256, "ada");
    let mut client = admitted(&url, &sentinel, &ada, "ada (ES256)").await;
    client
        .publish_delivered("orders.new", "ada may use orders")
        .await;
    client
        .publish_refused("orders.secret", "the task denies orders.secret")
        .await;
    client
        .publish_refused("ops.restart", "ada holds nothing in OPS")
        .await;
    drop(client);
    let mut client = connect_as(
        &url,
        &sentinel,
        Presented::Token(&idp.valid(Alg::EdDsa, "ada")),
    )
    .await
    .expect("ada (EdDSA) admitted");
    client
        .publish_delivered("orders.eddsa", "EdDSA token")
        .await;
    drop(client);

    // Bad tokens, unknown and ungranted users: refused, the server says why.
    let now = unix_now();
    let cases = [
        (
            json!({"iss": ISSUER, "aud": "someone-else", "sub": "ada", "exp": now + 600}),
            "audience",
            "wrong audience",
        ),
        (
            json!({"iss": "https://evil.example.test", "aud": AUDIENCE, "sub": "ada", "exp": now + 600}),
            "issuer",
            "wrong issuer",
        ),
        (
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "exp": now - 120}),
            "expired",
            "expired token",
        ),
        (
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "nbf": now + 3600, "exp": now + 7200}),
            "not valid before",
            "token not yet valid",
        ),
        (
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "zed", "exp": now + 600}),
            "is not a directory user",
            "unknown user",
        ),
        (
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bob", "exp": now + 600}),
            "holds no task",
            "user without grants",
        ),
    ];
    for (claims, why, what) in cases {
        let token = idp.token(Alg::Es256, claims);
        refused(
            &server,
            &url,
            &sentinel,
            Presented::Token(&token),
            why,
            what,
        )
        .await;
    }
    // A token signed by a key the JWKS does not hold.
    let other = Idp::new();
    refused(
        &server,
        &url,
        &sentinel,
        Presented::Token(&other.valid(Alg::Es256, "ada")),
        "signature",
        "foreign key",
    )
    .await;
    // The sentinel alone may not connect.
    refused(
        &server,
        &url,
        &sentinel,
        Presented::Nothing,
        "no authenticator accepts",
        "sentinel without credentials",
    )
    .await;
    // Carol holds tasks in two accounts: a token cannot say which.
    refused(
        &server,
        &url,
        &sentinel,
        Presented::Token(&idp.valid(Alg::Es256, "carol")),
        "several accounts",
        "ambiguous account",
    )
    .await;

    // Users with creds issued in advance do not go through the callout.
    home.ok(&[
        "user",
        "add",
        "svc",
        "-a",
        "APP",
        "--allow-pub",
        "orders.>",
        "--allow-sub",
        "orders.>",
    ]);
    home.push(&url);
    let mut svc = common::connect(&url, &home.ok(&["creds", "APP", "svc"]))
        .await
        .expect("a creds user connects");
    svc.publish_delivered("orders.svc", "creds user").await;

    // A grant removed by a confirmed proposal is gone at the next connect.
    let p = home.json(&[
        "propose",
        "role-member",
        "remove",
        "--role",
        "sales",
        "--user",
        "ada",
        "--as",
        "admin",
    ]);
    home.ok(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
    refused(
        &server,
        &url,
        &sentinel,
        Presented::Token(&idp.valid(Alg::Es256, "ada")),
        "directory user ada holds no task",
        "ada after her membership was removed",
    )
    .await;

    // Decisions are summarised in the ledger (no row per attempt), never with a token.
    let mut responder = responder;
    responder.stop();
    let events = decisions(&home);
    assert!(!events.is_empty(), "no callout.decisions event");
    assert!(
        events.len() < 12,
        "one ledger row per attempt: {}",
        events.len()
    );
    let allowed: u64 = events
        .iter()
        .map(|e| e["summary"]["allowed"].as_u64().unwrap_or(0))
        .sum();
    assert!(allowed >= 2, "{events:?}");
    let refused_codes: Vec<String> = events
        .iter()
        .flat_map(|e| {
            e["summary"]["refused"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    for code in [
        "bad_credentials",
        "unknown_user",
        "no_grants",
        "no_credentials",
        "ambiguous_account",
    ] {
        assert!(
            refused_codes.iter().any(|c| c == code),
            "{code} missing: {events:?}"
        );
    }
    let ledger = serde_json::to_string(&home.ledger()).unwrap();
    assert!(!ledger.contains(&ada), "an ID token reached the ledger");
    let log = responder.log();
    assert!(
        log.contains("refused"),
        "the responder logged nothing: {log}"
    );
    // Each token's signature is unique to it: none may be in the log.
    let signature = ada.rsplit('.').next().unwrap();
    assert!(
        !log.contains(signature),
        "an ID token reached the responder's log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_callout_without_xkey_2_15() {
    oidc_scenario(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_callout_sealed_with_xkey_2_15() {
    oidc_scenario(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_password_callout_2_15() {
    const SUFFIX: &str = "dc=callout,dc=example";
    let slapd = Slapd::start(SUFFIX, "").expect("slapd starts");
    slapd
        .ldapmodify(
            &format!(
                "dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
                 dn: uid=ada,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: ada\ncn: Ada\nsn: Lovelace\nuserPassword: ada-secret-pw\n\n\
                 dn: uid=carol,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\nuserPassword: carol-pw\n"
            ),
            true,
        )
        .expect("seed people");
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    directory(&home);
    home.ok(&["callout", "setup"]);
    let pw = home.path().join("bind.pw");
    std::fs::write(&pw, format!("{}\n", slapd.password())).unwrap();
    let base = format!("ou=people,{SUFFIX}");
    let a = home.json(&[
        "callout",
        "auth",
        "add",
        "ldap",
        "corp",
        "--url",
        &slapd.url(),
        "--base",
        &base,
        "--bind-dn",
        &slapd.bind_dn(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(a["has_secret"], true, "{a}");
    // The bind password is sealed: never shown, never in the ledger.
    let listed = home.ok(&["--json", "callout", "auth", "list"]);
    assert!(!listed.contains(slapd.password()), "{listed}");
    assert!(
        !serde_json::to_string(&home.ledger())
            .unwrap()
            .contains(slapd.password())
    );

    home.ok(&[
        "callout",
        "sentinel",
        "-o",
        home.path().join("s.creds").to_str().unwrap(),
    ]);
    let sentinel = home.creds_file("s.creds");
    let server = home.start_nats(&bin, "ldap");
    let url = server.url();
    home.push(&url);
    let responder = Responder::start(&home, &url);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ada = loop {
        match connect_as(&url, &sentinel, Presented::Password("ada", "ada-secret-pw")).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "ada never admitted: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    ada.publish_delivered("orders.ldap", "ada by password")
        .await;
    ada.publish_refused("ops.x", "ada holds nothing in OPS")
        .await;
    drop(ada);

    refused(
        &server,
        &url,
        &sentinel,
        Presented::Password("ada", "wrong-pw-7731"),
        "wrong password",
        "wrong password",
    )
    .await;
    refused(
        &server,
        &url,
        &sentinel,
        Presented::Password("ada", ""),
        "corp",
        "empty password",
    )
    .await;
    refused(
        &server,
        &url,
        &sentinel,
        Presented::Password("mallory", "x"),
        "mallory",
        "unknown LDAP user",
    )
    .await;

    // Carol holds tasks in APP and OPS: she names the account.
    refused(
        &server,
        &url,
        &sentinel,
        Presented::Password("carol", "carol-pw"),
        "several accounts",
        "carol without an account",
    )
    .await;
    let mut carol = connect_as(
        &url,
        &sentinel,
        Presented::Password("carol@OPS", "carol-pw"),
    )
    .await
    .expect("carol@OPS admitted");
    carol.publish_delivered("ops.restart", "carol in OPS").await;
    carol
        .publish_refused("orders.new", "carol's APP grants are not in OPS")
        .await;
    // Traced at the finest level, the responder logged refusals but no password.
    let log = responder.log();
    assert!(
        log.contains("refused"),
        "the responder logged nothing: {log}"
    );
    for secret in [
        "ada-secret-pw",
        "wrong-pw-7731",
        "carol-pw",
        slapd.password(),
    ] {
        assert!(
            !log.contains(secret),
            "a password reached the responder's log"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_responders_one_killed_2_15() {
    let (home, server, sentinel, idp) = oidc_world(false).await;
    let url = server.url();
    let mut first = Responder::start(&home, &url);
    let _second = Responder::start(&home, &url);
    let token = idp.valid(Alg::EdDsa, "ada");
    admitted(&url, &sentinel, &token, "with two responders").await;
    first.kill();
    for i in 0..10 {
        let mut c = connect_as(&url, &sentinel, Presented::Token(&token))
            .await
            .unwrap_or_else(|e| panic!("connect {i} after one responder was killed: {e}"));
        if i == 0 {
            c.publish_delivered("orders.after-kill", "after the kill")
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_responder_only_callout_clients_are_refused_2_15() {
    let (home, server, sentinel, idp) = oidc_world(false).await;
    let url = server.url();
    // Nobody answers: the callout client is refused (the server times the request out)…
    let started = Instant::now();
    let e = connect_as(
        &url,
        &sentinel,
        Presented::Token(&idp.valid(Alg::Es256, "ada")),
    )
    .await
    .err()
    .expect("refused without a responder");
    assert!(e.to_lowercase().contains("authorization"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // …while users with creds, the system user and the responder's own user (an auth
    // user of the callout account, which bypasses the callout) connect.
    home.ok(&[
        "user",
        "add",
        "svc",
        "-a",
        "APP",
        "--allow-pub",
        "orders.>",
        "--allow-sub",
        "orders.>",
    ]);
    home.push(&url);
    let mut svc = common::connect(&url, &home.ok(&["creds", "APP", "svc"]))
        .await
        .expect("creds user connects");
    svc.publish_delivered("orders.x", "creds user").await;
    common::connect(&url, &home.ok(&["creds", "SYS", "sys"]))
        .await
        .expect("system user connects");
    common::connect(&url, &home.ok(&["creds", "AUTH", "callout"]))
        .await
        .expect("the responder's user bypasses the callout");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_the_callout_2_15() {
    let (home, server, sentinel, idp) = oidc_world(true).await;
    let url = server.url();
    let _serve = common::Serve::start_with(&home, &url, &["--callout"]);
    let mut c = admitted(
        &url,
        &sentinel,
        &idp.valid(Alg::Es256, "ada"),
        "through serve",
    )
    .await;
    c.publish_delivered("orders.serve", "through serve").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_auth_callout_is_refused_clearly() {
    let home = Home::new();
    directory(&home);
    let e = home.fails(2, &["callout", "setup", "--server-version", "2.9.10"]);
    assert!(
        e.contains("has no auth callout") && e.contains("2.10"),
        "{e}"
    );
    // Nothing was set up.
    let e = home.fails(1, &["callout", "status"]);
    assert!(e.contains("callout setup"), "{e}");
    assert!(home.run(&["account", "show", "AUTH"]).status.code() != Some(0));

    let bin = NatsServerBinary::get(ServerLine::V2_9);
    let server = home.start_nats(&bin, "old");
    let e = home.fails(2, &["callout", "setup", "--nats", &server.url()]);
    assert!(e.contains("nats-server 2.9.10 has no auth callout"), "{e}");
    // Set up for a newer server, the responder still refuses to run against 2.9.
    home.ok(&["callout", "setup", "--server-version", "2.15.1"]);
    home.push(&server.url());
    let e = home.fails(2, &["callout", "run", "--nats", &server.url()]);
    assert!(e.contains("has no auth callout"), "{e}");
}

/// A CA, a server certificate for 127.0.0.1 and client certificates for `ada` and
/// `mallory` from the same CA, plus one for `ada` from another CA: PEM files in `dir`.
struct Pki {
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client: std::collections::HashMap<&'static str, (std::path::PathBuf, std::path::PathBuf)>,
}

fn pki(dir: &std::path::Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType,
    };
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write PEM");
        p
    };
    let make_ca = |cn: &str| {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).expect("CA cert");
        (cert.pem(), Issuer::new(p, key))
    };
    let (ca_pem, issuer) = make_ca("Warden test client CA");
    let (_, other) = make_ca("Someone else's CA");
    let key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).expect("server cert");
    let mut client = std::collections::HashMap::new();
    for (tag, cn, by) in [
        ("ada", "ada", &issuer),
        ("mallory", "mallory", &issuer),
        ("responder", "warden-callout", &issuer),
        ("forged", "ada", &other),
    ] {
        let key = KeyPair::generate().expect("client key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let c = p.signed_by(&key, by).expect("client cert");
        client.insert(
            tag,
            (
                write(&format!("{tag}.crt"), c.pem()),
                write(&format!("{tag}.key"), key.serialize_pem()),
            ),
        );
    }
    Pki {
        ca: write("ca.crt", ca_pem),
        server_cert: write("server.crt", cert.pem()),
        server_key: write("server.key", key.serialize_pem()),
        client,
    }
}

/// Client certificates: the server verifies them against the CA and passes the chain
/// in the request; Warden's `mtls` authenticator maps the subject CN to the directory.
#[tokio::test(flavor = "multi_thread")]
async fn client_certificate_callout_2_15() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    directory(&home);
    let pki = pki(home.path());
    home.ok(&["callout", "setup", "--xkey"]);
    home.ok(&[
        "callout",
        "auth",
        "add",
        "mtls",
        "certs",
        "--ca",
        pki.ca.to_str().unwrap(),
        "--map",
        "subject",
    ]);
    home.ok(&[
        "callout",
        "sentinel",
        "-o",
        home.path().join("s.creds").to_str().unwrap(),
    ]);
    let sentinel = home.creds_file("s.creds");

    let port = warden_testkit::free_port();
    let conf = home.path().join("tls.conf");
    home.ok(&[
        "nats-config",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--resolver-dir",
        home.path().join("tls-resolver").to_str().unwrap(),
        "-o",
        conf.to_str().unwrap(),
    ]);
    let config = format!(
        "{}\ntls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n}}\n",
        std::fs::read_to_string(&conf).unwrap(),
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
        pki.ca.display().to_string(),
    );
    let dir = home.path().join("tls-server");
    std::fs::create_dir_all(&dir).unwrap();
    let server = NatsServer::start(&bin, &dir, &config).expect("TLS nats-server starts");
    let url = format!("tls://127.0.0.1:{port}");
    // The rendered configuration preloads every account, the callout account too.
    let _responder = Responder::start_with(
        &home,
        &[
            "--nats",
            &url,
            "--tls-ca",
            pki.ca.to_str().unwrap(),
            "--tls-cert",
            pki.client["responder"].0.to_str().unwrap(),
            "--tls-key",
            pki.client["responder"].1.to_str().unwrap(),
        ],
    );

    let with_cert = |tag: &'static str| {
        let (cert, key) = pki.client[tag].clone();
        let ca = pki.ca.clone();
        let sentinel = sentinel.clone();
        let url = url.clone();
        async move {
            let opts = async_nats::ConnectOptions::with_credentials(&sentinel)
                .expect("creds")
                .add_root_certificates(ca)
                .add_client_certificate(cert, key)
                .require_tls(true)
                .connection_timeout(Duration::from_secs(5))
                .max_reconnects(Some(0));
            tokio::time::timeout(Duration::from_secs(10), opts.connect(url))
                .await
                .map_err(|_| "timed out".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let ada = loop {
        match with_cert("ada").await {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "ada's certificate never admitted: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let mut sub = ada.subscribe("orders.tls").await.expect("subscribe");
    ada.flush().await.unwrap();
    ada.publish("orders.tls", "yes".into()).await.unwrap();
    ada.flush().await.unwrap();
    use futures::StreamExt;
    let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("delivered")
        .expect("open");
    assert_eq!(&m.payload[..], b"yes");
    // mallory's certificate is good, but she is not a directory user.
    assert!(with_cert("mallory").await.is_err(), "mallory admitted");
    assert!(
        server.wait_for_log("mallory", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    // A certificate from another CA does not even pass the server's TLS check.
    assert!(
        with_cert("forged").await.is_err(),
        "a foreign certificate admitted"
    );
}

/// Config mode (no operator): `warden nats-config --auth-callout` renders a server
/// whose every client but Warden's responder is decided by the callout; clients
/// present only their ID token.
#[tokio::test(flavor = "multi_thread")]
async fn config_mode_callout_2_15() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    directory(&home);
    home.ok(&[
        "callout",
        "setup",
        "--allowed-account",
        "APP",
        "--allowed-account",
        "OPS",
    ]);
    let idp = Idp::new();
    let jwks = home.path().join("jwks.json");
    std::fs::write(&jwks, idp.jwks().to_string()).unwrap();
    home.ok(&[
        "callout",
        "auth",
        "add",
        "oidc",
        "idp",
        "--jwks",
        jwks.to_str().unwrap(),
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
    ]);
    let port = warden_testkit::free_port();
    let conf = home.path().join("config-mode.conf");
    home.ok(&[
        "nats-config",
        "--auth-callout",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "-o",
        conf.to_str().unwrap(),
    ]);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the config holds the responder's password");
    }
    let config = std::fs::read_to_string(&conf).unwrap();
    assert!(
        config.contains("auth_callout") && !config.contains("operator:"),
        "{config}"
    );
    let dir = home.path().join("config-mode-server");
    std::fs::create_dir_all(&dir).unwrap();
    let server = NatsServer::start(&bin, &dir, &config).expect("config-mode nats-server starts");
    let url = server.url();

    let _responder = Responder::start_with(&home, &["--config-mode", "--nats", &url]);

    let token = idp.valid(Alg::EdDsa, "ada");
    let connect = |token: String| {
        let url = url.clone();
        async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let opts = async_nats::ConnectOptions::with_token(token)
                .event_callback(move |event| {
                    let tx = tx.clone();
                    async move {
                        if let async_nats::Event::ServerError(e) = event {
                            let _ = tx.send(e.to_string());
                        }
                    }
                })
                .connection_timeout(Duration::from_secs(5))
                .max_reconnects(Some(0));
            match tokio::time::timeout(Duration::from_secs(10), opts.connect(url)).await {
                Ok(Ok(client)) => Ok(Client { client, errors: rx }),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".to_string()),
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ada = loop {
        match connect(token.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "ada never admitted in config mode: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    ada.publish_delivered("orders.config", "ada in APP (config mode)")
        .await;
    ada.publish_refused("orders.secret", "deny still applies")
        .await;
    let e = connect(idp.valid(Alg::EdDsa, "bob"))
        .await
        .err()
        .expect("bob refused");
    assert!(e.to_lowercase().contains("authorization"), "{e}");
    // Without a token, nobody connects.
    let e = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(Some(0))
        .connect(url.clone())
        .await
        .expect_err("anonymous refused");
    assert!(
        e.to_string().to_lowercase().contains("authorization"),
        "{e}"
    );
}

/// The issued user JWT expires no later than the ID token: the server closes the
/// connection when it does (and a shorter `--ttl` would do the same).
#[tokio::test(flavor = "multi_thread")]
async fn connection_ends_when_the_token_expires_2_15() {
    let (home, server, sentinel, idp) = oidc_world(false).await;
    let url = server.url();
    let _responder = Responder::start(&home, &url);
    let now = unix_now();
    let short = idp.token(
        Alg::Es256,
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "nbf": now - 5, "exp": now + 4}),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = async_nats::ConnectOptions::with_credentials(&sentinel)
        .unwrap()
        .token(short)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event.to_string());
            }
        })
        .max_reconnects(Some(0));
    let client = tokio::time::timeout(Duration::from_secs(10), opts.connect(url.clone()))
        .await
        .expect("connect in time")
        .expect("admitted until the token expires");
    client.flush().await.expect("connected");
    let started = Instant::now();
    let mut events = Vec::new();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
            Ok(Some(e)) => {
                events.push(e.clone());
                if e.to_lowercase().contains("disconnect") || e.to_lowercase().contains("expired") {
                    break true;
                }
            }
            _ => break false,
        }
    };
    assert!(
        closed,
        "the server kept the connection past the token's expiry: {events:?}"
    );
    // Not before the token's expiry (connected about 4 s before it), not long after.
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(12),
        "closed after {after:?}: {events:?}"
    );
}

/// Bad input is a usage error (exit 2) or a clear failure (exit 1), and changes nothing.
#[test]
fn bad_callout_input_changes_nothing() {
    let home = Home::new();
    directory(&home);
    let e = home.fails(1, &["callout", "auth", "list"]);
    assert!(e.contains("callout setup"), "{e}");
    let garbage = home.path().join("garbage.txt");
    std::fs::write(&garbage, "not json, not PEM").unwrap();
    let g = garbage.to_str().unwrap();
    let jwks = home.path().join("jwks.json");
    std::fs::write(&jwks, Idp::new().jwks().to_string()).unwrap();
    let j = jwks.to_str().unwrap();
    let e = home.fails(
        1,
        &[
            "callout",
            "auth",
            "add",
            "oidc",
            "idp",
            "--jwks",
            j,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ],
    );
    assert!(e.contains("callout setup"), "before set-up: {e}");

    home.fails(2, &["callout", "setup", "--account", "SYS"]);
    home.fails(2, &["callout", "setup", "--account", "BACKEND"]);
    home.fails(1, &["callout", "status"]);
    home.ok(&["callout", "setup"]);
    let before = home.ledger().len();
    home.fails(2, &["callout", "setup", "--ttl", "10s"]);
    home.fails(1, &["callout", "setup", "--account", "OTHER"]);
    home.fails(1, &["callout", "setup", "--allowed-account", "NOPE"]);
    home.fails(2, &["callout", "setup", "--server-version", "banana"]);
    home.fails(
        2,
        &[
            "callout",
            "auth",
            "add",
            "oidc",
            "idp",
            "--jwks",
            g,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ],
    );
    home.fails(
        2,
        &[
            "callout",
            "auth",
            "add",
            "oidc",
            "bad name",
            "--jwks",
            j,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ],
    );
    home.fails(
        2,
        &[
            "callout",
            "auth",
            "add",
            "oidc",
            "idp",
            "--jwks",
            j,
            "--issuer",
            "",
            "--audience",
            AUDIENCE,
        ],
    );
    home.fails(2, &["callout", "auth", "add", "mtls", "certs", "--ca", g]);
    home.fails(
        2,
        &[
            "callout",
            "auth",
            "add",
            "ldap",
            "corp",
            "--url",
            "http://127.0.0.1/",
            "--base",
            "dc=x",
        ],
    );
    home.fails(
        2,
        &[
            "callout",
            "auth",
            "add",
            "ldap",
            "corp",
            "--url",
            "ldap://127.0.0.1/",
            "--base",
            "dc=x",
            "--user-filter",
            "(uid=fixed)",
        ],
    );
    let empty = home.path().join("empty.pw");
    std::fs::write(&empty, "\n").unwrap();
    home.fails(
        2,
        &[
            "callout",
            "auth",
            "add",
            "ldap",
            "corp",
            "--url",
            "ldap://127.0.0.1/",
            "--base",
            "dc=x",
            "--bind-dn",
            "cn=admin,dc=x",
            "--password-file",
            empty.to_str().unwrap(),
        ],
    );
    home.fails(1, &["callout", "auth", "rm", "nobody"]);
    assert_eq!(home.json(&["callout", "auth", "list"]), json!([]));
    assert_eq!(
        home.ledger().len(),
        before,
        "a refused command wrote to the ledger"
    );

    // A name is used once.
    home.ok(&[
        "callout",
        "auth",
        "add",
        "oidc",
        "idp",
        "--jwks",
        j,
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
    ]);
    home.fails(
        1,
        &[
            "callout",
            "auth",
            "add",
            "oidc",
            "idp",
            "--jwks",
            j,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ],
    );
    assert_eq!(
        home.json(&["callout", "auth", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// `serve --callout` against nats-server 2.9.10: the responder cannot run, so serve
/// says why and stops with an error rather than look healthy while refusing clients.
#[test]
fn serve_with_callout_stops_on_a_server_without_it() {
    let home = Home::new();
    directory(&home);
    home.ok(&["callout", "setup", "--server-version", "2.15.1"]);
    let bin = NatsServerBinary::get(ServerLine::V2_9);
    let server = home.start_nats(&bin, "old");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(home.data_dir())
        .args([
            "serve",
            "--callout",
            "--nats",
            &server.url(),
            "--http",
            "127.0.0.1:0",
        ])
        .env_remove("WARDEN_DATABASE_URL")
        .env_remove("WARDEN_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "serve kept running without its responder"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("nats-server 2.9.10 has no auth callout"),
        "{stderr}"
    );
}
