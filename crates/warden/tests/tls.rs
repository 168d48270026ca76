//! HTTPS on `warden serve` and `warden chat` with certificates the test makes (rcgen):
//! the API answers over TLS with `Strict-Transport-Security`, the console's cookies are
//! `Secure`, plain HTTP gets no answer; a new certificate is served after SIGHUP and an
//! unusable one is refused with the old one kept; `--tls-client-ca` requires a client
//! certificate of that CA; bad flags are usage errors. The client is tokio-rustls with
//! the test's CA as its only root, speaking HTTP/1.1 by hand, so the test sees exactly
//! which certificate the server presented.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::Home;
use common::pki::{self, ca};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_testkit::free_port;

const WAIT: Duration = Duration::from_secs(20);

/// A server (or client) certificate signed by `issuer`: (cert PEM, key PEM, cert DER).
fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    cn: &str,
    client: bool,
) -> (String, String, Vec<u8>) {
    let l = if client {
        pki::client(issuer, cn)
    } else {
        pki::server(issuer, cn)
    };
    (l.cert, l.key, l.der)
}

/// Writes `text` to `path` as a new file renamed into place (as a renewal tool does).
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A `warden serve` or `warden chat` child: its address, its log lines; killed on drop.
struct Server {
    child: Child,
    addr: String,
    log: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(home: &Home, args: &[&str], line_prefix: &str) -> Server {
        let mut child = home
            .command()
            .args(args)
            .env("WARDEN_LOG", "warden=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let (ltx, lrx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = ltx.send(line);
        });
        let line = lrx.recv_timeout(WAIT).expect("the address line");
        let addr = line
            .strip_prefix(line_prefix)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {line_prefix:?} in {line:?}"))
            .to_string();
        Server { child, addr, log }
    }

    fn hangup(&self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) if l.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    }
}

/// What one HTTPS request saw: the server's leaf certificate, status, headers, body.
struct Seen {
    leaf: Vec<u8>,
    status: u16,
    head: String,
    body: String,
}

fn client_config(ca_pem: &str, client: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client {
        None => b.with_no_client_auth(),
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    })
}

use rustls::pki_types::pem::PemObject;

