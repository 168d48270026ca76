//! Warden's metrics in the Prometheus text exposition format (version 0.0.4), served
//! without a token at `GET /metrics` by `warden serve`, `warden chat` and `warden callout
//! run --metrics-listen`: counts and latencies only, never a name, a key or a secret.
//! Every family is listed in docs/metrics.md.
//!
//! [`MetricsText`] writes metric families (`# HELP`, `# TYPE`, then the samples); each set
//! of counters is one function ([`callout`], [`relay`], [`store`], [`http`], [`chat`])
//! that a page calls before [`MetricsText::finish`].
//!
//! The counters of one process live in [`observed`] (as a Prometheus client's default
//! registry would): the relay's [`RelayStats`], the HTTP requests ([`HttpStats`], counted
//! by the [`track`] middleware by route template), the directory syncs seen in the ledger,
//! and what tells whether NATS is reachable ([`Observed::nats_state`], which `/readyz` and
//! the console's overview read too). The store's numbers are read per scrape through
//! [`warden_ops::Warden::store_gauges`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use warden_ops::callout::responder::{CalloutStats, StatsSnapshot};
use warden_ops::metrics::{DirSyncCounts, DirSyncRuns, StoreGauges};
use warden_ops::relay::{RelaySnapshot, RelayStats};

/// The content type of the text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A sample's labels: `(name, value)` pairs, in the order written.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// One histogram series, as Prometheus expects it: cumulative buckets.
#[derive(Clone, Copy, Debug)]
pub struct Histogram<'a> {
    /// `(upper bound, observations ≤ that bound)`, bounds increasing; `+Inf` is added.
    pub buckets: &'a [(f64, u64)],
    /// Sum of the observed values.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// A metrics page being written, one family at a time (a family's samples stay
/// together, under its one `# HELP` and `# TYPE`, as the format requires).
#[derive(Debug, Default)]
pub struct MetricsText {
    out: String,
}

impl MetricsText {
    /// An empty page.
    pub fn new() -> MetricsText {
        MetricsText::default()
    }

