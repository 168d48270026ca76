//! The relay's drain of everything due (`warden push`), batch after batch, pipelined: the
//! next batch is read and the one before recorded while a batch is in flight. With batches
//! of three rows against a real nats-server (2.9.10 and 2.15.x): every account reaches
//! the server, deleted ones leave it, every row is delivered, and nothing is left due;
//! with the server gone, the drain stops after the first batch that went nowhere. The
//! relay of `serve` drains a backlog the same way, counting every batch.

use std::sync::Arc;
use std::time::Duration;

use warden_ops::relay::{Connections, RelayConfig, RelayStats, drain_all};
use warden_ops::{Actor, InitOptions, Settings, Warden};
use warden_store::{MasterKey, Store};
use warden_testkit::{NatsServer, NatsServerBinary, free_port};

async fn pending(w: &Warden) -> i64 {
    w.store().counts().await.expect("counts").outbox_pending
}

/// Adds accounts `APP<i>` for each `i` in `range`; their public keys.
async fn add_accounts(w: &Warden, range: std::ops::Range<u32>) -> Vec<String> {
    let mut keys = Vec::new();
    for i in range {
        keys.push(
            w.add_account(&format!("APP{i:02}"), Default::default())
                .await
                .expect("account")
                .public_key,
        );
    }
    keys
}

/// A store initialised with the service user (so change events are published too) and a
/// nats-server of `bin` trusting its operator, with its accounts preloaded.
async fn warden_and_server(bin: &NatsServerBinary, home: &std::path::Path) -> (Warden, NatsServer) {
    let v = &bin.version;
    let url = format!("sqlite://{}", home.join("warden.db").display());
    let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
        .await
        .expect("store");
    let mut w = Warden::open(store, Actor::operator("test"))
        .await
        .expect("open");
    w.init(InitOptions {
        operator: "RELAYOP".into(),
        account: None,
        user: None,
        settings: Settings::default(),
        service_urls: Vec::new(),
        migrations: warden_core::default_migrations(warden_core::bootstrap::DEFAULT_SERVICE_PREFIX),
    })
    .await
    .expect("init");
    let op = w.operator().await.unwrap();
    let mut cfg = warden_nats::config::ServerConfig::new(
        format!("127.0.0.1:{}", free_port()),
        op.jwt,
        op.system_account,
        home.join("resolver"),
    );
    cfg.preload = w.account_jwts().await.unwrap();
    let server = NatsServer::start(bin, &home.join("server"), &cfg.render())
        .unwrap_or_else(|e| panic!("[{v}] nats-server refused the config: {e}"));
    (w, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_relay_drains_a_backlog_batch_by_batch() {
    for bin in NatsServerBinary::all() {
        let v = bin.version.clone();
        let home = tempfile::tempdir().unwrap();
        let (w, server) = warden_and_server(&bin, home.path()).await;
        let keys = add_accounts(&w, 0..10).await;
        let due = pending(&w).await;
        assert!(
            due >= 20,
            "[{v}] {due} rows due: an update and an event per account"
        );

        let mut relay = RelayConfig::new(server.url());
        relay.batch = 3;
        relay.idle_poll = Duration::from_millis(50);
        let stats = Arc::new(RelayStats::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(warden_ops::relay::run(
            w.clone(),
            relay.clone(),
            stopped,
            stats.clone(),
        ));
        // The relay's counters are the only sign of its progress: read until every row
        // was recorded, within a bound.
        let all_recorded = async {
            while stats.snapshot().delivered < due as u64 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), all_recorded)
            .await
            .unwrap_or_else(|_| panic!("[{v}] not every row delivered: {:?}", stats.snapshot()));
        let seen = stats.snapshot();
        assert_eq!(
            seen.delivered, due as u64,
            "[{v}] every row, once: {seen:?}"
        );
        assert_eq!(seen.failed, 0, "[{v}] {seen:?}");
        assert_eq!(
            seen.count,
            (due as u64).div_ceil(3),
            "[{v}] every batch of three rows counted once: {seen:?}"
        );
        assert!(seen.push_count >= 10, "[{v}] {seen:?}");
        assert_eq!(pending(&w).await, 0, "[{v}]");

        stop.send(true).expect("stop");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the relay stops")
            .expect("join")
            .expect("relay");
        let conns = Connections::open(&w, &relay).await.expect("connections");
        let held = conns.resolver().list().await.expect("list");
        for k in &keys {
            assert!(held.contains(k), "[{v}] {k} not on the server");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_batches_deliver_every_row() {
    for bin in NatsServerBinary::all() {
        let v = bin.version.clone();
        let home = tempfile::tempdir().unwrap();
        let (w, server) = warden_and_server(&bin, home.path()).await;
        let mut relay = RelayConfig::new(server.url());
        relay.batch = 3;
        let conns = Connections::open(&w, &relay).await.expect("connections");
        drain_all(&w, &conns, &relay).await.expect("first drain");
        assert_eq!(pending(&w).await, 0, "[{v}]");

        let mut keys = add_accounts(&w, 0..12).await;
        let due = pending(&w).await;
        assert!(
            due >= 24,
            "[{v}] {due} rows due: an update and an event per account"
        );
        let report = drain_all(&w, &conns, &relay).await.expect("drain");
        assert_eq!(report.failed, 0, "[{v}] {:?}", report.first_error);
        assert_eq!(report.delivered as i64, due, "[{v}] every row, once");
        assert!(report.accounts_pushed >= 12, "[{v}] {report:?}");
        assert!(report.events_published >= 12, "[{v}] {report:?}");
        assert_eq!(pending(&w).await, 0, "[{v}]");
        let held = conns.resolver().list().await.expect("list");
        for k in &keys {
            assert!(held.contains(k), "[{v}] {k} not on the server");
        }

        // Two deleted, two more added: the deletions and the new accounts in batches too.
        w.delete_account("APP03").await.expect("delete");
        w.delete_account("APP07").await.expect("delete");
        keys.extend(add_accounts(&w, 12..14).await);
        let due = pending(&w).await;
        let report = drain_all(&w, &conns, &relay).await.expect("drain");
        assert_eq!(report.failed, 0, "[{v}] {:?}", report.first_error);
        assert_eq!(report.delivered as i64, due, "[{v}]");
        assert_eq!(report.accounts_deleted, 2, "[{v}] {report:?}");
        let held = conns.resolver().list().await.expect("list");
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(held.contains(k), i != 3 && i != 7, "[{v}] APP{i:02}");
        }

        // Nothing due: nothing sent.
        let again = drain_all(&w, &conns, &relay).await.expect("drain");
        assert_eq!((again.delivered, again.failed), (0, 0), "[{v}]");

        // The server gone: the first batch fails and the drain stops there, instead of
        // sending every batch into the void; every row stays due.
        let mut quick = relay.clone();
        quick.timeout = std::time::Duration::from_millis(500);
        let quick_conns = Connections::open(&w, &quick).await.expect("connections");
        let mut server = server;
        server.stop();
        add_accounts(&w, 14..20).await;
        let due = pending(&w).await;
        assert!(due >= 12, "[{v}] {due} rows due");
        let report = drain_all(&w, &quick_conns, &quick).await.expect("drain");
        assert_eq!(
            (report.delivered, report.failed),
            (0, 3),
            "[{v}] only the first batch of three was tried: {report:?}"
        );
        assert_eq!(pending(&w).await, due, "[{v}] nothing marked delivered");
    }
}
