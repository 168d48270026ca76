//! The walk-through of docs/auth-callout.md, run as written on a real nats-server 2.15
//! started from the configuration Warden renders: the directory of "Before you start",
//! then every line of "From zero to a connected client" — set-up, an OIDC
//! authenticator, the sentinel creds, the server, the responder — ending with
//! `warden tool sub`/`pub` through the callout with an ID token, and a publish outside
//! the user's grant refused by the server. Then what the doc says about a grant removed
//! while connected, the ledger's `callout.decisions`, and the LDAP client line
//! (`--login` with `NATS_PASSWORD`) against a real slapd.
//!
//! The blocks below are the doc's, character for character: the test fails when they
//! differ, so a change to either is made in both. Only two things are the test's own:
//! the client port (the doc's 4333 becomes a free port) and `ID_TOKEN`, which an
//! identity provider made here (its JWKS is `jwks.json`) signs with its ES256 key.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Home;
use common::callout::{
    Alg, Idp, Presented, connect_as, decisions, propose_and_confirm, sentinel, slapd_with_people,
    terminate,
};
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine};

/// The document the blocks below come from.
const DOC: &str = include_str!("../../../docs/auth-callout.md");

/// docs/auth-callout.md, "Before you start": a directory user `ada` holding task
/// `orders` in account APP through role `sales` (docs/governance.md).
const BEFORE: &str = r#"warden init --name ACME
warden account add APP
warden dir user add admin --name "Admin"
warden dir user add ada --name "Ada Lovelace" --as admin
warden task create orders --account APP --allow-pub 'orders.>' --allow-sub 'orders.>' --owner admin --as admin
warden role create sales --owner admin --as admin
warden propose role-task add --role sales --task orders --as admin     # p1
warden confirm p1 --as admin
warden propose role-member add --role sales --user ada --as admin      # p2
warden confirm p2 --as admin
"#;

/// docs/auth-callout.md, "From zero to a connected client".
const WALKTHROUGH: &str = r#"export NATS_URL=nats://127.0.0.1:4333 WARDEN_NATS_URL=nats://127.0.0.1:4333
warden callout setup --allowed-account APP
warden callout auth add oidc idp --jwks jwks.json --issuer https://idp.example.com --audience nats
warden callout sentinel -o sentinel.creds
warden nats-config --listen 127.0.0.1:4333 -o nats.conf
nats-server -c nats.conf &
warden callout run &                 # or: warden serve --callout &
warden tool sub --creds sentinel.creds --token "$ID_TOKEN" 'orders.>' &
warden tool pub --creds sentinel.creds --token "$ID_TOKEN" orders.new hi
warden tool pub --creds sentinel.creds --token "$ID_TOKEN" billing.refund nope
"#;

/// docs/auth-callout.md, "ldap": the client line of a directory password.
const LDAP_CLIENT: &str = "warden tool pub --creds sentinel.creds --login ada orders.new hi";

/// The doc's issuer and audience (in the walk-through's `auth add oidc` line).
const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "nats";

/// The client port the doc uses; the test's is a free one.
const DOC_PORT: &str = "4333";

/// The phrase `warden tool` uses for a publish the server refused.
const REFUSED_PUBLISH: &str = "server refused the publish to billing.refund";

/// A shell line's words: quotes removed, `$NAME` expanded from `vars`, a `#` comment
/// dropped, and whether it ends in `&` (runs in the background). Enough shell for the
/// doc's blocks, which use nothing else.
fn words(line: &str, vars: &HashMap<String, String>) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, '$') => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let value = vars
                    .get(&name)
                    .unwrap_or_else(|| panic!("${name} is not set in {line:?}"));
                word.push_str(value);
                in_word = true;
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {line:?}");
    if in_word {
        out.push(word);
    }
    let background = out.last().is_some_and(|w| w == "&");
    if background {
        out.pop();
    }
    (out, background)
}

/// A child process killed (and reaped) on drop.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a child writes on one of its pipes, as they come. The pipe is read to its
/// end even when nobody listens any more, so the child never blocks on a full pipe.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits (bounded) for a line containing `needle`; the lines seen until then.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, what: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("{what}: no line with {needle:?} within 20 s; saw {seen:?}"),
        }
    }
}

/// Runs the doc's lines in a home directory, as a reader would in their shell: the
/// working directory is the home (so `jwks.json`, `sentinel.creds` and `nats.conf` are
/// there), `export` sets variables for the lines after it, and `warden` is this
/// build's binary on the home's data directory.
struct Shell {
    home: Home,
    port: String,
    vars: HashMap<String, String>,
    bin: NatsServerBinary,
    server: Option<NatsServer>,
    /// `warden callout run &`.
    responder: Option<Bg>,
    /// `warden tool sub … &`.
    subscriber: Option<Bg>,
    /// Lines of `warden tool sub … &` on its standard output.
    sub_out: Option<mpsc::Receiver<String>>,
}

