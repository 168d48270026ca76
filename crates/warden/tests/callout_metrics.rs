//! The auth callout's decision metrics, scraped over HTTP as Prometheus text from a real
//! responder on nats-server 2.15: `warden callout run --metrics-listen` counts one
//! allowed and one refused client (an ID token for another audience) and their latency;
//! `warden serve --callout` serves the same counters at `GET /metrics` without a token.

mod common;

use std::time::{Duration, Instant};

use common::callout::{Alg, Presented, Responder, admitted, connect_as, oidc_world};

/// `GET <base>/metrics` without a token, after checking it is 200 and Prometheus text
/// (0.0.4); the page.
async fn scrape(base: &str) -> String {
    let res = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    res.text().await.expect("metrics body")
}

/// The value of the sample line `name` (with its labels, as written), if present.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn decisions(page: &str, result: &str) -> Option<f64> {
    sample(
        page,
        &format!("warden_callout_decisions_total{{result=\"{result}\"}}"),
    )
}

/// Scrapes until `done` holds for the page (a decision is counted just after its answer
/// is sent, so the client may hear it first), within 10 s; the last page.
async fn scrape_until(base: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = scrape(base).await;
        if done(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "{what}, never reached:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn callout_run_serves_its_decisions_as_prometheus_metrics_2_15() {
    let (home, server, sentinel, idp) = oidc_world(false);
    let url = server.url();
    let base = format!("http://127.0.0.1:{}", warden_testkit::free_port());
    let listen = base.trim_start_matches("http://").to_string();
    let _responder = Responder::start_with(&home, &["--nats", &url, "--metrics-listen", &listen]);

    // Listening as soon as the responder says it answers; nothing counted yet.
    let page = scrape(&base).await;
    assert_eq!(decisions(&page, "allowed"), Some(0.0), "{page}");
    assert!(
        page.contains("# TYPE warden_callout_decisions_total counter\n"),
        "{page}"
    );
    assert!(
        page.contains("# TYPE warden_callout_decision_seconds histogram\n"),
        "{page}"
    );

    let token = idp.valid(Alg::EdDsa, "ada");
    let mut ada = admitted(&url, &sentinel, &token, "ada").await;
    ada.publish_delivered("orders.new", "ada may use orders")
        .await;
    let other_audience = idp.valid_for(Alg::EdDsa, "ada", "someone-else");
    let e = connect_as(&url, Some(&sentinel), Presented::Token(&other_audience))
        .await
        .err()
        .expect("a token for another audience is refused");
    assert!(e.to_lowercase().contains("authorization"), "{e}");

    let page = scrape_until(&base, "one allowed and one refused decision", |p| {
        decisions(p, "allowed") == Some(1.0) && decisions(p, "refused") == Some(1.0)
    })
    .await;
    for line in [
        "warden_callout_decisions_total{result=\"allowed\"} 1",
        "warden_callout_decisions_total{result=\"refused\"} 1",
        "warden_callout_decisions_total{result=\"failed\"} 0",
        "warden_callout_decision_seconds_bucket{le=\"+Inf\"} 2",
        "warden_callout_decision_seconds_count 2",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} in:\n{page}");
    }
    let sum = sample(&page, "warden_callout_decision_seconds_sum").expect("_sum");
    assert!(sum > 0.0 && sum < 20.0, "{page}");
    // Buckets are cumulative and never exceed the count.
    let buckets: Vec<f64> = page
        .lines()
        .filter(|l| l.starts_with("warden_callout_decision_seconds_bucket{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(buckets.len(), 11, "{page}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{page}");

    // The metrics listener serves metrics and nothing else.
    let other = reqwest::get(format!("{base}/v1/status")).await.unwrap();
    assert_eq!(other.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_the_callout_serves_its_decisions_at_metrics_2_15() {
    let (home, server, sentinel, idp) = oidc_world(false);
    let url = server.url();
    let serve = common::Serve::start_with(&home, &url, &["--callout"]);

    // No token needed; nothing decided yet.
    let page = scrape(&serve.base).await;
    assert_eq!(decisions(&page, "allowed"), Some(0.0), "{page}");
    assert_eq!(
        sample(&page, "warden_callout_decision_seconds_count"),
        Some(0.0),
        "{page}"
    );

    let token = idp.valid(Alg::EdDsa, "ada");
    let mut ada = admitted(&url, &sentinel, &token, "ada through serve").await;
    ada.publish_delivered("orders.serve", "through serve").await;
    let page = scrape_until(&serve.base, "one allowed decision", |p| {
        decisions(p, "allowed") == Some(1.0)
    })
    .await;
    assert_eq!(decisions(&page, "refused"), Some(0.0), "{page}");
    assert_eq!(
        sample(&page, "warden_callout_decision_seconds_count"),
        Some(1.0),
        "{page}"
    );
}
