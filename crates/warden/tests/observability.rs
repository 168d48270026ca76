//! What an operator watches Warden with, against real nats-servers (2.9.10 and 2.15.x):
//! `GET /metrics` of a real `warden serve` (pushes, outbox backlog and age, relay
//! connection, HTTP requests by route template) before, during and after a NATS outage,
//! with `/readyz` turning degraded and back; `warden chat`'s metrics counting a socket and
//! a message; and the log lines (`--log-format json`, no colour codes into a pipe). Every
//! page is parsed as Prometheus text and checked: each family declared once with its
//! `# TYPE` before its samples, every sample of a declared family, histograms cumulative.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::chat::{Gateway, Ws, create_room, put_rule, token as chat_token};
use common::http::{Http, token};
use common::{Home, Serve};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::{NatsServerBinary, ServerLine, free_port};

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// A small parser of the Prometheus text format (0.0.4)
// ---------------------------------------------------------------------------------------

/// One sample line: its metric name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed page: family types by name, and the samples in order.
#[derive(Debug)]
struct Page {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
    text: String,
}

/// Parses `text`, failing the test on anything the format does not allow: a sample
/// before its family's `# TYPE` (or of no declared family), a family declared twice, a
/// counter not named `_total`, a bad label set or value, histogram buckets that are not
/// cumulative or whose `+Inf` differs from `_count`.
fn parse(text: &str) -> Page {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().expect("a type"));
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "family declared twice: {line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {line}");
            }
            assert!(name.starts_with("warden_"), "{line}");
            current = Some(name.to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let s = parse_sample(line);
        let family = current
            .as_deref()
            .unwrap_or_else(|| panic!("sample before any # TYPE: {line}"));
        let kind = &types[family];
        let belongs = if kind == "histogram" {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| s.name == format!("{family}{suffix}"))
        } else {
            s.name == family
        };
        assert!(belongs, "sample {} outside its family {family}", s.name);
        if s.name.ends_with("_bucket") {
            assert!(s.labels.contains_key("le"), "{line}");
        }
        samples.push(s);
    }
    let page = Page {
        types,
        samples,
        text: text.to_string(),
    };
    page.check_histograms();
    page
}

fn parse_sample(line: &str) -> Sample {
    let (head, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
    };
    let (name, labels) = match head.split_once('{') {
        None => (head, BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
            (name, parse_labels(body, line))
        }
    };
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "bad name: {line}"
    );
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value not quoted: {line}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("{line}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value: {line}"),
            }
        }
        assert!(out.insert(name, value).is_none(), "label twice: {line}");
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("unexpected {c:?} in labels: {line}"),
        }
    }
    out
}

impl Page {
    /// The value of `name` with exactly `labels`, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{}", self.text))
    }

    fn kind(&self, family: &str) -> &str {
        self.types
            .get(family)
            .unwrap_or_else(|| panic!("no family {family} in:\n{}", self.text))
    }

    /// Per histogram series: buckets never decrease, `+Inf` equals `_count`.
    fn check_histograms(&self) {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let mut series: BTreeMap<Vec<(String, String)>, Vec<f64>> = BTreeMap::new();
            for s in self
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
            {
                let key = s
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "le")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.entry(key).or_default().push(s.value);
            }
            for (key, buckets) in series {
                assert!(
                    buckets.windows(2).all(|w| w[0] <= w[1]),
                    "{family}{key:?} buckets not cumulative: {buckets:?}"
                );
                let labels: Vec<(&str, &str)> =
                    key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let count = self.value(&format!("{family}_count"), &labels);
                assert_eq!(buckets.last().copied(), Some(count), "{family}{key:?}");
            }
        }
    }
}

