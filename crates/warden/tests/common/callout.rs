//! Shared pieces of the auth callout's end-to-end tests: a test identity provider (ES256
//! and Ed25519 keys, their JWKS, the ID tokens they sign), the directory the callout
//! decides from, the OIDC set-up on a 2.15 server, connecting as a callout client
//! (sentinel creds plus a token or a password) until admitted, and the `warden callout
//! run` responder as a child process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, Slapd};

use super::{Client, Home, connect_with, first_line};

/// The issuer and audience of [`Idp::new`]'s tokens.
pub const ISSUER: &str = "https://idp.example.test";
pub const AUDIENCE: &str = "nats";

/// How long a client is retried until admitted: the responder's subscription reaches
/// the server on the server's schedule.
const ADMIT_WAIT: Duration = Duration::from_secs(10);

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// A test identity provider: an ES256 and an Ed25519 key, the JWKS publishing both,
/// and the ID tokens they sign for its issuer and audience.
pub struct Idp {
    ec: rcgen::KeyPair,
    ed: rcgen::KeyPair,
    issuer: String,
    audience: String,
}

/// Which of the [`Idp`]'s keys signs a token.
#[derive(Clone, Copy)]
pub enum Alg {
    Es256,
    EdDsa,
}

impl Idp {
    /// Fresh keys, issuing for [`ISSUER`] and [`AUDIENCE`].
    pub fn new() -> Idp {
        Idp::issuing(ISSUER, AUDIENCE)
    }

    /// Fresh keys, issuing for `issuer` and `audience`.
    pub fn issuing(issuer: &str, audience: &str) -> Idp {
        Idp {
            ec: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key"),
            ed: rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key"),
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        }
    }

    /// The public JWK of one key.
    pub fn jwk(&self, alg: Alg) -> Value {
        match alg {
            Alg::Es256 => {
                // An uncompressed P-256 point: 0x04 || x || y.
                let point = self.ec.public_key_raw();
                json!({"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig",
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Alg::EdDsa => json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA",
                                 "use": "sig", "x": b64(self.ed.public_key_raw())}),
        }
    }

    /// The JWKS with both keys.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk(Alg::Es256), self.jwk(Alg::EdDsa)]})
    }

    /// Writes [`Idp::jwks`] to `dir/jwks.json`; its path.
    pub fn write_jwks(&self, dir: &Path) -> PathBuf {
        let path = dir.join("jwks.json");
        std::fs::write(&path, self.jwks().to_string()).expect("write JWKS");
        path
    }

