//! Warden's metrics in the Prometheus text exposition format (version 0.0.4), served
//! without a token at `GET /metrics` by `warden serve` and by `warden callout run
//! --metrics-listen`: counts and latencies only, never a name, a key or a secret.
//!
//! [`MetricsText`] writes metric families (`# HELP`, `# TYPE`, then the samples), so
//! another set of counters is one more function like [`callout`] that a handler calls
//! before [`MetricsText::finish`]. Today it carries the auth callout's decisions
//! ([`CalloutStats`]): `warden_callout_decisions_total{result=…}` and the
//! `warden_callout_decision_seconds` histogram.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use warden_ops::callout::responder::{CalloutStats, StatsSnapshot};

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

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// `GET /metrics` of `warden serve`: the counters of this process's auth callout
/// responder (all zero when `--callout` is off).
pub(crate) async fn serve_metrics() -> Response {
    text(render(&crate::serve::callout_stats().snapshot()))
}

async fn responder_metrics(State(stats): State<Arc<CalloutStats>>) -> Response {
    text(render(&stats.snapshot()))
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
