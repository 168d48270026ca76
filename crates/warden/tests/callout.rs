//! Auth callout end to end on a real nats-server 2.15.1 that Warden configured:
//! directory users connect with the callout account's sentinel creds plus an OIDC ID
//! token (keys and JWKS made here) or their LDAP password (a real slapd), and get
//! exactly their task grants, enforced by the server; bad tokens, wrong passwords and
//! users without grants are refused; a grant removed by a confirmed proposal is gone at
//! the next connect; sealing (xkey) on and off; two responders, one killed; no
//! responder at all; and nats-server 2.9.10, which has no auth callout, refused clearly.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::callout::{
    AUDIENCE, Alg, ISSUER, Idp, Presented, Responder, add_oidc, admitted, admitted_as, connect_as,
    decisions, directory, oidc_callout, oidc_world, propose_and_confirm, sentinel,
    slapd_with_people, unix_now, until_admitted,
};
use common::pki::ca;
use common::{Client, Home};
use serde_json::json;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine};

/// The arguments of `warden callout auth add ldap corp --url URL --base BASE EXTRA…`.
fn add_ldap<'a>(url: &'a str, base: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "callout", "auth", "add", "ldap", "corp", "--url", url, "--base", base,
    ];
    args.extend_from_slice(extra);
    args
}

/// A server whose clients go through the callout, and the sentinel creds they present.
struct Gate<'a> {
    server: &'a NatsServer,
    sentinel: &'a str,
}

impl Gate<'_> {
    /// Requires a refusal, and that the server logged why (its log carries the reason
    /// Warden's response gave); `why` is a fragment of that reason.
    async fn refused(&self, presented: Presented<'_>, why: &str, what: &str) {
        match connect_as(&self.server.url(), Some(self.sentinel), presented).await {
            Ok(_) => panic!("{what}: admitted"),
            Err(e) => assert!(e.to_lowercase().contains("authorization"), "{what}: {e}"),
        }
        assert!(
            self.server.wait_for_log(why, Duration::from_secs(10)),
            "{what}: the server log does not say {why:?}:\n{}",
            self.server.log()
        );
    }
}

/// A user `svc` in APP with creds issued in advance (publish and subscribe on
/// `orders.>`), pushed to `url` and connected: such users do not go through the callout.
async fn creds_user(home: &Home, url: &str) -> Client {
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
    home.push(url);
    common::connect(url, &home.ok(&["creds", "APP", "svc"]))
        .await
        .expect("a creds user connects")
}