#[test]
fn the_parser_refuses_what_the_format_does_not_allow() {
    let good = "# HELP warden_x_total X.\n# TYPE warden_x_total counter\nwarden_x_total{a=\"q\\\"\\\\\",b=\"2\"} 3\n";
    let p = parse(good);
    assert_eq!(
        p.value("warden_x_total", &[("a", "q\"\\"), ("b", "2")]),
        3.0
    );
    for bad in [
        "warden_x_total 1\n",
        "# TYPE warden_x counter\nwarden_x 1\n",
        "# TYPE warden_x_total counter\nwarden_y_total 1\n",
        "# TYPE warden_h histogram\nwarden_h_bucket{le=\"1\"} 2\nwarden_h_bucket{le=\"+Inf\"} 1\nwarden_h_count 1\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse(bad)).is_err(),
            "accepted:\n{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Scraping
// ---------------------------------------------------------------------------------------

/// `GET <base>/metrics`: 200, Prometheus text 0.0.4, parsed and checked.
async fn scrape(base: &str) -> Page {
    let res = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .timeout(WAIT)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&res.text().await.expect("metrics body"))
}

/// Scrapes until `done` holds (bounded); the last page.
async fn scrape_until(base: &str, what: &str, done: impl Fn(&Page) -> bool) -> Page {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = scrape(base).await;
        if done(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never reached; last page:\n{}",
            page.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /readyz` until `done` holds for (status, body), bounded; the last answer.
async fn readyz_until(base: &str, what: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let res = reqwest::get(format!("{base}/readyz"))
            .await
            .expect("readyz");
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("readyz is JSON");
        if done(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never reached; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pushes(p: &Page, result: &str) -> f64 {
    p.value("warden_relay_pushes_total", &[("result", result)])
}

// ---------------------------------------------------------------------------------------
// warden serve through a NATS outage
// ---------------------------------------------------------------------------------------

async fn serve_metrics_through_a_nats_outage(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init", "--name", "OBSOP"]);
    let mut server = home.start_nats(&bin, "main");
    let serve = Serve::start(&home, &server.url());
    let admin = token(&home, "ops", "admin");
    let api = Http::new(&serve.base);

    // Accounts created through the API reach NATS: pushes counted ok, backlog 0.
    for name in ["OBS1", "OBS2"] {
        let r = api
            .send(
                Method::POST,
                "/v1/accounts",
                &admin,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = api.get("/v1/accounts/OBS1", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api.get("/v1/accounts/NOPE", &admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let page = scrape_until(&serve.base, "the accounts delivered", |p| {
        pushes(p, "ok") >= 2.0
            && p.value("warden_outbox_pending_rows", &[]) == 0.0
            && p.value("warden_relay_nats_connected", &[]) == 1.0
    })
    .await;
    assert_eq!(pushes(&page, "failed"), 0.0, "{}", page.text);
    assert_eq!(
        page.value("warden_outbox_oldest_pending_age_seconds", &[]),
        0.0
    );
    assert_eq!(page.value("warden_relay_lock_held", &[]), 1.0);
    assert_eq!(page.value("warden_store_up", &[]), 1.0);
    assert!(page.value("warden_relay_connects_total", &[]) >= 1.0);
    assert!(page.value("warden_ledger_events_total", &[]) >= 2.0);
    assert_eq!(
        page.value("warden_dir_sync_runs_total", &[("result", "changed")]),
        0.0
    );
    assert!(page.value("warden_relay_batch_duration_seconds_count", &[]) >= 1.0);
    // Both accounts' pushes were answered: each round trip counted, and timed.
    assert!(page.value("warden_relay_push_duration_seconds_count", &[]) >= 2.0);
    assert!(page.value("warden_relay_push_duration_seconds_sum", &[]) > 0.0);
    for (family, kind) in [
        ("warden_build_info", "gauge"),
        ("warden_relay_pushes_total", "counter"),
        ("warden_relay_batch_duration_seconds", "histogram"),
        ("warden_relay_push_duration_seconds", "histogram"),
        ("warden_relay_connection_losses_total", "counter"),
        ("warden_outbox_pending_rows", "gauge"),
        ("warden_outbox_oldest_pending_age_seconds", "gauge"),
        ("warden_ledger_events_total", "counter"),
        ("warden_http_requests_total", "counter"),
        ("warden_http_request_duration_seconds", "histogram"),
        ("warden_chat_sockets_open", "gauge"),
        ("warden_callout_decisions_total", "counter"),
    ] {
        assert_eq!(page.kind(family), kind, "{family}");
    }
    // HTTP requests by route template and status, never by raw path.
    let route = |p: &Page, method: &str, route: &str, status: &str| {
        p.get(
            "warden_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(route(&page, "POST", "/v1/accounts", "201"), Some(2.0));
    assert_eq!(route(&page, "GET", "/v1/accounts/{name}", "200"), Some(1.0));
    assert_eq!(route(&page, "GET", "/v1/accounts/{name}", "404"), Some(1.0));
    assert!(
        page.value(
            "warden_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/v1/accounts")]
        ) == 2.0
    );
    assert!(!page.text.contains("OBS1") && !page.text.contains("NOPE"));
    let documented = documented_families();
    for family in page.types.keys() {
        assert!(
            documented.contains(family),
            "{family} is not in docs/metrics.md"
        );
    }
    // An unknown path is counted as unmatched, not as itself.
    let r = api.get("/no/such/path/xyz", &admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let page = scrape(&serve.base).await;
    assert_eq!(route(&page, "GET", "unmatched", "404"), Some(1.0));
    assert!(!page.text.contains("xyz"));

    let ready = readyz_until(&serve.base, "ready", |s, b| {
        s == 200 && b["status"] == "ready"
    })
    .await;
    assert_eq!(ready["nats"], "connected", "{ready}");

    // NATS goes away: readiness is degraded (still 200) and names NATS.
    server.stop();
    let degraded = readyz_until(&serve.base, "degraded", |s, b| {
        s == 200 && b["status"] == "degraded"
    })
    .await;
    let reason = degraded["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("NATS") && reason.contains("unreachable"),
        "{degraded}"
    );
    let page = scrape(&serve.base).await;
    assert_eq!(page.value("warden_relay_nats_connected", &[]), 0.0);

    // A change made meanwhile waits in the outbox, its push fails and it ages.
    let r = api
        .send(
            Method::POST,
            "/v1/accounts",
            &admin,
            Some(json!({"name": "OBS3"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let page = scrape_until(&serve.base, "a failed push and an aging backlog", |p| {
        pushes(p, "failed") >= 1.0
            && p.value("warden_outbox_pending_rows", &[]) >= 1.0
            && p.value("warden_outbox_oldest_pending_age_seconds", &[]) > 0.0
    })
    .await;
    assert!(
        page.value("warden_relay_connection_losses_total", &[]) >= 1.0,
        "{}",
        page.text
    );
    assert_eq!(page.value("warden_store_up", &[]), 1.0);

    // NATS back: ready again, the backlog delivered.
    server.restart().expect("nats-server restarts");
    readyz_until(&serve.base, "ready again", |s, b| {
        s == 200 && b["status"] == "ready" && b["nats"] == "connected"
    })
    .await;
    let page = scrape_until(&serve.base, "the backlog delivered", |p| {
        p.value("warden_outbox_pending_rows", &[]) == 0.0
            && p.value("warden_relay_nats_connected", &[]) == 1.0
    })
    .await;
    assert_eq!(
        page.value("warden_outbox_oldest_pending_age_seconds", &[]),
        0.0
    );
    assert!(pushes(&page, "ok") >= 3.0, "{}", page.text);
    drop(serve);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_metrics_through_a_nats_outage_2_9() {
    serve_metrics_through_a_nats_outage(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_metrics_through_a_nats_outage_2_15() {
    serve_metrics_through_a_nats_outage(ServerLine::V2_15).await;
}

/// The metric families docs/metrics.md lists (its table rows' first cells).
fn documented_families() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .expect("docs/metrics.md");
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `warden_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("warden_{name}"))
        .collect()
}

#[test]
fn the_sample_dashboard_uses_documented_metrics_only() {
    let documented = documented_families();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/grafana-dashboard.json"
    ))
    .expect("examples/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("warden_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| documented.contains(*f))
                    .map_or(name.clone(), str::to_string);
                used.insert(family);
            }
        }
    }
    assert!(used.len() >= 10, "{used:?}");
    for family in &used {
        assert!(
            documented.contains(family),
            "{family} used by the dashboard, not documented"
        );
    }
}

