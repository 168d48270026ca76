//! Onboarding packages against real nats-server processes (2.9.10 and 2.15.x) and a
//! running `warden serve`: the package is downloaded once over HTTP with its token in a
//! header; the archive holds a TOML config naming the tenant, creds that connect and
//! publish into the tenant's prefix, and a client certificate from the tenant's CA whose
//! names carry the tenant; a second download, an expired token, a wrong token and a token
//! in the query string are refused (and, except the last, recorded); the state moves
//! issued → delivered → activated as `warden serve` observes the collector connect; revoke
//! cuts the collector off.
//!
//! Refused downloads, on SQLite and PostgreSQL, over the HTTP API in this process with the
//! download guard's clock moved by the test: many refusals in a window make one ledger
//! event (actor the peer's address) and one summary with their count, whether they name a
//! package or not; an address with too many refusals is throttled (`429`) until its window
//! ends, without the database being read.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Home, Serve, connect};
use futures::StreamExt;
use serde_json::{Value, json};
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(20);

/// Waits (bounded) until the outbox is empty: `warden serve`'s relay pushed everything.
fn outbox_drained(home: &Home) {
    let deadline = Instant::now() + WAIT;
    while home.json(&["status"])["outbox_pending"] != 0 {
        assert!(Instant::now() < deadline, "outbox not delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `onboarding show` (bounded) until the package is in `state`.
fn state_becomes(home: &Home, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let p = home.json(&["onboarding", "show", id]);
        if p["state"] == state {
            return p;
        }
        assert!(Instant::now() < deadline, "{id} never became {state}: {p}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

async fn reply(r: reqwest::RequestBuilder) -> Reply {
    let r = r.send().await.expect("HTTP request");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if status == 200 && content_type == "application/gzip" {
        assert_eq!(
            r.headers().get("cache-control").unwrap(),
            "no-store",
            "a package is never cached"
        );
    }
    let body = r.bytes().await.expect("body").to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

/// An unpacked archive: path → (mode, contents).
fn unpack(bytes: &[u8]) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in ar.entries().expect("tar entries") {
        let mut e = entry.expect("tar entry");
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e.path().expect("path").to_string_lossy().to_string();
        let mode = e.header().mode().expect("mode") & 0o7777;
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        out.insert(path, (mode, data));
    }
    out
}

fn text(files: &BTreeMap<String, (u32, Vec<u8>)>, name: &str) -> String {
    let (_, data) = files
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", files.keys()));
    String::from_utf8(data.clone()).expect("utf-8")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The certificate's CN and SAN carry the tenant, and it is signed by the tenant CA.
fn check_certificate(cert_pem: &str, ca_pem: &str, slug: &str) {
    use x509_parser::extensions::GeneralName;
    let (_, ca) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).expect("CA PEM");
    let ca = ca.parse_x509().expect("CA certificate");
    let (_, leaf) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("cert PEM");
    let leaf = leaf.parse_x509().expect("client certificate");
    let cn = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .expect("CN");
    assert_eq!(cn, format!("flowgger.paris.{slug}"));
    let san = leaf
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("SAN present");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|g| match g {
            GeneralName::URI(u) => format!("uri:{u}"),
            GeneralName::DNSName(d) => format!("dns:{d}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(
        names.contains(&format!("uri:warden://tenant/{slug}/flowgger/paris")),
        "{names:?}"
    );
    assert!(
        names.contains(&format!("dns:flowgger.paris.{slug}")),
        "{names:?}"
    );
    assert_eq!(leaf.issuer(), ca.subject(), "issued by the tenant CA");
    leaf.verify_signature(Some(ca.public_key()))
        .expect("signed by the tenant CA's key");
    assert!(ca.is_ca(), "the tenant CA is a CA");
    assert!(!leaf.is_ca(), "the client certificate is not a CA");
    let ca_cn = ca
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .expect("CA CN");
    assert!(ca_cn.contains(slug), "{ca_cn}");
    let eku = leaf
        .extended_key_usage()
        .expect("EKU parses")
        .expect("EKU present");
    assert!(eku.value.client_auth, "client authentication");
}

async fn onboarding(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "ONBOARDOP"]);
    home.json(&["tenant", "add", "a"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    home.push(&url);

    // Bad input: usage errors, nothing made.
    for bad in [
        vec!["--component", "syslog", "--site", "paris"],
        vec!["--component", "flowgger", "--site", "Paris"],
        vec![
            "--component",
            "flowgger",
            "--site",
            "paris",
            "--expires",
            "0s",
        ],
        vec![
            "--component",
            "flowgger",
            "--site",
            "paris",
            "--nats-url",
            "http://x",
        ],
    ] {
        let mut args = vec!["onboarding", "create", "a"];
        args.extend(bad);
        home.fails(2, &args);
    }
    home.fails(
        1,
        &[
            "onboarding",
            "create",
            "nope",
            "--component",
            "otel",
            "--site",
            "x",
        ],
    );
    assert_eq!(home.json(&["onboarding", "list"]), json!([]));

    let created = home.json(&[
        "onboarding",
        "create",
        "a",
        "--component",
        "flowgger",
        "--site",
        "paris",
        "--nats-url",
        &url,
    ]);
    let p = &created["package"];
    let id = p["id"].as_str().unwrap().to_string();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("wdl_"), "{token}");
    assert_eq!(p["state"], "issued");
    assert_eq!(p["user"], "flowgger-paris");
    assert_eq!(p["subjects"], json!(["events.syslog"]));
    assert_eq!(p["token_usable"], true);
    // The same component at the same site again: a conflict, nothing made.
    home.fails(
        1,
        &[
            "onboarding",
            "create",
            "a",
            "--component",
            "flowgger",
            "--site",
            "paris",
        ],
    );
    assert_eq!(
        home.json(&["onboarding", "list", "a"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The token is stored only as a hash: its secret is nowhere in the database files.
    let secret = token.rsplit('_').next().unwrap();
    for f in std::fs::read_dir(home.data_dir()).unwrap() {
        let f = f.unwrap().path();
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "token secret found in {}",
            f.display()
        );
    }

    let serve = Serve::start(&home, &url);
    outbox_drained(&home);
    let http = reqwest::Client::new();
    let download = format!("{}/v1/onboarding/download", serve.base);

    // A token in the URL is refused before it is read, and not consumed.
    let r = reply(http.get(format!("{download}?token={token}"))).await;
    assert_eq!((r.status, r.code().as_str()), (400, "token_in_query"));
    let r = reply(
        http.get(format!("{download}?token={token}"))
            .header("X-Warden-Download-Token", &token),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "token_in_query"));
    let r = reply(
        http.post(format!("{download}?x=1"))
            .json(&json!({"token": token})),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "token_in_query"));
    let shown = home.json(&["onboarding", "show", &id]);
    assert_eq!(shown["state"], "issued");
    assert_eq!(shown["refused_downloads"], 0);

    // No token, a malformed one, and a wrong secret for this package: refused; only the
    // last names the package, so only it is counted.
    let r = reply(http.get(&download)).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = reply(
        http.get(&download)
            .header("X-Warden-Download-Token", "wdl_nope"),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "invalid_token"));
    let wrong = format!("{}_{}", token.rsplit_once('_').unwrap().0, "a".repeat(52));
    let r = reply(
        http.get(&download)
            .header("X-Warden-Download-Token", &wrong),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "invalid_token"));
    let shown = home.json(&["onboarding", "show", &id]);
    assert_eq!(shown["state"], "issued");
    assert_eq!(shown["refused_downloads"], 1);

    // The download: once.
    let r = reply(
        http.get(&download)
            .header("X-Warden-Download-Token", &token),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, "application/gzip");
    let archive = r.body;
    let shown = home.json(&["onboarding", "show", &id]);
    assert_eq!(shown["state"], "delivered");
    assert!(shown["delivered_at"].as_i64().is_some(), "{shown}");
    assert_eq!(shown["token_usable"], false);

    let r = reply(
        http.get(&download)
            .header("X-Warden-Download-Token", &token),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (410, "token_used"));
    let r = reply(http.post(&download).json(&json!({"token": token}))).await;
    assert_eq!((r.status, r.code().as_str()), (410, "token_used"));
    let shown = home.json(&["onboarding", "show", &id]);
    assert_eq!(shown["state"], "delivered");
    assert_eq!(shown["refused_downloads"], 3);
    let store = home.store().await;
    let refused: Vec<_> = store
        .ledger(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "onboarding.download_refused" && e.object_key == id)
        .collect();
    // Within one window the ledger has the first refusal only (the package counts all),
    // named after the HTTP peer it came from.
    assert_eq!(
        refused.len(),
        1,
        "one ledger event per window: {refused:#?}"
    );
    assert_eq!(refused[0].summary["reason"], "wrong token");
    assert!(
        refused[0].actor.starts_with("http:127.0.0.1:"),
        "{}",
        refused[0].actor
    );
    assert!(store.verify_ledger().await.unwrap().is_intact());
    store.close().await;

    // The archive: files, modes, config naming the tenant, certificate of the tenant CA.
    let files = unpack(&archive);
    let dir = "flowgger-paris";
    let expected_modes = [
        ("collector.toml", 0o600),
        ("collector.creds", 0o600),
        ("client.key", 0o600),
        ("client.pem", 0o644),
        ("ca.pem", 0o644),
        ("install.sh", 0o700),
    ];
    for (name, m) in expected_modes {
        let (got, _) = files
            .get(&format!("{dir}/{name}"))
            .unwrap_or_else(|| panic!("{name} missing: {:?}", files.keys()));
        assert_eq!(*got, m, "{name} mode {got:o}");
    }
    let toml = text(&files, &format!("{dir}/collector.toml"));
    assert!(toml.contains("tenant_slug = \"a\"\n"), "{toml}");
    assert!(toml.contains(&format!("url = \"{url}\"\n")), "{toml}");
    assert!(toml.contains("subject = \"events.syslog\"\n"), "{toml}");
    assert!(toml.contains(&format!("package_id = \"{id}\"\n")), "{toml}");
    let creds = text(&files, &format!("{dir}/collector.creds"));
    assert!(creds.contains("BEGIN NATS USER JWT"), "creds");
    let cert_pem = text(&files, &format!("{dir}/client.pem"));
    let ca_pem = text(&files, &format!("{dir}/ca.pem"));
    assert!(text(&files, &format!("{dir}/client.key")).contains("PRIVATE KEY"));
    check_certificate(&cert_pem, &ca_pem, "a");

    // install.sh puts the files in place with their modes, the config pointing there.
    let unpacked = home.path().join("unpacked");
    for (name, (m, data)) in &files {
        let path = unpacked.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*m)).unwrap();
    }
    let dest = home.path().join("installed");
    let out = Command::new("sh")
        .arg(unpacked.join(dir).join("install.sh"))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dest), 0o700);
    for (name, m) in [
        ("collector.creds", 0o600),
        ("client.key", 0o600),
        ("collector.toml", 0o600),
        ("client.pem", 0o644),
        ("ca.pem", 0o644),
    ] {
        assert_eq!(mode(&dest.join(name)), m, "installed {name}");
    }
    let installed = std::fs::read_to_string(dest.join("collector.toml")).unwrap();
    assert!(
        installed.contains(&format!("creds = \"{}/collector.creds\"", dest.display())),
        "{installed}"
    );
    assert!(!installed.contains("/etc/warden/collectors"), "{installed}");

    // The creds work: the collector publishes events.syslog, the platform gets a.events.syslog.
    let platform = connect(&url, &home.ok(&["creds", "PLATFORM", "platform"]))
        .await
        .expect("platform connects");
    let mut events = platform.client.subscribe("*.events.>").await.unwrap();
    platform.client.flush().await.unwrap();
    let mut collector = connect(&url, &creds).await.expect("collector connects");
    let deadline = Instant::now() + WAIT;
    'arrived: loop {
        collector
            .client
            .publish("events.syslog", "<13>hello".into())
            .await
            .unwrap();
        collector.client.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), events.next()).await {
            assert_eq!(m.subject.as_str(), "a.events.syslog");
            break 'arrived;
        }
        assert!(
            Instant::now() < deadline,
            "nothing arrived as a.events.syslog"
        );
    }
    // Its permissions are the component's: other catalogue subjects are refused.
    collector
        .client
        .publish("snmp.traps", "x".into())
        .await
        .unwrap();
    let e = collector.next_error(WAIT).await.expect("publish refused");
    assert!(e.to_lowercase().contains("permissions violation"), "{e}");

    // serve observed the first connection: activated.
    let shown = state_becomes(&home, &id, "activated");
    assert!(shown["activated_at"].as_i64().is_some(), "{shown}");

    // An expired token is refused (and recorded), and the package stays issued. The
    // expiry is moved into the past in the database rather than waited for.
    let expiring = home.json(&[
        "onboarding",
        "create",
        "a",
        "--component",
        "trapd",
        "--site",
        "lyon",
        "--expires",
        "1h",
    ]);
    let expiring_id = expiring["package"]["id"].as_str().unwrap().to_string();
    let expiring_token = expiring["token"].as_str().unwrap().to_string();
    let db = format!("sqlite://{}/warden.db", home.data_dir().display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE onboarding_packages SET token_expires_at = 1 WHERE id = $1")
        .bind(&expiring_id)
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let r = reply(http.post(&download).json(&json!({"token": expiring_token}))).await;
    assert_eq!((r.status, r.code().as_str()), (410, "token_expired"));
    let shown = home.json(&["onboarding", "show", &expiring_id]);
    assert_eq!(shown["state"], "issued");
    assert_eq!(shown["refused_downloads"], 1);

    // Revoke: the collector's connection is closed and it cannot come back.
    let revoked = home.json(&["onboarding", "revoke", &id]);
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(revoked["certificate"]["revoked"], true);
    let deadline = Instant::now() + WAIT;
    while collector.client.connection_state() == async_nats::connection::State::Connected {
        assert!(
            Instant::now() < deadline,
            "revoked collector still connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = connect(&url, &creds)
        .await
        .err()
        .expect("reconnect refused");
    assert!(e.to_lowercase().contains("authorization"), "{e}");
    home.fails(1, &["onboarding", "revoke", &id]);
    let r = reply(
        http.get(&download)
            .header("X-Warden-Download-Token", &token),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (410, "package_revoked"));

    // The air-gapped path: `-o` writes the package (0600) and leaves it issued; the
    // token is then spent locally, once.
    let local = home.path().join("otel.tar.gz");
    let made = home.json(&[
        "onboarding",
        "create",
        "a",
        "--component",
        "otel",
        "--site",
        "lab",
        "-o",
        local.to_str().unwrap(),
    ]);
    assert_eq!(mode(&local), 0o600);
    let otel_id = made["package"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        home.json(&["onboarding", "show", &otel_id])["state"],
        "issued"
    );
    let got = home.path().join("otel-downloaded.tar.gz");
    let t = made["token"].as_str().unwrap();
    home.json(&[
        "onboarding",
        "download",
        "--token",
        t,
        "-o",
        got.to_str().unwrap(),
    ]);
    assert_eq!(mode(&got), 0o600);
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&local).unwrap());
    assert_eq!(
        home.json(&["onboarding", "show", &otel_id])["state"],
        "delivered"
    );
    let again = home.path().join("again.tar.gz");
    home.fails(
        1,
        &[
            "onboarding",
            "download",
            "--token",
            t,
            "-o",
            again.to_str().unwrap(),
        ],
    );
    assert!(!again.exists(), "nothing written for a refused download");

    // The admin routes: bearer token with scopes.
    let write = home.json(&["token", "create", "--name", "ops", "--scope", "read,write"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    // A package holds a creds file and a private key: without `creds`, refused and
    // nothing made.
    let r = reply(
        http.post(format!("{}/v1/onboarding", serve.base))
            .bearer_auth(&write)
            .json(&json!({"tenant": "a", "component": "netflow", "site": "edge", "nats_url": url})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "forbidden");
    let issuer = home.json(&[
        "token",
        "create",
        "--name",
        "ops-creds",
        "--scope",
        "read,write,creds",
    ])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = reply(
        http.post(format!("{}/v1/onboarding", serve.base))
            .bearer_auth(&issuer)
            .json(&json!({"tenant": "a", "component": "netflow", "site": "edge", "nats_url": url})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["package"]["state"], "issued");
    assert!(body["token"].as_str().unwrap().starts_with("wdl_"));
    let r = reply(
        http.post(format!("{}/v1/onboarding", serve.base))
            .json(&json!({"tenant": "a", "component": "agent", "site": "x", "nats_url": url})),
    )
    .await;
    assert_eq!(r.status, 401, "creating needs a bearer token");
    let r = reply(
        http.get(format!("{}/v1/onboarding?tenant=a", serve.base))
            .bearer_auth(&write),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 4);
    let r = reply(
        http.post(format!("{}/v1/onboarding/{expiring_id}/revoke", serve.base))
            .bearer_auth(&write),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["state"], "revoked");

    drop(collector);
    drop(platform);
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_2_9() {
    onboarding(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_2_15() {
    onboarding(ServerLine::V2_15).await;
}

/// A CA of the test's own and a server certificate for 127.0.0.1 signed by it (PEM files):
/// the server side of the mTLS check; the client side is the package's.
fn server_pki(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use common::pki;
    let (ca_pem, issuer) = pki::ca("server CA of the test");
    let server = pki::server(&issuer, "server");
    (
        pki::write(dir, "server-ca.pem", &ca_pem),
        pki::write(dir, "server.pem", &server.cert),
        pki::write(dir, "server.key", &server.key),
    )
}

/// Connects over TLS with the collector's creds, trusting `server_ca`, presenting the
/// client certificate `client` (cert, key) if given.
async fn connect_tls(
    url: &str,
    creds: &str,
    server_ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<async_nats::Client, String> {
    let mut opts = async_nats::ConnectOptions::with_credentials(creds)
        .map_err(|e| format!("bad creds: {e}"))?
        .require_tls(true)
        .add_root_certificates(server_ca.to_path_buf())
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(Some(0));
    if let Some((cert, key)) = client {
        opts = opts.add_client_certificate(cert.to_path_buf(), key.to_path_buf());
    }
    match tokio::time::timeout(Duration::from_secs(10), opts.connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

/// The package's certificate is what a nats-server requiring client certificates asks
/// for: with `tls { verify: true }` trusting the tenant CA from the package, the collector
/// connects with the package's certificate and creds and publishes into its prefix; without
/// the certificate it is refused.
async fn certificate_over_mtls(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "MTLSOP"]);
    home.json(&["tenant", "add", "a"]);
    let pkg = home.path().join("pkg.tar.gz");
    home.json(&[
        "onboarding",
        "create",
        "a",
        "--component",
        "flowgger",
        "--site",
        "paris",
        "-o",
        pkg.to_str().expect("utf-8 path"),
    ]);
    let files = unpack(&std::fs::read(&pkg).expect("package written"));
    let dir = home.path().join("pkg");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["client.pem", "client.key", "ca.pem"] {
        let (_, data) = files
            .get(&format!("flowgger-paris/{name}"))
            .unwrap_or_else(|| panic!("{name} missing: {:?}", files.keys()));
        std::fs::write(dir.join(name), data).unwrap();
    }
    let creds = text(&files, "flowgger-paris/collector.creds");
    let (server_ca, server_cert, server_key) = server_pki(home.path());

    // Warden's rendered config (accounts preloaded), plus client TLS trusting the tenant CA.
    let port = warden_testkit::free_port();
    let conf = home.path().join("mtls.conf");
    let resolver = home.path().join("mtls-resolver");
    home.ok(&[
        "nats-config",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--resolver-dir",
        resolver.to_str().expect("utf-8 path"),
        "-o",
        conf.to_str().expect("utf-8 path"),
    ]);
    let mut config = std::fs::read_to_string(&conf).expect("rendered config");
    config.push_str(&format!(
        "\ntls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 5\n}}\n",
        server_cert.display(),
        server_key.display(),
        dir.join("ca.pem").display(),
    ));
    let server = warden_testkit::NatsServer::start(&bin, &home.path().join("mtls-server"), &config)
        .unwrap_or_else(|e| panic!("nats-server {} refused the TLS config: {e}", bin.version));
    let url = format!("tls://127.0.0.1:{}", server.port());

    // Without the package's certificate: refused by the TLS handshake.
    let refused = connect_tls(&url, &creds, &server_ca, None)
        .await
        .expect_err("admitted without a client certificate");
    eprintln!("refused without a client certificate: {refused}");
    assert!(
        server.wait_for_log("TLS handshake error", WAIT),
        "the server logged no failed handshake"
    );

    // With it: admitted, and its events reach the platform under the tenant prefix.
    let platform_creds = home.ok(&["creds", "PLATFORM", "platform"]);
    let platform = connect_tls(
        &url,
        &platform_creds,
        &server_ca,
        Some((&dir.join("client.pem"), &dir.join("client.key"))),
    )
    .await
    .expect("platform connects (with a certificate the server trusts)");
    let mut events = platform.subscribe("*.events.>").await.unwrap();
    platform.flush().await.unwrap();
    let collector = connect_tls(
        &url,
        &creds,
        &server_ca,
        Some((&dir.join("client.pem"), &dir.join("client.key"))),
    )
    .await
    .expect("collector connects with the package's certificate and creds");
    let deadline = Instant::now() + WAIT;
    loop {
        collector
            .publish("events.syslog", "<13>over mTLS".into())
            .await
            .unwrap();
        collector.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), events.next()).await {
            assert_eq!(m.subject.as_str(), "a.events.syslog");
            break;
        }
        assert!(Instant::now() < deadline, "nothing arrived over mTLS");
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_over_mtls_2_9() {
    certificate_over_mtls(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_over_mtls_2_15() {
    certificate_over_mtls(ServerLine::V2_15).await;
}

/// `<name>::on_sqlite` and `<name>::on_postgres`.
macro_rules! on_both_stores {
    ($name:ident, $flow:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("warden.db").display());
                super::$flow(&url).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let db = warden_testkit::PgDatabase::create().await;
                super::$flow(db.url()).await;
            }
        }
    };
}

/// The HTTP API of `warden serve` in this process, on a store at a URL, with packages
/// made by the operator; its refused downloads are counted on a clock the test moves
/// (`skew` seconds ahead of the wall clock) instead of waiting for windows to close.
struct DownloadApi {
    download: String,
    /// Packages made: (id, token).
    packages: Vec<(String, String)>,
    store: warden_store::Store,
    operator: warden_ops::Warden,
    /// The operator's engine with the test's download guard (the one the API serves).
    served: warden_ops::Warden,
    skew: std::sync::Arc<std::sync::atomic::AtomicI64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn download_api(
    url: &str,
    limits: warden_ops::onboarding::DownloadLimits,
    sites: &[&str],
) -> DownloadApi {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use warden_ops::onboarding::{DownloadGuard, NewPackage};
    use warden_ops::{Actor, InitOptions, Settings, Warden};

    let store = warden_store::Store::open(url, warden_store::MasterKey::from_bytes([5; 32]))
        .await
        .expect("store");
    let mut operator = Warden::open(store.clone(), Actor::operator("cli:test"))
        .await
        .expect("open");
    operator
        .init(InitOptions {
            operator: "ONBOARDOP".into(),
            account: None,
            user: None,
            settings: Settings::default(),
            service_urls: Vec::new(),
            migrations: Vec::new(),
        })
        .await
        .expect("init");
    operator
        .add_tenant("a", &Default::default())
        .await
        .expect("tenant");
    let mut packages = Vec::new();
    for site in sites {
        let made = operator
            .create_package(&NewPackage {
                tenant: "a".into(),
                component: "flowgger".into(),
                site: site.to_string(),
                token_expires_at: warden_ops::now() + 3600,
                nats_url: "nats://127.0.0.1:4222".into(),
                install_dir: None,
            })
            .await
            .expect("package");
        packages.push((made.package.id.clone(), made.token.to_string()));
    }
    let skew = Arc::new(AtomicI64::new(0));
    let clock = skew.clone();
    let served = operator.with_download_guard(DownloadGuard::with_clock(limits, move || {
        warden_ops::now() + clock.load(Ordering::SeqCst)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = warden::http::HttpState {
        warden: served.clone(),
        ready: Arc::new(AtomicBool::new(true)),
    };
    tokio::spawn(warden::http::serve(listener, state, None, async move {
        let _ = stopped.await;
    }));
    DownloadApi {
        download: format!("http://{addr}/v1/onboarding/download"),
        packages,
        store,
        operator,
        served,
        skew,
        _stop: stop,
    }
}

impl DownloadApi {
    /// Moves the download guard's clock `secs` ahead.
    fn advance(&self, secs: i64) {
        self.skew
            .fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }

    /// `GET` the download with `token`, from `client`: (status, error code, Retry-After).
    async fn get(&self, client: &reqwest::Client, token: &str) -> (u16, String, Option<String>) {
        let r = client
            .get(&self.download)
            .header("X-Warden-Download-Token", token)
            .timeout(WAIT)
            .send()
            .await
            .expect("HTTP request");
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.bytes().await.expect("body");
        let code = serde_json::from_slice::<Value>(&body)
            .map(|v| v["error"]["code"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        (status, code, retry)
    }

    /// The ledger's events.
    async fn ledger(&self) -> Vec<warden_store::LedgerEvent> {
        self.store.ledger(0, 100_000).await.expect("ledger")
    }

    async fn refused_downloads(&self, id: &str) -> i64 {
        self.operator
            .package(id)
            .await
            .expect("package")
            .refused_downloads
    }

    async fn state(&self, id: &str) -> String {
        self.operator.package(id).await.expect("package").state
    }
}

/// A token for `token`'s package with a wrong secret.
fn wrong_secret(token: &str) -> String {
    format!("{}_{}", token.rsplit_once('_').unwrap().0, "a".repeat(52))
}

/// A well-formed token naming no package.
fn unknown_package_token() -> String {
    format!("wdl_{}_{}", "a".repeat(16), "b".repeat(52))
}

/// 100 wrong-secret downloads of one package within a window make one ledger event (its
/// actor the HTTP peer) and count 100 on the package; 100 downloads naming no package
/// (malformed or unknown) make one event too. When the window has closed, the next
/// attempt writes one summary per bucket saying 100. The ledger verifies, and the right
/// token still downloads.
async fn refused_downloads_are_aggregated(url: &str) {
    use warden_ops::onboarding::DownloadLimits;
    let limits = DownloadLimits {
        window_secs: 60,
        peer_refusals: 1_000,
    };
    let api = download_api(url, limits, &["paris"]).await;
    let (id, token) = api.packages[0].clone();
    let http = reqwest::Client::new();
    let before = api.ledger().await.len();

    let wrong = wrong_secret(&token);
    for _ in 0..100 {
        let (status, code, _) = api.get(&http, &wrong).await;
        assert_eq!((status, code.as_str()), (403, "invalid_token"));
    }
    assert_eq!(
        api.refused_downloads(&id).await,
        100,
        "every refusal counted"
    );
    let new = api.ledger().await.split_off(before);
    assert_eq!(new.len(), 1, "one ledger event for the window: {new:#?}");
    let first = &new[0];
    assert_eq!(
        (first.action.as_str(), first.object_key.as_str()),
        ("onboarding.download_refused", id.as_str())
    );
    assert!(
        first.actor.starts_with("http:127.0.0.1:"),
        "the actor is the HTTP peer: {}",
        first.actor
    );
    assert_eq!(first.summary["reason"], "wrong token");
    assert_eq!(first.summary["peer"], "127.0.0.1");

    let before = before + new.len();
    let unknown = unknown_package_token();
    for i in 0..100 {
        let t = if i % 2 == 0 {
            unknown.as_str()
        } else {
            "wdl_nope"
        };
        let (status, code, _) = api.get(&http, t).await;
        assert_eq!((status, code.as_str()), (403, "invalid_token"));
    }
    let new = api.ledger().await.split_off(before);
    assert_eq!(new.len(), 1, "one ledger event for the window: {new:#?}");
    assert_eq!(
        (
            new[0].action.as_str(),
            new[0].object_kind.as_str(),
            new[0].object_key.as_str()
        ),
        ("onboarding.download_refused", "download_peer", "127.0.0.1")
    );
    assert!(
        new[0].actor.starts_with("http:127.0.0.1:"),
        "{}",
        new[0].actor
    );

    // The windows close: the next attempt (the right token) writes their summaries
    // first, then downloads.
    let before = before + new.len();
    api.advance(61);
    let (status, code, _) = api.get(&http, &token).await;
    assert_eq!((status, code.as_str()), (200, ""));
    assert_eq!(api.state(&id).await, "delivered");
    let new = api.ledger().await.split_off(before);
    let actions: Vec<&str> = new.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "onboarding.download_refusals",
            "onboarding.download_refusals",
            "onboarding.deliver"
        ],
        "{new:#?}"
    );
    let package = &new[0];
    assert_eq!(package.object_key, id);
    assert_eq!(package.summary["refusals"], 100);
    assert_eq!(package.summary["reasons"], json!({"wrong token": 100}));
    assert_eq!(package.summary["peers"], json!(["127.0.0.1"]));
    assert!(
        package.actor.starts_with("http:127.0.0.1:"),
        "{}",
        package.actor
    );
    let peer = &new[1];
    assert_eq!(
        (peer.object_kind.as_str(), peer.object_key.as_str()),
        ("download_peer", "127.0.0.1")
    );
    assert_eq!(peer.summary["refusals"], 100);
    assert_eq!(
        peer.summary["reasons"],
        json!({"unknown package": 50, "malformed token": 50})
    );
    assert!(
        new[2].actor.starts_with("http:127.0.0.1:"),
        "{}",
        new[2].actor
    );

    // A process about to stop writes the summary of a window still open.
    let before = before + new.len();
    for _ in 0..3 {
        let (status, code, _) = api.get(&http, &token).await;
        assert_eq!((status, code.as_str()), (410, "token_used"));
    }
    assert_eq!(
        api.ledger().await.len(),
        before + 1,
        "the window's first refusal"
    );
    assert_eq!(api.served.flush_download_refusals().await.unwrap(), 1);
    let new = api.ledger().await.split_off(before);
    assert_eq!(new.len(), 2, "{new:#?}");
    assert_eq!(new[1].action, "onboarding.download_refusals");
    assert_eq!(new[1].summary["reasons"], json!({"already used": 3}));
    assert_eq!(api.refused_downloads(&id).await, 103);
    assert!(api.store.verify_ledger().await.unwrap().is_intact());
}
on_both_stores!(
    refused_downloads_are_aggregated_in_the_ledger,
    refused_downloads_are_aggregated
);

/// An address with too many refused attempts in its window is answered `429` (with
/// `Retry-After`) without the database being read: even the right token is turned away
/// and not spent, nothing is counted on the package. Another address is not affected;
/// when the window ends the address may download again, and the throttled attempts are
/// summarised in one ledger event.
async fn a_peer_with_too_many_refusals_is_throttled(url: &str) {
    use warden_ops::onboarding::DownloadLimits;
    let limits = DownloadLimits {
        window_secs: 60,
        peer_refusals: 5,
    };
    let api = download_api(url, limits, &["paris", "lyon"]).await;
    let (paris, paris_token) = api.packages[0].clone();
    let (lyon, lyon_token) = api.packages[1].clone();
    let http = reqwest::Client::new();
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client on 127.0.0.2");

    let wrong = wrong_secret(&paris_token);
    for _ in 0..5 {
        let (status, code, _) = api.get(&http, &wrong).await;
        assert_eq!((status, code.as_str()), (403, "invalid_token"));
    }
    let before = api.ledger().await.len();
    for t in [
        wrong.as_str(),
        unknown_package_token().as_str(),
        paris_token.as_str(),
    ] {
        let (status, code, retry) = api.get(&http, t).await;
        assert_eq!((status, code.as_str()), (429, "too_many_attempts"));
        let secs: i64 = retry.expect("Retry-After").parse().expect("seconds");
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
    }
    assert_eq!(
        api.state(&paris).await,
        "issued",
        "the right token not spent"
    );
    assert_eq!(
        api.refused_downloads(&paris).await,
        5,
        "throttled: not counted"
    );
    assert_eq!(
        api.ledger().await.len(),
        before,
        "throttled: nothing written"
    );

    // Another address downloads its package meanwhile.
    let (status, _, _) = api.get(&other, &lyon_token).await;
    assert_eq!(status, 200);
    assert_eq!(api.state(&lyon).await, "delivered");

    // The window ends: the address downloads again, its throttled attempts summarised.
    api.advance(61);
    let (status, code, _) = api.get(&http, &paris_token).await;
    assert_eq!((status, code.as_str()), (200, ""));
    assert_eq!(api.state(&paris).await, "delivered");
    let throttled: Vec<_> = api
        .ledger()
        .await
        .into_iter()
        .filter(|e| e.action == "onboarding.download_throttled")
        .collect();
    assert_eq!(throttled.len(), 1, "{throttled:#?}");
    assert_eq!(throttled[0].object_key, "127.0.0.1");
    assert_eq!(throttled[0].summary["throttled"], 3);
    assert_eq!(throttled[0].summary["refusals"], 5);
    assert!(api.store.verify_ledger().await.unwrap().is_intact());
}
on_both_stores!(
    a_peer_with_too_many_refusals_is_throttled_for_its_window,
    a_peer_with_too_many_refusals_is_throttled
);