async fn oidc_scenario(xkey: bool) {
    let (home, server, sentinel, idp) = oidc_world(xkey);
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
    let gate = Gate {
        server: &server,
        sentinel: &sentinel,
    };

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
        Some(&sentinel),
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
    let es256 = |claims| idp.token(Alg::Es256, claims);
    let other = Idp::new();
    let cases = [
        (
            es256(json!({"iss": ISSUER, "aud": "someone-else", "sub": "ada", "exp": now + 600})),
            "audience",
            "wrong audience",
        ),
        (
            es256(
                json!({"iss": "https://evil.example.test", "aud": AUDIENCE, "sub": "ada", "exp": now + 600}),
            ),
            "issuer",
            "wrong issuer",
        ),
        (
            es256(json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "exp": now - 120})),
            "expired",
            "expired token",
        ),
        (
            es256(
                json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "nbf": now + 3600, "exp": now + 7200}),
            ),
            "not valid before",
            "token not yet valid",
        ),
        (
            es256(json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "zed", "exp": now + 600})),
            "is not a directory user",
            "unknown user",
        ),
        (
            es256(json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bob", "exp": now + 600})),
            "holds no task",
            "user without grants",
        ),
        // A token signed by a key the JWKS does not hold.
        (other.valid(Alg::Es256, "ada"), "signature", "foreign key"),
        // Carol holds tasks in two accounts: a token cannot say which.
        (
            idp.valid(Alg::Es256, "carol"),
            "several accounts",
            "ambiguous account",
        ),
    ];
    for (token, why, what) in &cases {
        gate.refused(Presented::Token(token), why, what).await;
    }
    // The sentinel alone may not connect.
    gate.refused(
        Presented::Nothing,
        "no authenticator accepts",
        "sentinel without credentials",
    )
    .await;

    // Users with creds issued in advance do not go through the callout.
    let mut svc = creds_user(&home, &url).await;
    svc.publish_delivered("orders.svc", "creds user").await;

    // A grant removed by a confirmed proposal is gone at the next connect.
    propose_and_confirm(
        &home,
        &["role-member", "remove", "--role", "sales", "--user", "ada"],
    );
    gate.refused(
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
    let slapd = slapd_with_people(
        SUFFIX,
        &[
            ("ada", "Ada", "Lovelace", "ada-secret-pw"),
            ("carol", "Carol", "C", "carol-pw"),
        ],
    );
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    directory(&home);
    home.ok(&["callout", "setup"]);
    let pw = home.path().join("bind.pw");
    std::fs::write(&pw, format!("{}\n", slapd.password())).unwrap();
    let base = format!("ou=people,{SUFFIX}");
    let (ldap_url, bind_dn) = (slapd.url(), slapd.bind_dn());
    let a = home.json(&add_ldap(
        &ldap_url,
        &base,
        &[
            "--bind-dn",
            &bind_dn,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    ));
    assert_eq!(a["has_secret"], true, "{a}");
    // The bind password is sealed: never shown, never in the ledger.
    let listed = home.ok(&["--json", "callout", "auth", "list"]);
    assert!(!listed.contains(slapd.password()), "{listed}");
    assert!(
        !serde_json::to_string(&home.ledger())
            .unwrap()
            .contains(slapd.password())
    );

    let sentinel = sentinel(&home, "s.creds");
    let server = home.start_nats(&bin, "ldap");
    let url = server.url();
    home.push(&url);
    let responder = Responder::start(&home, &url);
    let gate = Gate {
        server: &server,
        sentinel: &sentinel,
    };

    let mut ada = admitted_as(
        &url,
        Some(&sentinel),
        Presented::Password("ada", "ada-secret-pw"),
        "ada",
    )
    .await;
    ada.publish_delivered("orders.ldap", "ada by password")
        .await;
    ada.publish_refused("ops.x", "ada holds nothing in OPS")
        .await;
    drop(ada);

    for (user, password, why, what) in [
        ("ada", "wrong-pw-7731", "wrong password", "wrong password"),
        ("ada", "", "corp", "empty password"),
        ("mallory", "x", "mallory", "unknown LDAP user"),
        // Carol holds tasks in APP and OPS: she names the account.
        (
            "carol",
            "carol-pw",
            "several accounts",
            "carol without an account",
        ),
    ] {
        gate.refused(Presented::Password(user, password), why, what)
            .await;
    }
    let mut carol = connect_as(
        &url,
        Some(&sentinel),
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
    let (home, server, sentinel, idp) = oidc_world(false);
    let url = server.url();
    let mut first = Responder::start(&home, &url);
    let _second = Responder::start(&home, &url);
    let token = idp.valid(Alg::EdDsa, "ada");
    admitted(&url, &sentinel, &token, "with two responders").await;
    first.kill();
    for i in 0..10 {
        let mut c = connect_as(&url, Some(&sentinel), Presented::Token(&token))
            .await
            .unwrap_or_else(|e| panic!("connect {i} after one responder was killed: {e}"));
        if i == 0 {
            c.publish_delivered("orders.after-kill", "after the kill")
                .await;
        }
    }
}

/// The responder outlives its server: nats-server restarted on the same port, the
/// responder reconnects and resubscribes, and callout clients are let in again.
#[tokio::test(flavor = "multi_thread")]
async fn responder_reconnects_after_a_server_restart_2_15() {
    let (home, mut server, sentinel, idp) = oidc_world(false);
    let url = server.url();
    let _responder = Responder::start(&home, &url);
    let token = idp.valid(Alg::EdDsa, "ada");
    admitted(&url, &sentinel, &token, "before the restart").await;
    server.restart().expect("nats-server restarts");
    let mut c = admitted(&url, &sentinel, &token, "after the restart").await;
    c.publish_delivered("orders.after-restart", "after the restart")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_responder_only_callout_clients_are_refused_2_15() {
    let (home, server, sentinel, idp) = oidc_world(false);
    let url = server.url();
    // Nobody answers: the callout client is refused (the server times the request out)…
    let started = Instant::now();
    let e = connect_as(
        &url,
        Some(&sentinel),
        Presented::Token(&idp.valid(Alg::Es256, "ada")),
    )
    .await
    .err()
    .expect("refused without a responder");
    assert!(e.to_lowercase().contains("authorization"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // …while users with creds, the system user and the responder's own user (an auth
    // user of the callout account, which bypasses the callout) connect.
    let mut svc = creds_user(&home, &url).await;
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
    let (home, server, sentinel, idp) = oidc_world(true);
    let url = server.url();
    let _serve = common::Serve::start_with(&home, &url, &["--callout"]);
    let token = idp.valid(Alg::Es256, "ada");
    let mut c = admitted(&url, &sentinel, &token, "through serve").await;
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
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write PEM");
        p
    };
    let (ca_pem, issuer) = ca("Warden test client CA");
    let (_, other) = ca("Someone else's CA");
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
    let sentinel = sentinel(&home, "s.creds");

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
        let opts = async_nats::ConnectOptions::with_credentials(&sentinel)
            .expect("creds")
            .add_root_certificates(pki.ca.clone())
            .add_client_certificate(cert, key)
            .require_tls(true);
        common::connect_with(&url, opts)
    };
    let mut ada = until_admitted("ada's certificate", || with_cert("ada")).await;
    ada.publish_delivered("orders.tls", "ada by certificate")
        .await;
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
    let (home, idp) = oidc_callout(false);
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

    // Only the token: no sentinel creds in config mode.
    let token = idp.valid(Alg::EdDsa, "ada");
    let mut ada = admitted_as(&url, None, Presented::Token(&token), "ada in config mode").await;
    ada.publish_delivered("orders.config", "ada in APP (config mode)")
        .await;
    ada.publish_refused("orders.secret", "deny still applies")
        .await;
    let e = connect_as(&url, None, Presented::Token(&idp.valid(Alg::EdDsa, "bob")))
        .await
        .err()
        .expect("bob refused");
    assert!(e.to_lowercase().contains("authorization"), "{e}");
    // Without a token, nobody connects.
    let e = connect_as(&url, None, Presented::Nothing)
        .await
        .err()
        .expect("anonymous refused");
    assert!(e.to_lowercase().contains("authorization"), "{e}");
}

/// The issued user JWT expires no later than the ID token: the server closes the
/// connection when it does (and a shorter `--ttl` would do the same).
#[tokio::test(flavor = "multi_thread")]
async fn connection_ends_when_the_token_expires_2_15() {
    let (home, server, sentinel, idp) = oidc_world(false);
    let url = server.url();
    let _responder = Responder::start(&home, &url);
    let now = unix_now();
    let short = idp.token(
        Alg::Es256,
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "nbf": now - 5, "exp": now + 4}),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
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
    let jwks = Idp::new().write_jwks(home.path());
    let j = jwks.to_str().unwrap();
    let e = home.fails(1, &add_oidc("idp", j, ISSUER));
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
    home.fails(2, &add_oidc("idp", g, ISSUER));
    home.fails(2, &add_oidc("bad name", j, ISSUER));
    home.fails(2, &add_oidc("idp", j, ""));
    home.fails(2, &["callout", "auth", "add", "mtls", "certs", "--ca", g]);
    home.fails(2, &add_ldap("http://127.0.0.1/", "dc=x", &[]));
    home.fails(
        2,
        &add_ldap(
            "ldap://127.0.0.1/",
            "dc=x",
            &["--user-filter", "(uid=fixed)"],
        ),
    );
    let empty = home.path().join("empty.pw");
    std::fs::write(&empty, "\n").unwrap();
    home.fails(
        2,
        &add_ldap(
            "ldap://127.0.0.1/",
            "dc=x",
            &[
                "--bind-dn",
                "cn=admin,dc=x",
                "--password-file",
                empty.to_str().unwrap(),
            ],
        ),
    );
    home.fails(1, &["callout", "auth", "rm", "nobody"]);
    assert_eq!(home.json(&["callout", "auth", "list"]), json!([]));
    assert_eq!(
        home.ledger().len(),
        before,
        "a refused command wrote to the ledger"
    );

    // A name is used once.
    home.ok(&add_oidc("idp", j, ISSUER));
    home.fails(1, &add_oidc("idp", j, ISSUER));
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
    let mut child = home
        .command()
        .args([
            "serve",
            "--callout",
            "--nats",
            &server.url(),
            "--http",
            "127.0.0.1:0",
        ])
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

/// `callout explain` says what the callout would decide for a login, from the
/// directory and the policy, without a client: exit 0 with the permissions and the
/// account, exit 1 with the refusal's code.
#[test]
fn explain_says_what_the_callout_would_decide() {
    let home = Home::new();
    directory(&home);
    home.ok(&[
        "callout",
        "setup",
        "--allowed-account",
        "APP",
        "--allowed-account",
        "OPS",
        "--ttl",
        "15m",
    ]);
    let ada = home.json(&["callout", "explain", "ada"]);
    assert_eq!(ada["allowed"], true, "{ada}");
    assert_eq!(ada["account"], "APP", "{ada}");
    assert_eq!(
        ada["permissions"]["pub"]["allow"],
        json!(["orders.>"]),
        "{ada}"
    );
    assert_eq!(
        ada["permissions"]["pub"]["deny"],
        json!(["orders.secret"]),
        "{ada}"
    );
    assert_eq!(ada["tasks"], json!(["sales/orders"]), "{ada}");
    let ttl = ada["expires_at"].as_i64().unwrap() - unix_now();
    assert!((800..=900).contains(&ttl), "the 15 min TTL: {ttl}");
    let human = home.ok(&["callout", "explain", "ada"]);
    assert!(
        human.contains("in account APP") && human.contains("orders.secret"),
        "{human}"
    );

    let carol = home.json(&["callout", "explain", "carol@OPS"]);
    assert_eq!(carol["account"], "OPS", "{carol}");
    for (login, code) in [
        ("carol", "ambiguous_account"),
        ("bob", "no_grants"),
        ("zed", "unknown_user"),
        ("ada@OPS", "no_grants"),
    ] {
        let e = home.fails(1, &["callout", "explain", login]);
        assert!(e.contains(code), "{login}: {e}");
    }
    // Narrowing the allowed accounts shows at once.
    home.ok(&["callout", "setup", "--allowed-account", "OPS"]);
    let e = home.fails(1, &["callout", "explain", "ada"]);
    assert!(e.contains("account_not_allowed"), "{e}");
}