    /// A token with exactly `claims`, signed by the `alg` key.
    pub fn token(&self, alg: Alg, claims: Value) -> String {
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

    /// An ID token for `sub`, valid for ten minutes.
    pub fn valid(&self, alg: Alg, sub: &str) -> String {
        self.valid_for(alg, sub, &self.audience)
    }

    /// As [`Idp::valid`], for audience `aud`.
    pub fn valid_for(&self, alg: Alg, sub: &str, aud: &str) -> String {
        let now = unix_now();
        self.token(
            alg,
            json!({"iss": self.issuer, "aud": aud, "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 600}),
        )
    }
}

/// The arguments of `warden callout auth add oidc NAME --jwks JWKS --issuer ISSUER
/// --audience AUDIENCE`.
pub fn add_oidc<'a>(name: &'a str, jwks: &'a str, issuer: &'a str) -> [&'a str; 11] {
    [
        "callout",
        "auth",
        "add",
        "oidc",
        name,
        "--jwks",
        jwks,
        "--issuer",
        issuer,
        "--audience",
        AUDIENCE,
    ]
}

/// `warden propose ARGS… --as admin`, confirmed by `admin`.
pub fn propose_and_confirm(home: &Home, args: &[&str]) {
    let mut full = vec!["propose"];
    full.extend_from_slice(args);
    full.extend(["--as", "admin"]);
    let p = home.json(&full);
    home.ok(&[
        "confirm",
        p["id"].as_str().expect("proposal id"),
        "--as",
        "admin",
    ]);
}

/// The directory: `admin` (system administrator), `ada` in role `sales` (task `orders`
/// in APP), `carol` in `sales` and `ops` (task `ops` in OPS), `bob` with no grants.
pub fn directory(home: &Home) {
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
        propose_and_confirm(home, &["role-task", "add", "--role", role, "--task", task]);
    }
    for (role, user) in [("sales", "ada"), ("sales", "carol"), ("ops", "carol")] {
        propose_and_confirm(
            home,
            &["role-member", "add", "--role", role, "--user", user],
        );
    }
}

/// `warden callout sentinel -o <home>/<name>`; the creds, after checking the file is
/// readable by its owner only.
pub fn sentinel(home: &Home, name: &str) -> String {
    let path = home.path().join(name);
    home.ok(&[
        "callout",
        "sentinel",
        "-o",
        path.to_str().expect("utf-8 path"),
    ]);
    home.creds_file(name)
}

/// Sets up the callout (APP and OPS allowed, sealed with an xkey or not) with an OIDC
/// authenticator `idp` trusting a fresh [`Idp`], on a fresh [`directory`]: (home, idp).
pub fn oidc_callout(xkey: bool) -> (Home, Idp) {
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
    let jwks = idp.write_jwks(home.path());
    let a = home.json(&add_oidc("idp", jwks.to_str().expect("utf-8 path"), ISSUER));
    assert_eq!(a["kind"], "oidc", "{a}");
    (home, idp)
}

/// [`oidc_callout`], and a 2.15 server started with the callout account pushed: (home,
/// server, sentinel creds, idp).
pub fn oidc_world(xkey: bool) -> (Home, NatsServer, String, Idp) {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let (home, idp) = oidc_callout(xkey);
    let sentinel = sentinel(&home, "sentinel.creds");

    // The callout account's JWT carries the authorization block the server enforces.
    let jwt = home.ok(&["jwt", "AUTH", "callout"]);
    assert!(jwt.starts_with("eyJ"), "{jwt}");
    let server = home.start_nats(&bin, "callout");
    home.push(&server.url());
    (home, server, sentinel, idp)
}

/// What a callout client presents besides the sentinel creds.
#[derive(Clone, Copy)]
pub enum Presented<'a> {
    Nothing,
    Token(&'a str),
    Password(&'a str, &'a str),
}

/// Connects with the `sentinel` creds (none in config mode) and `presented`; the
/// refusal text on refusal.
pub async fn connect_as(
    url: &str,
    sentinel: Option<&str>,
    presented: Presented<'_>,
) -> Result<Client, String> {
    let opts = match sentinel {
        Some(creds) => async_nats::ConnectOptions::with_credentials(creds)
            .map_err(|e| format!("bad creds: {e}"))?,
        None => async_nats::ConnectOptions::new(),
    };
    let opts = match presented {
        Presented::Nothing => opts,
        Presented::Token(t) => opts.token(t.to_string()),
        Presented::Password(u, p) => opts.user_and_password(u.to_string(), p.to_string()),
    };
    connect_with(url, opts).await
}

/// Runs `attempt` until it connects (the responder's subscription reaches the server on
/// its own schedule; a connect nobody answered is not a decision), within a bound.
pub async fn until_admitted<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + ADMIT_WAIT;
    loop {
        match attempt().await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "{what}: never admitted: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// [`connect_as`] until admitted, within a bound.
pub async fn admitted_as(
    url: &str,
    sentinel: Option<&str>,
    presented: Presented<'_>,
    what: &str,
) -> Client {
    until_admitted(what, || connect_as(url, sentinel, presented)).await
}

/// With the `sentinel` creds and an ID `token`, until admitted, within a bound.
pub async fn admitted(url: &str, sentinel: &str, token: &str, what: &str) -> Client {
    admitted_as(url, Some(sentinel), Presented::Token(token), what).await
}

/// A slapd whose `ou=people,SUFFIX` holds `(uid, cn, sn, password)` people.
pub fn slapd_with_people(suffix: &str, people: &[(&str, &str, &str, &str)]) -> Slapd {
    let slapd = Slapd::start(suffix, "").expect("slapd starts");
    let mut ldif = format!("dn: ou=people,{suffix}\nobjectClass: organizationalUnit\nou: people\n");
    for (uid, cn, sn, password) in people {
        ldif.push_str(&format!(
            "\ndn: uid={uid},ou=people,{suffix}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
             cn: {cn}\nsn: {sn}\nuserPassword: {password}\n"
        ));
    }
    slapd.ldapmodify(&ldif, true).expect("seed people");
    slapd
}

/// The ledger's `callout.decisions` entries (a responder's summaries).
pub fn decisions(home: &Home) -> Vec<Value> {
    home.ledger()
        .into_iter()
        .filter(|e| e["action"] == "callout.decisions")
        .collect()
}

/// SIGTERM to a child, and its clean exit (bounded); `what` names it.
pub fn terminate(child: &mut Child, what: &str) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not stop on SIGTERM");
}

/// A `warden callout run` child (logging at trace level into a file), killed on drop.
pub struct Responder {
    child: Child,
    log: PathBuf,
}

impl Responder {
    /// `warden callout run --nats URL --summary-every 1s`, once it says it answers.
    pub fn start(home: &Home, url: &str) -> Responder {
        Responder::start_with(home, &["--nats", url])
    }

    /// `warden callout run ARGS… --summary-every 1s`, once it says it answers.
    pub fn start_with(home: &Home, args: &[&str]) -> Responder {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = home.path().join(format!("responder-{n}.log"));
        let mut child = home
            .command()
            .args(["callout", "run", "--summary-every", "1s"])
            .args(args)
            .env("WARDEN_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("responder log file"))
            .spawn()
            .expect("start warden callout run");
        let line = first_line(&mut child, "warden callout run said it answers");
        assert!(line.starts_with("warden callout: answering on"), "{line}");
        Responder { child, log }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait (bounded) for a clean exit.
    pub fn stop(&mut self) {
        terminate(&mut self.child, "callout run");
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.kill();
    }
}
