//! `warden bench cluster` runs end to end on a small load (a 3-server cluster of full
//! resolvers and a server alone, both started by the bench) and reports every figure.
//! Speeds are measured, never asserted: only that the figures exist and that every
//! pushed account reached the watched server and every revocation was enforced there.

mod common;

use common::Home;
use warden_testkit::{NatsServerBinary, ServerLine};

fn bench_cluster_small(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    let r = home.json(&[
        "bench",
        "cluster",
        "--accounts",
        "50",
        "--rounds",
        "3",
        "--nats-server",
        bin.path.to_str().unwrap(),
    ]);
    assert!(
        r["nats_server"].as_str().unwrap().contains(&bin.version),
        "{r}"
    );
    assert_eq!(r["accounts"], 50, "{r}");
    for key in ["load_start", "load_end"] {
        assert_eq!(
            r[key].as_str().unwrap().split_whitespace().count(),
            3,
            "{key}: {r}"
        );
    }
    assert!(r["lanes"].as_u64().unwrap() >= 1, "{r}");
    for (topology, servers, pushed, watched) in [
        ("cluster", 3, "n1", "n3"),
        ("single", 1, "single", "single"),
    ] {
        let t = &r[topology];
        assert_eq!(t["servers"], servers, "{topology}: {r}");
        assert_eq!(t["pushed_to"], pushed, "{topology}: {r}");
        assert_eq!(t["watched"], watched, "{topology}: {r}");
        let b = &t["bulk"];
        assert_eq!(b["failed"], 0, "{topology}: {r}");
        assert_eq!(b["missing"], 0, "{topology}: {r}");
        assert_eq!(b["listed"], 50, "{topology}: {r}");
        let answered: u64 = b["answered_first_by"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(answered, 50, "{topology}: {r}");
        for key in ["push_seconds", "accounts_per_s", "lag_ms", "last_read_ms"] {
            assert!(b[key].as_f64().is_some(), "{topology}.bulk.{key}: {r}");
        }
        assert!(b["reads"].as_u64().unwrap() >= 1, "{topology}: {r}");
        assert!(b["store_bytes"].as_u64().unwrap() > 0, "{topology}: {r}");
        let o = &t["one_update"];
        assert_eq!(o["rounds"], 3, "{topology}: {r}");
        assert_eq!(o["refused_after"], true, "{topology}: {r}");
        let (p50, p99) = (
            o["enforced_ms_p50"].as_f64().unwrap(),
            o["enforced_ms_p99"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99, "{topology}: {r}");
        let memory = t["memory"].as_array().unwrap();
        assert_eq!(memory.len(), servers, "{topology}: {r}");
        assert!(
            memory
                .iter()
                .all(|m| m["before_bytes"].as_u64().unwrap() > 0
                    && m["after_bytes"].as_u64().unwrap() > 0),
            "{topology}: {r}"
        );
    }
    for key in ["push_seconds", "enforced_p50", "enforced_p99"] {
        assert!(r["ratio"][key].as_f64().unwrap() > 0.0, "ratio.{key}: {r}");
    }
}

#[test]
fn bench_cluster_small_2_9() {
    bench_cluster_small(ServerLine::V2_9);
}

#[test]
fn bench_cluster_small_2_15() {
    bench_cluster_small(ServerLine::V2_15);
}

/// Zero accounts or rounds is a usage error (exit 2), before any server starts.
#[test]
fn bench_cluster_usage_errors() {
    let home = Home::new();
    for args in [
        &["bench", "cluster", "--accounts", "0"][..],
        &["bench", "cluster", "--rounds", "0"][..],
    ] {
        let e = home.fails(2, args);
        assert!(e.contains("at least 1"), "{args:?}: {e}");
    }
}