/// `GET path` over TLS; `Err` when the handshake or the exchange fails.
async fn get(addr: &str, config: Arc<rustls::ClientConfig>, path: &str) -> Result<Seen, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut raw))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok(Seen {
        leaf,
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn pki(home: &Home) -> (Pki, Vec<u8>) {
    let (ca_pem, issuer) = ca("Warden test CA");
    std::fs::write(home.path().join("ca.pem"), &ca_pem).unwrap();
    let (cert, key, der) = leaf(&issuer, "warden-1", false);
    std::fs::write(home.path().join("cert.pem"), cert).unwrap();
    std::fs::write(home.path().join("key.pem"), key).unwrap();
    (Pki { ca_pem, issuer }, der)
}

fn path(home: &Home, file: &str) -> String {
    home.path().join(file).to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_over_https_reloads_on_sighup() {
    let home = Home::new();
    home.ok(&["init", "--name", "TLS"]);
    let (pki, first) = pki(&home);
    let nats = format!("nats://127.0.0.1:{}", free_port());
    let (cert, key) = (path(&home, "cert.pem"), path(&home, "key.pem"));
    let serve = Server::start(
        &home,
        &[
            "serve",
            "--nats",
            &nats,
            "--http",
            "127.0.0.1:0",
            "--no-service",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        "warden serve: https://",
    );
    let trust = client_config(&pki.ca_pem, None);

    // The API over TLS, with HSTS; the console's cookies are Secure.
    let seen = get(&serve.addr, trust.clone(), "/healthz")
        .await
        .expect("https");
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.leaf, first);
    assert!(
        seen.head.contains("strict-transport-security: max-age="),
        "{}",
        seen.head
    );
    let login = get(&serve.addr, trust.clone(), "/console/login")
        .await
        .unwrap();
    let cookies: Vec<&str> = login
        .head
        .lines()
        .filter(|l| l.starts_with("set-cookie:"))
        .collect();
    assert!(!cookies.is_empty(), "{}", login.head);
    assert!(
        cookies.iter().all(|c| c.contains("; secure")),
        "{cookies:?}"
    );

    // Plain HTTP to the same port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(&serve.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut raw)).await;
    assert!(!String::from_utf8_lossy(&raw).contains("200 OK"));

    // A renewed certificate, taken on SIGHUP.
    let (cert2, key2, second) = leaf(&pki.issuer, "warden-2", false);
    replace(&home.path().join("key.pem"), &key2);
    replace(&home.path().join("cert.pem"), &cert2);
    serve.hangup();
    serve.wait_log("TLS certificate reloaded");
    let seen = get(&serve.addr, trust.clone(), "/healthz").await.unwrap();
    assert_eq!(seen.leaf, second, "the renewed certificate is served");

    // An unusable one is refused and the one in use kept.
    replace(&home.path().join("cert.pem"), "not a certificate\n");
    serve.hangup();
    serve.wait_log("the certificate in use is kept");
    let seen = get(&serve.addr, trust, "/healthz").await.unwrap();
    assert_eq!(seen.status, 200);
    assert_eq!(seen.leaf, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_ca_requires_a_client_certificate_on_chat_too() {
    let home = Home::new();
    home.ok(&["init", "--name", "TLS"]);
    let (pki, _) = pki(&home);
    let (client_cert, client_key, _) = leaf(&pki.issuer, "backend", true);
    let (other_pem, other_issuer) = ca("Another CA");
    let _ = other_pem;
    let (stranger_cert, stranger_key, _) = leaf(&other_issuer, "stranger", true);
    let nats = format!("nats://127.0.0.1:{}", free_port());
    let (cert, key, ca) = (
        path(&home, "cert.pem"),
        path(&home, "key.pem"),
        path(&home, "ca.pem"),
    );
    // serve creates the chat account on its first start; chat then runs alone over TLS.
    let serve = Server::start(
        &home,
        &[
            "serve",
            "--nats",
            &nats,
            "--http",
            "127.0.0.1:0",
            "--no-service",
            "--chat-secret",
            "tls-test-secret-0123456789",
            "--chat-audience",
            "a",
            "--chat-issuer",
            "i",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
        "warden serve: https://",
    );
    let anonymous = client_config(&pki.ca_pem, None);
    let known = client_config(&pki.ca_pem, Some((&client_cert, &client_key)));
    let stranger = client_config(&pki.ca_pem, Some((&stranger_cert, &stranger_key)));
    assert!(
        get(&serve.addr, anonymous.clone(), "/healthz")
            .await
            .is_err()
    );
    assert!(
        get(&serve.addr, stranger.clone(), "/healthz")
            .await
            .is_err()
    );
    assert_eq!(
        get(&serve.addr, known.clone(), "/healthz")
            .await
            .unwrap()
            .status,
        200
    );

    let chat = Server::start(
        &home,
        &[
            "chat",
            "--nats",
            &nats,
            "--http",
            "127.0.0.1:0",
            "--chat-secret",
            "tls-test-secret-0123456789",
            "--chat-audience",
            "a",
            "--chat-issuer",
            "i",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
        "warden chat: https://",
    );
    assert!(get(&chat.addr, anonymous, "/rooms").await.is_err());
    let seen = get(&chat.addr, known, "/rooms").await.unwrap();
    // No chat token: the gateway's own JSON refusal, over TLS, with HSTS.
    assert_eq!(seen.status, 401, "{}", seen.body);
    assert!(
        seen.head.contains("strict-transport-security"),
        "{}",
        seen.head
    );
    drop(serve);
}

#[test]
fn bad_tls_flags_are_usage_errors() {
    let home = Home::new();
    home.ok(&["init", "--name", "TLS"]);
    let missing = path(&home, "missing.pem");
    let err = home.fails(2, &["serve", "--tls-cert", &missing, "--tls-key", &missing]);
    assert!(
        err.contains("--tls-cert") && err.contains("no such file"),
        "{err}"
    );
    home.fails(2, &["serve", "--tls-cert", &missing]);
    home.fails(2, &["chat", "--tls-key", &missing]);
    // A file that is not a certificate: refused before anything listens, naming it.
    let junk = home.path().join("junk.pem");
    std::fs::write(&junk, "junk\n").unwrap();
    let junk = junk.to_str().unwrap().to_string();
    let err = home.fails(
        1,
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tls-cert",
            &junk,
            "--tls-key",
            &junk,
        ],
    );
    assert!(err.contains("junk.pem"), "{err}");
}