impl Shell {
    fn new() -> Shell {
        Shell {
            home: Home::new(),
            port: warden_testkit::free_port().to_string(),
            vars: HashMap::new(),
            bin: NatsServerBinary::get(ServerLine::V2_15),
            server: None,
            responder: None,
            subscriber: None,
            sub_out: None,
        }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    /// `warden ARGS…` as the shell would start it.
    fn warden(&self, args: &[String]) -> Command {
        let mut cmd = self.home.command();
        cmd.args(args).current_dir(self.path());
        for var in [
            "WARDEN_HTTP_LISTEN",
            "NATS_URL",
            "WARDEN_NATS_URL",
            "NATS_TOKEN",
            "NATS_PASSWORD",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in &self.vars {
            if k != "ID_TOKEN" {
                cmd.env(k, v);
            }
        }
        cmd
    }

    /// Runs every line of `block` (after checking the doc holds it as a block);
    /// `check` looks at each foreground `warden` line's output.
    fn run_block(&mut self, block: &str, check: impl Fn(&str, &Output)) {
        assert!(
            DOC.contains(&format!("```sh\n{block}```")),
            "docs/auth-callout.md no longer holds this block as written:\n{block}"
        );
        for line in block.lines() {
            let line = line.replace(DOC_PORT, &self.port);
            let (words, background) = words(&line, &self.vars);
            let Some(first) = words.first() else { continue };
            match (first.as_str(), background) {
                ("export", false) => {
                    for assignment in &words[1..] {
                        let (k, v) = assignment
                            .split_once('=')
                            .unwrap_or_else(|| panic!("export without a value: {line}"));
                        self.vars.insert(k.to_string(), v.to_string());
                    }
                }
                ("nats-server", true) => self.start_server(&words),
                ("warden", true) => self.start_warden(&words[1..], &line),
                ("warden", false) => {
                    let out = self
                        .warden(&words[1..])
                        .output()
                        .expect("run a warden line");
                    check(&line, &out);
                }
                _ => panic!("the test does not know how to run {line:?}"),
            }
        }
    }

    /// `nats-server -c FILE &`: the rendered configuration, unchanged, on 2.15.
    fn start_server(&mut self, words: &[String]) {
        assert_eq!(words.len(), 3, "{words:?}");
        assert_eq!(words[1], "-c", "{words:?}");
        let config =
            std::fs::read_to_string(self.path().join(&words[2])).expect("rendered configuration");
        assert!(
            config.contains(&format!("127.0.0.1:{}", self.port)),
            "{config}"
        );
        let dir = self.path().join("nats-server");
        std::fs::create_dir_all(&dir).expect("server dir");
        let server = NatsServer::start(&self.bin, &dir, &config)
            .unwrap_or_else(|e| panic!("nats-server 2.15 refused the rendered config: {e}"));
        assert_eq!(server.port().to_string(), self.port);
        self.server = Some(server);
    }

    /// A background `warden` line, once it is ready: the responder once it says it
    /// answers, a subscriber once it says it listens.
    fn start_warden(&mut self, args: &[String], line: &str) {
        let mut child = self
            .warden(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a background warden line");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        match args.first().map(String::as_str) {
            Some("callout") => {
                wait_line(&stdout, "warden callout: answering on", line);
                // Its log (refusals at info) is read by nobody, but drained.
                drop(stderr);
                self.responder = Some(Bg(child));
            }
            Some("tool") => {
                wait_line(&stderr, "listening on", line);
                self.sub_out = Some(stdout);
                self.subscriber = Some(Bg(child));
            }
            _ => panic!("the test does not know when {line:?} is ready"),
        }
    }

    fn server(&self) -> &NatsServer {
        self.server.as_ref().expect("the server runs")
    }

    /// A `warden …` line of the doc, run with extra variables, as the shell would.
    fn run_line(&self, line: &str, vars: &[(&str, &str)]) -> Output {
        let (words, background) = words(line, &self.vars);
        assert!(!background && words[0] == "warden", "{line}");
        let mut cmd = self.warden(&words[1..]);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().expect("run warden")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A foreground line of the blocks: every one succeeds but the publish the doc says the
/// server refuses.
fn as_documented(line: &str, out: &Output) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if line.contains("billing.refund") {
        assert_eq!(out.status.code(), Some(1), "{line}: {stdout}{stderr}");
        assert!(
            stderr.contains(REFUSED_PUBLISH)
                && stderr.to_lowercase().contains("permissions violation"),
            "{line}: {stderr}"
        );
    } else {
        assert!(
            out.status.success(),
            "{line} failed ({:?}):\n{stdout}\n{stderr}",
            out.status.code()
        );
    }
}

/// `warden tool` failed with the server's "authorization violation" (a refused connect).
fn refused_connect(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{what}");
    assert!(
        text(&out.stderr)
            .to_lowercase()
            .contains("authorization violation"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_walkthrough_connects_a_directory_user_2_15() {
    let mut sh = Shell::new();
    let idp = Idp::issuing(ISSUER, AUDIENCE);
    idp.write_jwks(sh.path());
    let token = idp.valid(Alg::Es256, "ada");
    sh.vars.insert("ID_TOKEN".into(), token.clone());

    sh.run_block(BEFORE, as_documented);
    sh.run_block(WALKTHROUGH, as_documented);

    // The subscriber of the walk-through received the publish, and stopped (--count 1).
    let sub_out = sh.sub_out.take().expect("the subscriber ran");
    let got = wait_line(&sub_out, "[orders.new]", "warden tool sub");
    assert_eq!(got.last().map(String::as_str), Some("[orders.new] hi"));

    // The sentinel creds are a secret: 0600, like the configuration's creds.
    let sentinel = sh.home.creds_file("sentinel.creds");
    let url = sh.server().url();

    // A grant removed by a confirmed proposal applies from the next connect; a client
    // connected before keeps what it was given until its user JWT expires.
    // Connected as the doc's client does (sentinel creds and an ID token), and staying.
    let mut before = connect_as(&url, Some(&sentinel), Presented::Token(&token))
        .await
        .expect("ada connects before her grant is removed");
    before
        .publish_delivered("orders.kept", "before the removal")
        .await;
    propose_and_confirm(
        &sh.home,
        &["role-member", "remove", "--role", "sales", "--user", "ada"],
    );
    // What `warden serve` would do: the re-issued account (ada's creds user revoked) pushed.
    sh.home.ok(&["push", "--all", "--nats", &url]);
    let again = sh.run_line(
        r#"warden tool pub --creds sentinel.creds --token "$ID_TOKEN" orders.new hi"#,
        &[],
    );
    refused_connect(&again, "ada still admitted");
    assert!(
        sh.server()
            .wait_for_log("directory user ada holds no task", Duration::from_secs(10)),
        "the server log does not say why:\n{}",
        sh.server().log()
    );
    before
        .publish_delivered("orders.kept", "the connection made before the removal")
        .await;
    drop(before);

    // Decisions are summarised in the ledger when the responder stops: counts by code,
    // never the ID token.
    let responder = sh.responder.as_mut().expect("the responder runs");
    terminate(&mut responder.0, "warden callout run");
    let decisions = decisions(&sh.home);
    assert!(!decisions.is_empty(), "no callout.decisions in the ledger");
    let allowed: u64 = decisions
        .iter()
        .map(|e| e["summary"]["allowed"].as_u64().unwrap_or(0))
        .sum();
    // sub, pub, the refused publish's connection and the kept connection.
    assert!(allowed >= 4, "{decisions:?}");
    let no_grants: u64 = decisions
        .iter()
        .map(|e| {
            e["summary"]["refused"]["no_grants"]["count"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert!(no_grants >= 1, "{decisions:?}");
    let all = serde_json::to_string(&sh.home.ledger()).expect("ledger as JSON");
    assert!(!all.contains(&token), "the ID token reached the ledger");
}

/// The doc's LDAP client line (`--login` with the password in `NATS_PASSWORD`) against a
/// real slapd; the set-up is the walk-through's, with an `ldap` authenticator for it.
#[tokio::test(flavor = "multi_thread")]
async fn the_documented_ldap_client_line_2_15() {
    assert!(
        DOC.contains(LDAP_CLIENT),
        "docs/auth-callout.md no longer holds {LDAP_CLIENT:?}"
    );
    const SUFFIX: &str = "dc=walk,dc=example";
    let slapd = slapd_with_people(SUFFIX, &[("ada", "Ada", "Lovelace", "ada-directory-pw")]);

    let mut sh = Shell::new();
    sh.run_block(BEFORE, as_documented);
    let h = &sh.home;
    h.ok(&["callout", "setup", "--allowed-account", "APP"]);
    let pw = sh.path().join("search.pw");
    std::fs::write(&pw, format!("{}\n", slapd.password())).expect("search.pw");
    h.ok(&[
        "callout",
        "auth",
        "add",
        "ldap",
        "corp",
        "--url",
        &slapd.url(),
        "--base",
        &format!("ou=people,{SUFFIX}"),
        "--bind-dn",
        &slapd.bind_dn(),
        "--password-file",
        pw.to_str().expect("utf-8 path"),
    ]);
    sentinel(h, "sentinel.creds");
    let server = h.start_nats(&sh.bin, "ldap");
    sh.vars.insert("NATS_URL".into(), server.url());
    sh.vars.insert("WARDEN_NATS_URL".into(), server.url());
    sh.start_warden(&["callout".into(), "run".into()], "warden callout run &");

    let ok = sh.run_line(LDAP_CLIENT, &[("NATS_PASSWORD", "ada-directory-pw")]);
    as_documented(LDAP_CLIENT, &ok);
    let wrong = sh.run_line(LDAP_CLIENT, &[("NATS_PASSWORD", "not-her-password")]);
    refused_connect(&wrong, "a wrong password admitted");
    assert!(
        server.wait_for_log("wrong password for ada", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("ada-directory-pw"),
        "the password reached the server log"
    );
}