// ---------------------------------------------------------------------------------------
// warden chat
// ---------------------------------------------------------------------------------------

async fn chat_metrics_count_sockets_and_messages(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init", "--name", "CHATOBS"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    // serve creates the chat account and its gateway user; `warden chat` runs alone.
    let _serve = Gateway::start(
        &home,
        &["serve", "--nats", &url, "--max-backoff", "1s"],
        &[],
    );
    let creds = home.path().join("gateway.creds");
    home.ok(&["creds", "CHAT", "gateway", "-o", creds.to_str().unwrap()]);
    let chat = Gateway::start(
        &home,
        &["chat", "--nats", &url],
        &["--creds", creds.to_str().unwrap()],
    );
    let base = format!("http://{}", chat.addr);

    let page = scrape(&base).await;
    assert_eq!(page.value("warden_chat_sockets_open", &[]), 0.0);
    assert_eq!(page.value("warden_chat_messages_accepted_total", &[]), 0.0);
    // A chat gateway has no relay of its own.
    assert!(
        page.get("warden_relay_pushes_total", &[("result", "ok")])
            .is_none()
    );

    let owner = chat_token("u-owner", "e-acme", 100);
    let room = create_room(&chat.addr, &owner, "metrics").await;
    let (s, body) = put_rule(&chat.addr, &owner, room, "u-owner", "rw", 0).await;
    assert_eq!(s, 201, "{body}");
    let mut ws = Ws::joined(&chat, "owner", &owner, room).await;
    ws.send(json!({"type":"message","content":"counted"})).await;
    assert_eq!(ws.message().await["content"], "counted");

    let page = scrape_until(&base, "one socket, one message, one delivery", |p| {
        p.value("warden_chat_messages_accepted_total", &[]) == 1.0
            && p.value("warden_chat_deliveries_total", &[]) == 1.0
    })
    .await;
    assert_eq!(page.value("warden_chat_sockets_open", &[]), 1.0);
    assert_eq!(page.value("warden_chat_sockets_opened_total", &[]), 1.0);
    assert_eq!(
        page.get(
            "warden_http_requests_total",
            &[("method", "POST"), ("route", "/rooms"), ("status", "201")]
        ),
        Some(1.0),
        "{}",
        page.text
    );
    assert!(!page.text.contains(&format!("/rooms/{room}")));

    drop(ws);
    scrape_until(&base, "the socket closed", |p| {
        p.value("warden_chat_sockets_open", &[]) == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_metrics_count_sockets_and_messages_2_9() {
    chat_metrics_count_sockets_and_messages(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_metrics_count_sockets_and_messages_2_15() {
    chat_metrics_count_sockets_and_messages(ServerLine::V2_15).await;
}

// ---------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------

/// Runs `warden serve` against a NATS address where nothing listens, with stderr piped,
/// until it has logged the relay's failure to connect (bounded); its stderr lines so far.
fn serve_log_lines(configure: impl FnOnce(&mut Command)) -> Vec<String> {
    let home = Home::new();
    home.ok(&["init", "--name", "LOGOP"]);
    let closed = format!("nats://127.0.0.1:{}", free_port());
    let mut cmd = home.command();
    cmd.env("WARDEN_LOG", "info")
        .env_remove("WARDEN_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    configure(&mut cmd);
    cmd.args(["serve", "--nats", &closed, "--http", "127.0.0.1:0"]);
    let mut child = cmd.spawn().expect("start warden serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.contains("relay cannot connect"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("no relay warning logged; lines so far: {lines:?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    for via_env in [false, true] {
        let lines = serve_log_lines(|cmd| {
            if via_env {
                cmd.env("WARDEN_LOG_FORMAT", "json");
            } else {
                cmd.args(["--log-format", "json"]);
            }
        });
        assert!(lines.len() >= 2, "{lines:?}");
        for line in &lines {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
            assert!(v["fields"]["message"].is_string(), "{v}");
            assert!(!line.contains('\u{1b}'), "{line:?}");
        }
        assert!(
            lines.iter().any(|l| l.contains("\"level\":\"WARN\"")),
            "{lines:?}"
        );
    }
}

#[test]
fn text_logs_into_a_pipe_have_no_escape_codes() {
    let lines = serve_log_lines(|_| {});
    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
        assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains(" WARN ")), "{lines:?}");
}

#[test]
fn log_settings_are_explained_and_checked() {
    let home = Home::new();
    let help = home.ok(&["--help"]);
    for needle in ["--log-format", "WARDEN_LOG", "WARDEN_LOG_FORMAT"] {
        assert!(help.contains(needle), "{needle} in:\n{help}");
    }
    // A format that does not exist is a usage error.
    let out = home.run(&["--log-format", "yaml", "status"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