    /// A counter family: one sample per label set (the name ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, samples: &[(Labels<'_>, u64)]) {
        self.header(name, help, "counter");
        for (labels, value) in samples {
            self.sample(name, labels, None, &value.to_string());
        }
    }

    /// A gauge family: one sample per label set.
    pub fn gauge(&mut self, name: &str, help: &str, samples: &[(Labels<'_>, f64)]) {
        self.header(name, help, "gauge");
        for (labels, value) in samples {
            self.sample(name, labels, None, &number(*value));
        }
    }

    /// A histogram family: per series, its `_bucket{le=…}` lines (ending with
    /// `le="+Inf"`), `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, help: &str, series: &[(Labels<'_>, Histogram<'_>)]) {
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for (labels, h) in series {
            // Counters read one by one while requests are observed can be a little apart
            // (a bucket counted before the total): never let a bucket fall below the one
            // before, nor `+Inf` and `_count` below the last, which scrapers reject.
            let mut running = 0;
            for (le, n) in h.buckets {
                running = running.max(*n);
                self.sample(&bucket, labels, Some(&number(*le)), &running.to_string());
            }
            let total = h.count.max(running).to_string();
            self.sample(&bucket, labels, Some("+Inf"), &total);
            self.sample(&format!("{name}_sum"), labels, None, &number(h.sum));
            self.sample(&format!("{name}_count"), labels, None, &total);
        }
    }

    /// The page's text.
    pub fn finish(self) -> String {
        self.out
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: Labels<'_>, le: Option<&str>, value: &str) {
        self.out.push_str(name);
        let le = le.map(|le| ("le", le));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_some() {
            self.out.push('{');
            for (i, (label, v)) in all.enumerate() {
                debug_assert!(valid_name(label), "label name {label:?}");
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', r"\\")
                    .replace('"', "\\\"")
                    .replace('\n', r"\n");
                let _ = write!(self.out, "{label}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A value as the format spells it (`+Inf`, `-Inf`, `NaN`; no exponent otherwise).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: what the format allows as a metric or label name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The auth callout's families: decisions by result and the decision latency histogram.
/// The snapshot's buckets are cumulative ([`CalloutStats::observe`] counts a request in
/// every bucket whose bound is at least its latency), as Prometheus wants them.
pub fn callout(page: &mut MetricsText, s: &StatsSnapshot) {
    page.counter(
        "warden_callout_decisions_total",
        "Auth callout requests answered since start, by result: allowed (the client was let in), refused (an error response was sent), failed (no answer could be sent).",
        &[
            (&[("result", "allowed")], s.allowed),
            (&[("result", "refused")], s.refused),
            (&[("result", "failed")], s.failed),
        ],
    );
    page.histogram(
        "warden_callout_decision_seconds",
        "Time the auth callout took to decide a request, in seconds.",
        &[(
            &[],
            Histogram {
                buckets: &s.buckets,
                sum: s.sum_secs,
                count: s.count,
            },
        )],
    );
}

/// The whole page for these auth callout counters.
pub fn render(s: &StatsSnapshot) -> String {
    let mut page = MetricsText::new();
    callout(&mut page, s);
    page.finish()
}

/// The relay's families: rows delivered and failed, the batch latency histogram, its
/// connections opened, refused and lost, whether it holds the lock and is connected.
pub fn relay(page: &mut MetricsText, s: &RelaySnapshot) {
    page.counter(
        "warden_relay_pushes_total",
        "Outbox rows the relay delivered to NATS (ok) or failed to deliver (failed, each attempt; the row is retried), since start.",
        &[(&[("result", "ok")], s.delivered), (&[("result", "failed")], s.failed)],
    );
    page.histogram(
        "warden_relay_batch_duration_seconds",
        "Time the relay took to deliver one batch of outbox rows (pushes, deletes, streams, events) and mark them, in seconds.",
        &[(
            &[],
            Histogram {
                buckets: &s.buckets,
                sum: s.sum_secs,
                count: s.count,
            },
        )],
    );
    page.histogram(
        "warden_relay_push_duration_seconds",
        "Round trip of one account push the server answered ($SYS.REQ.CLAIMS.UPDATE, sent to answered), in seconds.",
        &[(
            &[],
            Histogram {
                buckets: &s.push_buckets,
                sum: s.push_sum_secs,
                count: s.push_count,
            },
        )],
    );
    page.counter(
        "warden_relay_connects_total",
        "Times the relay opened its NATS connections (the first time and every reconnect), since start.",
        &[(&[], s.connects)],
    );
    page.counter(
        "warden_relay_connect_failures_total",
        "Attempts of the relay to connect to NATS that failed, since start.",
        &[(&[], s.connect_failures)],
    );
    page.counter(
        "warden_relay_connection_losses_total",
        "Times the relay found its NATS connection lost, since start.",
        &[(&[], s.losses)],
    );
    page.gauge(
        "warden_relay_lock_held",
        "1 when this process holds the relay lock (it is the one relaying the outbox), else 0.",
        &[(&[], flag(s.lock_held))],
    );
    page.gauge(
        "warden_relay_nats_connected",
        "1 when the relay's connections to NATS are up, else 0 (also 0 on a standby).",
        &[(&[], flag(s.connected))],
    );
}

/// The store's families, read through [`warden_ops::Warden::store_gauges`] (`None`: the
/// store did not answer, and only `warden_store_up 0` is written) and the directory syncs.
pub fn store(page: &mut MetricsText, gauges: Option<&StoreGauges>, dirsync: DirSyncCounts) {
    page.gauge(
        "warden_store_up",
        "1 when the database answered this scrape, else 0 (the outbox and ledger numbers are then left out).",
        &[(&[], flag(gauges.is_some()))],
    );
    if let Some(g) = gauges {
        page.gauge(
            "warden_outbox_pending_rows",
            "Outbox rows not yet delivered to NATS (the relay's backlog).",
            &[(&[], g.outbox_pending as f64)],
        );
        page.gauge(
            "warden_outbox_oldest_pending_age_seconds",
            "Seconds since the oldest undelivered outbox row was written (0 when none is pending).",
            &[(&[], g.outbox_oldest_age_secs as f64)],
        );
        page.counter(
            "warden_ledger_events_total",
            "Events in the ledger (every change Warden made, in the database: not reset by a restart).",
            &[(&[], g.ledger_events.max(0) as u64)],
        );
    }
    page.counter(
        "warden_dir_sync_runs_total",
        "Directory syncs applied (read from the ledger) since this process started, by result: changed (users or roles created, updated or deleted) or unchanged.",
        &[
            (&[("result", "changed")], dirsync.changed),
            (&[("result", "unchanged")], dirsync.unchanged),
        ],
    );
}

/// Upper bounds (seconds) of the HTTP request latency histogram.
pub const HTTP_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route of a request no route matched (a 404 of any path: the raw path is never a
/// label, or every scanner's guess would be a series of its own).
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Default)]
struct Latency {
    buckets: [u64; HTTP_BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// HTTP requests answered, by method, route template and status, and their latency by
/// method and route.
#[derive(Debug, Default)]
pub struct HttpStats {
    inner: Mutex<HttpCounts>,
}

#[derive(Debug, Default)]
struct HttpCounts {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Latency>,
}

impl HttpStats {
    /// Counts one request answered with `status` after `elapsed`.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Ok(mut c) = self.inner.lock() else { return };
        *c.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let l = c
            .latency
            .entry((method.to_string(), route.to_string()))
            .or_default();
        let secs = elapsed.as_secs_f64();
        for (bound, n) in HTTP_BUCKETS.iter().zip(l.buckets.iter_mut()) {
            if secs <= *bound {
                *n += 1;
            }
        }
        l.sum += secs;
        l.count += 1;
    }
}

/// The HTTP families: `warden_http_requests_total{method,route,status}` and the
/// `warden_http_request_duration_seconds{method,route}` histogram.
pub fn http(page: &mut MetricsText, stats: &HttpStats) {
    let (requests, latency) = match stats.inner.lock() {
        Ok(c) => (c.requests.clone(), c.latency.clone()),
        Err(_) => Default::default(),
    };
    let statuses: Vec<String> = requests.keys().map(|(_, _, s)| s.to_string()).collect();
    let labels: Vec<[(&str, &str); 3]> = requests
        .keys()
        .zip(&statuses)
        .map(|((m, r, _), s)| {
            [
                ("method", m.as_str()),
                ("route", r.as_str()),
                ("status", s.as_str()),
            ]
        })
        .collect();
    let samples: Vec<(Labels<'_>, u64)> = labels
        .iter()
        .zip(requests.values())
        .map(|(l, n)| (&l[..], *n))
        .collect();
    page.counter(
        "warden_http_requests_total",
        "HTTP requests answered since start, by method, route template (never the raw path; unmatched for no route) and status code.",
        &samples,
    );
    let buckets: Vec<Vec<(f64, u64)>> = latency
        .values()
        .map(|l| HTTP_BUCKETS.iter().copied().zip(l.buckets).collect())
        .collect();
    let labels: Vec<[(&str, &str); 2]> = latency
        .keys()
        .map(|(m, r)| [("method", m.as_str()), ("route", r.as_str())])
        .collect();
    let series: Vec<(Labels<'_>, Histogram<'_>)> = labels
        .iter()
        .zip(latency.values().zip(&buckets))
        .map(|(l, (lat, b))| {
            (
                &l[..],
                Histogram {
                    buckets: b,
                    sum: lat.sum,
                    count: lat.count,
                },
            )
        })
        .collect();
    page.histogram(
        "warden_http_request_duration_seconds",
        "Time from receiving an HTTP request to its response's head, in seconds, by method and route template.",
        &series,
    );
}

/// The rooms gateway's families: open websockets, sockets opened, messages accepted and
/// deliveries to sockets.
pub fn chat(page: &mut MetricsText, s: &crate::chat::ChatStatsSnapshot) {
    page.gauge(
        "warden_chat_sockets_open",
        "Rooms websockets open on this gateway now.",
        &[(&[], s.open as f64)],
    );
    page.counter(
        "warden_chat_sockets_opened_total",
        "Rooms websockets opened on this gateway since start.",
        &[(&[], s.opened)],
    );
    page.counter(
        "warden_chat_messages_accepted_total",
        "Chat messages this gateway accepted from its sockets (stored and published to every gateway), since start.",
        &[(&[], s.accepted)],
    );
    page.counter(
        "warden_chat_deliveries_total",
        "Chat messages this gateway sent to its sockets (one per socket in the room), since start.",
        &[(&[], s.delivered)],
    );
}

/// `warden_build_info{version}`: always 1, to join the other families on the version.
pub fn build_info(page: &mut MetricsText) {
    page.gauge(
        "warden_build_info",
        "Always 1; the version label says which Warden runs.",
        &[(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)],
    );
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// Whether NATS is reachable from this process, as far as it can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NatsState {
    /// Nothing in this process watches NATS (no relay holding the lock, no NATS service).
    Unknown,
    /// Connected.
    Connected,
    /// Not connected: why.
    Unreachable(String),
}

/// What this process counts and watches, shared by its pages: see the module's doc.
#[derive(Debug, Default)]
pub struct Observed {
    /// The outbox relay's counters (`warden serve`).
    pub relay: Arc<RelayStats>,
    /// The HTTP requests answered.
    pub http: HttpStats,
    /// The directory syncs seen in the ledger.
    pub dirsync: DirSyncRuns,
    /// The NATS URL and the client of `serve`'s NATS service, once connecting.
    nats: OnceLock<(String, Option<async_nats::Client>)>,
}

/// This process's [`Observed`].
pub fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(Observed::default)
}

impl Observed {
    /// Records the NATS `url` this process keeps in step with, and the client whose
    /// connection state tells whether it is reachable when the relay cannot (a standby).
    pub fn watch_nats(&self, url: &str, client: Option<async_nats::Client>) {
        let _ = self.nats.set((url.to_string(), client));
    }

    /// Whether NATS is reachable: the relay's connection when this process relays (it
    /// talks to NATS the most), else the NATS service's client.
    pub fn nats_state(&self) -> NatsState {
        let Some((url, client)) = self.nats.get() else {
            return NatsState::Unknown;
        };
        let relay = self.relay.snapshot();
        if relay.running && relay.lock_held {
            return if relay.connected {
                NatsState::Connected
            } else {
                NatsState::Unreachable(format!(
                    "NATS {url} unreachable: {}",
                    relay
                        .last_error
                        .as_deref()
                        .unwrap_or("the relay is not connected yet")
                ))
            };
        }
        match client {
            Some(c) => match c.connection_state() {
                async_nats::connection::State::Connected => NatsState::Connected,
                other => NatsState::Unreachable(format!(
                    "NATS {url} unreachable: the NATS service's connection is {other}"
                )),
            },
            None => NatsState::Unknown,
        }
    }
}

/// Middleware counting every request in [`observed`]'s [`HttpStats`] by the route
/// template axum matched (`/v1/accounts/{name}`), never by the raw path.
pub async fn track(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_string(), |m| m.as_str().to_string());
    let started = Instant::now();
    let res = next.run(req).await;
    observed()
        .http
        .observe(&method, &route, res.status().as_u16(), started.elapsed());
    res
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// `GET /metrics` of `warden serve`: its auth callout responder (all zero when
/// `--callout` is off), relay, store, HTTP requests and (when it runs here) rooms gateway.
pub(crate) async fn serve_metrics(State(state): State<super::HttpState>) -> Response {
    let o = observed();
    let gauges = match state.warden.store_gauges().await {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::debug!(error = %e, "metrics: the store does not answer");
            None
        }
    };
    let dirsync = match o.dirsync.catch_up(&state.warden).await {
        Ok(c) => c,
        Err(_) => o.dirsync.counts(),
    };
    let mut page = MetricsText::new();
    build_info(&mut page);
    callout(&mut page, &crate::serve::callout_stats().snapshot());
    relay(&mut page, &o.relay.snapshot());
    store(&mut page, gauges.as_ref(), dirsync);
    http(&mut page, &o.http);
    chat(&mut page, &crate::chat::stats().snapshot());
    text(page.finish())
}

/// `GET /metrics` of `warden chat`: the rooms gateway and its HTTP requests.
pub(crate) async fn chat_metrics() -> Response {
    let mut page = MetricsText::new();
    build_info(&mut page);
    chat(&mut page, &crate::chat::stats().snapshot());
    http(&mut page, &observed().http);
    text(page.finish())
}

async fn responder_metrics(State(stats): State<Arc<CalloutStats>>) -> Response {
    let mut page = MetricsText::new();
    build_info(&mut page);
    callout(&mut page, &stats.snapshot());
    text(page.finish())
}

/// A router with `GET /metrics` only, for a responder running on its own
/// (`warden callout run --metrics-listen`).
pub fn router(stats: Arc<CalloutStats>) -> Router {
    Router::new()
        .route("/metrics", get(responder_metrics))
        .with_state(stats)
}

/// Serves [`router`] on `listener` until `shutdown` completes. A failure is logged, not
/// returned: losing the metrics is no reason to stop answering the callout.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stats: Arc<CalloutStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    if let Err(e) = axum::serve(listener, router(stats))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn snapshot() -> StatsSnapshot {
        StatsSnapshot {
            allowed: 5,
            refused: 2,
            failed: 1,
            buckets: vec![(0.0005, 1), (0.001, 3), (0.025, 7), (1.0, 8)],
            sum_secs: 0.0421,
            count: 8,
        }
    }

    #[test]
    fn renders_the_callout_counters_and_histogram_exactly() {
        let expected = "\
# HELP warden_callout_decisions_total Auth callout requests answered since start, by result: allowed (the client was let in), refused (an error response was sent), failed (no answer could be sent).
# TYPE warden_callout_decisions_total counter
warden_callout_decisions_total{result=\"allowed\"} 5
warden_callout_decisions_total{result=\"refused\"} 2
warden_callout_decisions_total{result=\"failed\"} 1
# HELP warden_callout_decision_seconds Time the auth callout took to decide a request, in seconds.
# TYPE warden_callout_decision_seconds histogram
warden_callout_decision_seconds_bucket{le=\"0.0005\"} 1
warden_callout_decision_seconds_bucket{le=\"0.001\"} 3
warden_callout_decision_seconds_bucket{le=\"0.025\"} 7
warden_callout_decision_seconds_bucket{le=\"1\"} 8
warden_callout_decision_seconds_bucket{le=\"+Inf\"} 8
warden_callout_decision_seconds_sum 0.0421
warden_callout_decision_seconds_count 8
";
        assert_eq!(render(&snapshot()), expected);
    }

    #[test]
    fn observed_latencies_land_in_cumulative_buckets() {
        // What the responder really counts: 0.3 ms, 4 ms, 4 ms, 2 s (beyond every bound).
        let stats = CalloutStats::default();
        stats.observe(Some(true), Duration::from_micros(300));
        stats.observe(Some(false), Duration::from_millis(4));
        stats.observe(Some(true), Duration::from_millis(4));
        stats.observe(None, Duration::from_secs(2));
        let page = render(&stats.snapshot());
        let histogram: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("warden_callout_decision_seconds"))
            .collect();
        assert_eq!(
            histogram,
            [
                "warden_callout_decision_seconds_bucket{le=\"0.0005\"} 1",
                "warden_callout_decision_seconds_bucket{le=\"0.001\"} 1",
                "warden_callout_decision_seconds_bucket{le=\"0.002\"} 1",
                "warden_callout_decision_seconds_bucket{le=\"0.005\"} 3",
                "warden_callout_decision_seconds_bucket{le=\"0.01\"} 3",
                "warden_callout_decision_seconds_bucket{le=\"0.025\"} 3",
                "warden_callout_decision_seconds_bucket{le=\"0.05\"} 3",
                "warden_callout_decision_seconds_bucket{le=\"0.1\"} 3",
                "warden_callout_decision_seconds_bucket{le=\"0.25\"} 3",
                "warden_callout_decision_seconds_bucket{le=\"1\"} 3",
                "warden_callout_decision_seconds_bucket{le=\"+Inf\"} 4",
                "warden_callout_decision_seconds_sum 2.0083",
                "warden_callout_decision_seconds_count 4",
            ]
        );
        assert!(page.contains("warden_callout_decisions_total{result=\"allowed\"} 2\n"));
        assert!(page.contains("warden_callout_decisions_total{result=\"refused\"} 1\n"));
        assert!(page.contains("warden_callout_decisions_total{result=\"failed\"} 1\n"));
    }

    #[test]
    fn nothing_counted_is_all_zero() {
        let page = render(&CalloutStats::default().snapshot());
        assert!(page.contains("warden_callout_decisions_total{result=\"allowed\"} 0\n"));
        assert!(page.contains("warden_callout_decision_seconds_bucket{le=\"+Inf\"} 0\n"));
        assert!(page.contains("warden_callout_decision_seconds_sum 0\n"));
        assert!(page.contains("warden_callout_decision_seconds_count 0\n"));
    }

    #[test]
    fn a_snapshot_read_mid_update_still_renders_monotonic_buckets() {
        // The last bucket read after a request was counted in it, the total before.
        let s = StatsSnapshot {
            buckets: vec![(0.001, 2), (0.01, 1), (1.0, 3)],
            count: 2,
            ..snapshot()
        };
        let page = render(&s);
        assert!(page.contains("_bucket{le=\"0.01\"} 2\n"), "{page}");
        assert!(page.contains("_bucket{le=\"+Inf\"} 3\n"), "{page}");
        assert!(page.contains("_count 3\n"), "{page}");
    }

    #[test]
    fn the_writer_escapes_and_groups_families() {
        let mut page = MetricsText::new();
        page.gauge(
            "warden_example",
            "A line\nand a \\ backslash.",
            &[
                (&[("route", "a\"b\\c\nd"), ("method", "GET")], 1.5),
                (&[], f64::INFINITY),
            ],
        );
        page.histogram(
            "warden_latency_seconds",
            "Latency.",
            &[(
                &[("route", "/x")],
                Histogram {
                    buckets: &[(0.5, 1)],
                    sum: 0.25,
                    count: 1,
                },
            )],
        );
        assert_eq!(
            page.finish(),
            "\
# HELP warden_example A line\\nand a \\\\ backslash.
# TYPE warden_example gauge
warden_example{route=\"a\\\"b\\\\c\\nd\",method=\"GET\"} 1.5
warden_example +Inf
# HELP warden_latency_seconds Latency.
# TYPE warden_latency_seconds histogram
warden_latency_seconds_bucket{route=\"/x\",le=\"0.5\"} 1
warden_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 1
warden_latency_seconds_sum{route=\"/x\"} 0.25
warden_latency_seconds_count{route=\"/x\"} 1
"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("warden_callout_decisions_total"));
        assert!(valid_name("le"));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }
}
