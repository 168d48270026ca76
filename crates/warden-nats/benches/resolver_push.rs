//! Account push throughput through the resolver protocol.
//!
//! For nats-server 2.15.x and 2.9.10, each on a fresh server: pushes 1,000 and 10,000 freshly
//! made accounts with `ResolverClient::update_many` (256 in flight) and prints accounts/s; for
//! the 10,000 run also 10,000 other fresh accounts over 4 connections (`connect_lanes`), 10,000
//! accounts importing from one exporter pushed with it in one batch over 4 connections (two waves,
//! see `push_waves`), and a sequential baseline (500 other fresh accounts, one request at a time).
//! Every reply must be `200`, and LIST must hold every account afterwards.
//!
//! Run: `cargo bench -p warden-nats --bench resolver_push`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Env;
use warden_nats::ResolverClient;
use warden_testkit::ServerLine;

const CONCURRENCY: usize = 256;
const SEQUENTIAL: usize = 500;
const LANES: usize = 4;

fn fresh_accounts(env: &Env, n: usize, prefix: &str) -> (Vec<String>, Vec<String>) {
    (0..n)
        .map(|i| {
            let (kp, _, jwt) = env.account(&format!("{prefix}{i}"));
            (kp.public_key().into_string(), jwt)
        })
        .unzip()
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

async fn pipelined(client: &ResolverClient, jwts: &[String]) -> Duration {
    let started = Instant::now();
    let results = client.update_many(jwts, CONCURRENCY).await;
    let took = started.elapsed();
    for r in &results {
        let reply = r.as_ref().expect("update succeeds");
        assert_eq!(reply.code, 200);
    }
    took
}

async fn sequential(client: &ResolverClient, jwts: &[String]) -> Duration {
    let started = Instant::now();
    for jwt in jwts {
        let reply = client.update(jwt).await.expect("update succeeds");
        assert_eq!(reply.code, 200);
    }
    started.elapsed()
}

async fn run(line: ServerLine, n: usize) {
    let env = Env::start(line);
    let client =
        ResolverClient::connect(&env.server.url(), &env.sys_creds, Duration::from_secs(30))
            .await
            .expect("system user connects");

    let made = Instant::now();
    let (keys, jwts) = fresh_accounts(&env, n, "P");
    let made = made.elapsed();

    let took = pipelined(&client, &jwts).await;
    println!(
        "nats-server {:<7} {n:>6} accounts, update_many({CONCURRENCY}): {:>8.1} ms  {:>8.0} accounts/s  (making the JWTs took {:.0} ms)",
        env.version(),
        took.as_secs_f64() * 1e3,
        rate(n, took),
        made.as_secs_f64() * 1e3,
    );

    let mut listed = client.list().await.expect("list");
    listed.sort();
    for key in &keys {
        assert!(listed.binary_search(key).is_ok(), "{key} not listed");
    }

    if n >= 10_000 {
        // The same amount of work over several connections (`connect_lanes`): a server handles
        // one connection's requests in order, so one connection caps the rate.
        let lanes = ResolverClient::connect_lanes(
            &env.server.url(),
            &env.sys_creds,
            Duration::from_secs(30),
            LANES,
        )
        .await
        .expect("system user connects");
        let (_, multi_jwts) = fresh_accounts(&env, n, "M");
        let started = Instant::now();
        let results = lanes.update_many(&multi_jwts, CONCURRENCY).await;
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_ok_and(|r| r.code == 200))
        );
        let multi = started.elapsed();
        println!(
            "nats-server {:<7} {n:>6} accounts, update_many({CONCURRENCY}) on {LANES} lanes: {:>8.1} ms  {:>8.0} accounts/s",
            env.version(),
            multi.as_secs_f64() * 1e3,
            rate(n, multi),
        );

        // The same over 4 lanes when every account imports from one exporter that is in the
        // batch (last in the input): `push_waves` pushes the exporter alone first, then the
        // importers pipelined (nats-server races otherwise; see `warden_nats::push_waves`).
        let (hub, mut hub_claims, _) = env.account("HUB");
        hub_claims.nats.exports.push(nats_jwt::Export::new(
            "svc.>".parse().expect("subject"),
            nats_jwt::ExportType::Service,
        ));
        let hub_key = hub.account_public_key().expect("account key");
        let mut batch: Vec<String> = (0..n)
            .map(|i| {
                let (_, mut c, _) = env.account(&format!("I{i}"));
                c.nats.imports.push(nats_jwt::Import::new(
                    "svc.>".parse().expect("subject"),
                    hub_key.clone(),
                    nats_jwt::ExportType::Service,
                ));
                c.encode(&env.operator_signing).expect("importer JWT")
            })
            .collect();
        batch.push(hub_claims.encode(&env.operator_signing).expect("hub JWT"));
        let waves = warden_nats::push_waves(&batch);
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0], [n]);
        let started = Instant::now();
        let results = lanes.update_many(&batch, CONCURRENCY).await;
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_ok_and(|r| r.code == 200))
        );
        let importers = started.elapsed();
        println!(
            "nats-server {:<7} {n:>6} importers + their exporter on {LANES} lanes (2 waves): {:>8.1} ms  {:>8.0} accounts/s",
            env.version(),
            importers.as_secs_f64() * 1e3,
            rate(n + 1, importers),
        );

        let (_, seq_jwts) = fresh_accounts(&env, SEQUENTIAL, "S");
        let seq = sequential(&client, &seq_jwts).await;
        let one_lane = rate(n, took) / rate(SEQUENTIAL, seq);
        let four_lanes = rate(n, multi) / rate(SEQUENTIAL, seq);
        println!(
            "nats-server {:<7} {SEQUENTIAL:>6} accounts, one at a time:     {:>8.1} ms  {:>8.0} accounts/s  (pipelined: {one_lane:.1}x on 1 lane, {four_lanes:.1}x on {LANES} lanes)",
            env.version(),
            seq.as_secs_f64() * 1e3,
            rate(SEQUENTIAL, seq),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument (as from `cargo test --benches`) is
    // ignored too: this always runs the full measurement.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        for line in [ServerLine::V2_15, ServerLine::V2_9] {
            for n in [1_000, 10_000] {
                run(line, n).await;
            }
        }
    });
}
